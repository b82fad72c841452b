import { formatForeignLoad } from "./foreign-load.js";
import { formatTable, type LoadResult } from "./load.js";
import { median } from "./median.js";

/**
 * The printed side of a benchmark whose figures are each taken against a
 * baseline in the same run (bench:guard): one table per section and
 * connection count, the ratios with their bars, and the medians over
 * interleaved rounds.
 */

/** One measured phase of one round. */
export interface PhaseRun {
  /** The phase's key, as BENCH_PHASES names it ("c", "g1"). */
  readonly key: string;
  readonly section: string;
  readonly connections: number;
  readonly round: number;
  /** The processes that serve the phase (keys of the result's CPU figures). */
  readonly servers: readonly string[];
  /** Servers of phases measured at the same time (their CPU per request is their own phase's, not this one's). */
  readonly beside?: readonly string[];
  readonly result: LoadResult;
}

/** A ratio to print: `phase` against `baseline` at the same connection count, higher is better. */
export interface RatioSpec {
  readonly phase: string;
  readonly baseline: string;
  /** What the ratio says, e.g. "the sidecar, cached token, against a bare http-proxy". */
  readonly what: string;
  /** Lower bounds on the ratio and where each comes from; none: reported only. */
  readonly bars?: ReadonlyArray<{ readonly min: number; readonly source: string }>;
  /** An upper bound on the p99 the phase adds over its baseline, in ms. */
  readonly addedP99BarMs?: number;
}

/** µs of CPU per request of a process in a run; NaN when it was not measured. */
function cpuMicros(run: PhaseRun, process: string): number {
  const ms = run.result.cpuMsPerRequest?.[process];
  return ms === undefined ? NaN : 1000 * ms;
}

/** µs of CPU per request of the serving processes, summed (nginx + auth_request: nginx's worker and the gateway). */
function serverMicros(run: PhaseRun): number {
  return run.servers.reduce((sum, server) => sum + cpuMicros(run, server), 0);
}

const micros = (value: number) => (Number.isNaN(value) ? "-" : value.toFixed(0));

/**
 * The runs of one section at one connection count: req/s, p50/p99 (ms, from
 * each response's own time), requests, errors, CPU µs per request of each
 * serving process, and the foreign load beside each figure; then, per phase,
 * every process that used 1% of a core or more.
 */
export function formatPhaseTable(runs: readonly PhaseRun[]): string {
  const header = ["phase", "req/s", "p50 ms", "p99 ms", "requests", "errors", "CPU µs/req of the server", "foreign (% of one core)"];
  const rows = runs.map((run) => [
    run.result.name,
    run.result.rps.toFixed(0),
    run.result.p50.toFixed(3),
    run.result.p99.toFixed(3),
    String(run.result.requests),
    String(run.result.errors),
    run.servers.map((server) => `${server} ${micros(cpuMicros(run, server))}`).join(" + "),
    run.result.foreign === undefined ? "-" : formatForeignLoad(run.result.foreign),
  ]);
  const errors = runs.filter((run) => run.result.firstError !== undefined).map((run) => `  ${run.key}: ${run.result.firstError}`);
  const processes = runs.map((run) => {
    const busy = Object.entries(run.result.cpu ?? {}).filter(([, pct]) => pct >= 1);
    const perRequest = (who: string) => (run.beside?.includes(who) === true ? "its own phase's" : `${micros(cpuMicros(run, who))} µs/req`);
    return `  ${run.key}: ${busy.map(([who, pct]) => `${who} ${pct.toFixed(0)}% (${perRequest(who)})`).join(", ")}`;
  });
  return [formatTable(header, rows, { left: 1 }), ...errors, "  CPU of each process over 1% of one core, and its µs per request:", ...processes].join("\n");
}

const verdict = (met: boolean) => (met ? "met" : "MISSED");

/** "c/b = 0.87 (bar ≥ 0.85 (issue 10): met); p99 added 0.31 ms (bar ≤ 0.5 ms: met); server CPU per request b/c 0.70". */
function formatRatio(spec: RatioSpec, ratio: number, addedP99: number, cpuRatio: number, label = `${spec.phase}/${spec.baseline} = ${ratio.toFixed(2)}`): string {
  const bars = spec.bars ?? [];
  const parts = [
    `${label} (${spec.what}; ${bars.length === 0 ? "reported" : bars.map((bar) => `bar ≥ ${bar.min} (${bar.source}): ${verdict(ratio >= bar.min)}`).join(", ")})`,
    `p99 added ${addedP99.toFixed(3)} ms${spec.addedP99BarMs === undefined ? "" : ` (bar ≤ ${spec.addedP99BarMs} ms: ${verdict(addedP99 <= spec.addedP99BarMs)})`}`,
    `server CPU per request ${spec.baseline}/${spec.phase} ${Number.isNaN(cpuRatio) ? "-" : cpuRatio.toFixed(2)}`,
  ];
  return `  ${parts.join("; ")}`;
}

/** The ratios whose two phases are both among `runs` (one section, one connection count, one round). */
export function formatRatios(runs: readonly PhaseRun[], specs: readonly RatioSpec[], notRun: ReadonlyMap<string, string>): string {
  const lines: string[] = [];
  for (const spec of specs) {
    const phase = runs.find((run) => run.key === spec.phase);
    const baseline = runs.find((run) => run.key === spec.baseline);
    if (phase === undefined || baseline === undefined) {
      const reason = notRun.get(spec.phase) ?? notRun.get(spec.baseline);
      if (reason !== undefined) lines.push(`  ${spec.phase}/${spec.baseline}: not run (${reason})`);
      continue;
    }
    lines.push(
      formatRatio(spec, phase.result.rps / baseline.result.rps, phase.result.p99 - baseline.result.p99, serverMicros(baseline) / serverMicros(phase)),
    );
  }
  return lines.join("\n");
}

/**
 * Over interleaved rounds: per phase and connection count the median of each
 * figure, and each ratio's per-round values with their median, the bars
 * judged on the median.
 */
export function formatMedians(runs: readonly PhaseRun[], specs: readonly RatioSpec[]): string {
  const rounds = Math.max(...runs.map((run) => run.round));
  const groups = new Map<string, PhaseRun[]>();
  for (const run of runs) {
    const id = `${run.connections} ${run.key}`;
    groups.set(id, [...(groups.get(id) ?? []), run]);
  }
  const header = ["phase", "connections", "req/s", "p50 ms", "p99 ms", "CPU µs/req of the server", "load average", "others % of one core"];
  const rows = [...groups.values()].map((group) => {
    const first = group[0]!;
    return [
      first.result.name,
      String(first.connections),
      median(group.map((run) => run.result.rps)).toFixed(0),
      median(group.map((run) => run.result.p50)).toFixed(3),
      median(group.map((run) => run.result.p99)).toFixed(3),
      first.servers.map((server) => `${server} ${micros(median(group.map((run) => cpuMicros(run, server))))}`).join(" + "),
      median(group.map((run) => run.result.foreign?.loadAverage ?? NaN)).toFixed(1),
      median(group.map((run) => run.result.foreign?.otherCpuPercent ?? NaN)).toFixed(0),
    ];
  });
  const lines = [`medians over ${rounds} rounds:`, formatTable(header, rows), "", "ratios, round by round, and their medians (the bars judged on the median):"];
  const connectionCounts = [...new Set(runs.map((run) => run.connections))];
  for (const connections of connectionCounts) {
    for (const spec of specs) {
      const pairs: Array<[PhaseRun, PhaseRun]> = [];
      for (let round = 1; round <= rounds; round++) {
        const at = (key: string) => runs.find((run) => run.round === round && run.connections === connections && run.key === key);
        const phase = at(spec.phase);
        const baseline = at(spec.baseline);
        if (phase !== undefined && baseline !== undefined) pairs.push([phase, baseline]);
      }
      if (pairs.length === 0) continue;
      const ratios = pairs.map(([phase, baseline]) => phase.result.rps / baseline.result.rps);
      const added = pairs.map(([phase, baseline]) => phase.result.p99 - baseline.result.p99);
      const cpu = pairs.map(([phase, baseline]) => serverMicros(baseline) / serverMicros(phase));
      const ratio = median(ratios);
      lines.push(
        formatRatio(spec, ratio, median(added), median(cpu), `${spec.phase}/${spec.baseline} at ${connections}: ${ratios.map((r) => r.toFixed(2)).join(", ")}, median ${ratio.toFixed(2)}`),
      );
    }
  }
  return lines.join("\n");
}
