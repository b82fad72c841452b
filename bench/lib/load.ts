import autocannon from "autocannon";
import { cpuMsPerRequest, startCpuUsage } from "./cpu.js";
import { formatForeignLoad, startForeignLoad, type ForeignLoad } from "./foreign-load.js";
import { runLeanHttpLoad } from "./lean-http-load.js";

/**
 * Closed-loop load: `concurrency` callers each run `call` back to back until
 * `seconds` have passed. Latencies are recorded per call.
 */
export interface LoadResult {
  name: string;
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  firstError?: string;
  /** % of one core per process during the run, when measured. */
  cpu?: Record<string, number>;
  /**
   * Requests written (autocannon): the served ones plus those still in flight
   * at the deadline, which the servers finish anyway. Divide what is counted
   * after the servers went quiet (Redis commands) by this.
   */
  sent?: number;
  /** CPU milliseconds per served request, per process, when measured. */
  cpuMsPerRequest?: Record<string, number>;
  /** Redis commands (and round trips) per served request, formatted, when measured. */
  redisPerRequest?: string;
  /** What else ran on the machine meanwhile, when measured. */
  foreign?: ForeignLoad;
}

/** One HTTP/1.1 load phase driven by autocannon (keep-alive connections, one request in flight each). */
export interface HttpLoadOptions {
  url: string;
  connections: number;
  seconds: number;
  method?: "POST" | "GET";
  headers: Record<string, string>;
  /** The next request's body; without it every request is the same bytes, built once. */
  body?: () => string;
  /**
   * The next request's path, asked right after its body (requests spread over
   * tenants' endpoints); default: the URL's. `context` is autocannon's per
   * connection, the same object onAccepted then gets for that request's answer.
   */
  path?: (context: Record<string, unknown>) => string;
  /** At most this many requests in all (e.g. as many as single-use codes were minted); the time bound still holds. */
  maxRequests?: number;
  /** What is wrong with a response, or undefined when it is what the flow expects. Default: anything but 200 is wrong. */
  check?: (status: number, body: string) => string | undefined;
  /** Each accepted response's body (a refresh chain takes its next token from it), and its connection's context. */
  onAccepted?: (body: string, context: Record<string, unknown>) => void;
  /** Processes whose CPU is measured (name -> pid); the foreign load excludes them. */
  cpu?: Record<string, number | undefined>;
  /**
   * p50/p99 from each accepted response's own time (process.hrtime), not from
   * autocannon's histogram, whose unit is 1 ms: for servers that answer in
   * well under a millisecond.
   */
  subMillisecond?: boolean;
  /**
   * Requests per second offered in all (autocannon's overallRate): the same
   * work for every contender, whose CPU per request then compares fairly.
   * Not an even pace: autocannon gives each connection a quota per second,
   * spent back to back from the start of the second, so latencies are the
   * saturated queue's (for the latency at a pace, lib/paced-load.ts).
   * Without it, each connection sends its next request as soon as the last
   * one is answered (closed loop).
   */
  rate?: number;
  /**
   * Which generator drives the phase: autocannon (the default), or the lean
   * one on bare sockets (lib/lean-http-load.ts), which costs a fraction of
   * autocannon's CPU per request; closed loop only (no `rate`).
   */
  generator?: LoadGenerator;
}

export type LoadGenerator = "autocannon" | "lean";

/** BENCH_LOAD as a generator's name, checked. */
export function loadGeneratorOf(value: string | undefined, fallback: LoadGenerator): LoadGenerator {
  if (value === undefined || value === "") return fallback;
  if (value === "autocannon" || value === "lean") return value;
  throw new Error(`BENCH_LOAD: unknown load generator ${JSON.stringify(value)} (autocannon, lean)`);
}

/**
 * Runs one autocannon phase and checks every response: non-2xx answers,
 * socket errors, timeouts and 2xx answers the check rejects all count as
 * errors, with the first one described. Only the accepted responses count
 * as served requests (req/s, CPU per request).
 */
export async function runHttpLoad(name: string, options: HttpLoadOptions): Promise<LoadResult> {
  if (options.generator === "lean") return runLeanPhase(name, options);
  const measured = startMeasuring(options.cpu);
  const check = options.check ?? acceptOnly200;
  let sent = 0;
  let rejected = 0;
  let rejectedOk = 0;
  let firstRejection: string | undefined;
  const latencies: number[] | undefined = options.subMillisecond === true ? [] : undefined;
  // autocannon calls onResponse and then emits 'response' for the same answer, synchronously.
  let lastAccepted = false;
  const body = options.body;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.seconds,
        ...(options.maxRequests === undefined ? {} : { maxOverallRequests: options.maxRequests }),
        ...(options.rate === undefined ? {} : { overallRate: Math.max(1, Math.round(options.rate)) }),
        headers: options.headers,
        requests: [
          {
            method: options.method ?? "POST",
            ...(body === undefined
              ? {}
              : {
                  setupRequest: (request: autocannon.Request, context: object) => {
                    sent++;
                    const next = body();
                    return options.path === undefined ? { ...request, body: next } : { ...request, body: next, path: options.path(context as Record<string, unknown>) };
                  },
                }),
            onResponse: (status: number, responseBody: string, context: object) => {
              const problem = check(status, responseBody);
              lastAccepted = problem === undefined;
              if (problem === undefined) {
                options.onAccepted?.(responseBody, context as Record<string, unknown>);
                return;
              }
              rejected++;
              if (status >= 200 && status < 300) rejectedOk++;
              firstRejection ??= problem;
            },
          },
        ],
      },
      (error, done) => (error ? reject(error) : resolve(done)),
    );
    if (latencies !== undefined) {
      instance.on("response", (_client: unknown, _status: number, _bytes: number, ms: number) => {
        if (lastAccepted) latencies.push(ms);
      });
    }
  });
  // `sent` is in the result, not in its type.
  if (body === undefined) sent = (result.requests as { sent?: number }).sent ?? result.requests.total;
  const ok = result["2xx"] - rejectedOk;
  const errors = rejectedOk + result.non2xx + result.errors + result.timeouts;
  const problems = [
    ...(rejected > 0 ? [`${rejected} rejected answers (${result.non2xx} non-2xx), first: ${firstRejection}`] : []),
    ...(result.errors > 0 ? [`${result.errors} socket errors`] : []),
    ...(result.timeouts > 0 ? [`${result.timeouts} timeouts`] : []),
  ];
  return {
    name,
    requests: ok,
    sent,
    errors,
    seconds: result.duration,
    rps: ok / result.duration,
    p50: latencies === undefined ? result.latency.p50 : percentile(latencies, 0.5),
    p99: latencies === undefined ? result.latency.p99 : percentile(latencies, 0.99),
    ...(problems.length > 0 ? { firstError: problems.join("; ") } : {}),
    ...measured(ok),
  };
}

/** HttpLoadOptions' default check: anything but 200 is wrong. */
function acceptOnly200(status: number, body: string): string | undefined {
  return status === 200 ? undefined : `${status} ${body.slice(0, 300)}`;
}

/** The check of an introspection phase whose tokens are all live: a 200 that says `active: true` (RFC 7662 §2.2). */
export function acceptActiveIntrospection(status: number, body: string): string | undefined {
  return status === 200 && (JSON.parse(body) as { active?: unknown }).active === true ? undefined : `${status} ${body.slice(0, 300)}`;
}

/** runHttpLoad's phase on the lean generator: the same checks, counts and measures. */
async function runLeanPhase(name: string, options: HttpLoadOptions): Promise<LoadResult> {
  if (options.rate !== undefined) throw new Error("the lean load generator runs closed loop only: no rate");
  const measured = startMeasuring(options.cpu);
  const check = options.check ?? acceptOnly200;
  const latencies: number[] = [];
  let rejected = 0;
  let firstRejection: string | undefined;
  const result = await runLeanHttpLoad({
    url: options.url,
    connections: options.connections,
    seconds: options.seconds,
    method: options.method ?? "POST",
    headers: options.headers,
    ...(options.body === undefined ? {} : { body: options.body }),
    ...(options.path === undefined ? {} : { path: options.path }),
    ...(options.maxRequests === undefined ? {} : { maxRequests: options.maxRequests }),
    onAnswer: (status, body, context, ms) => {
      const problem = check(status, body);
      if (problem === undefined) {
        latencies.push(ms);
        options.onAccepted?.(body, context);
        return;
      }
      rejected++;
      firstRejection ??= problem;
    },
  });
  const ok = latencies.length;
  const problems = [
    ...(rejected > 0 ? [`${rejected} rejected answers, first: ${firstRejection}`] : []),
    ...(result.errors > 0 ? [`${result.errors} connection errors, first: ${result.firstError}`] : []),
  ];
  return {
    name,
    requests: ok,
    sent: result.sent,
    errors: rejected + result.errors,
    seconds: result.seconds,
    rps: ok / result.seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    ...(problems.length > 0 ? { firstError: problems.join("; ") } : {}),
    ...measured(ok),
  };
}

/**
 * Closed-loop load of any kind (an RPC, a gRPC call): `concurrency` callers
 * run `call` back to back until `seconds` have passed; a call that throws is
 * an error. With `cpu`, each process's CPU (% of one core, ms per call) and
 * the foreign load meanwhile are measured too.
 */
export async function runLoad(
  name: string,
  options: { concurrency: number; seconds: number; stopWhen?: () => boolean; cpu?: Record<string, number | undefined> },
  call: (worker: number, iteration: number) => Promise<unknown>,
): Promise<LoadResult> {
  const measured = startMeasuring(options.cpu);
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, worker) => {
      for (let iteration = 0; performance.now() < deadline && !options.stopWhen?.(); iteration++) {
        const t0 = performance.now();
        try {
          await call(worker, iteration);
          latencies.push(performance.now() - t0);
        } catch (error) {
          errors++;
          firstError ??= String(error);
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return {
    name,
    requests: latencies.length,
    errors,
    seconds: elapsed,
    rps: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    firstError,
    ...measured(latencies.length),
  };
}

/**
 * Starts measuring, while a phase runs, the CPU of the named processes (name
 * -> pid) and what else the machine does; the function it returns gives the
 * result's share of it for `served` requests. Nothing to measure: nothing.
 */
export function startMeasuring(cpu: Record<string, number | undefined> | undefined): (served: number) => Pick<LoadResult, "cpu" | "cpuMsPerRequest" | "foreign"> {
  if (cpu === undefined) return () => ({});
  const usage = startCpuUsage(cpu);
  const foreign = startForeignLoad(cpu);
  return (served) => {
    const used = usage();
    return {
      cpu: Object.fromEntries(Object.entries(used.cpuSeconds).map(([process, seconds]) => [process, (100 * seconds) / used.wallSeconds])),
      cpuMsPerRequest: cpuMsPerRequest(used.cpuSeconds, served),
      foreign: foreign(),
    };
  };
}

/** The value below which a share `p` of the values lie (sorts them in place); NaN when there are none. */
export function percentile(values: number[], p: number): number {
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.floor(values.length * p))] ?? NaN;
}

export function formatResults(results: LoadResult[]): string {
  // The foreign load stands beside each figure (issue 16): a figure taken beside a large foreign share is a smoke figure.
  const withForeign = results.some((r) => r.foreign !== undefined);
  const rows = results.map((r) => [
    r.name,
    r.rps.toFixed(0),
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    String(r.requests),
    String(r.errors),
    ...(withForeign ? [r.foreign === undefined ? "-" : formatForeignLoad(r.foreign)] : []),
  ]);
  const cores = results.find((r) => r.foreign !== undefined)?.foreign?.cores;
  const header = ["benchmark", "req/s", "p50 ms", "p99 ms", "requests", "errors", ...(withForeign ? [`foreign (% of one core, ${cores} cores)`] : [])];
  const errors = results.filter((r) => r.firstError !== undefined).map((r) => `  ${r.name}: first error: ${r.firstError}`);
  const cpu = results
    .filter((r) => r.cpu !== undefined)
    .map((r) => {
      const perRequest = r.cpuMsPerRequest === undefined ? "" : `; per request ${formatCpuMs(r.cpuMsPerRequest)}`;
      return `  ${r.name}: CPU ${Object.entries(r.cpu!).map(([name, pct]) => `${name} ${pct.toFixed(0)}%`).join(", ")} (of one core)${perRequest}`;
    });
  const redis = results.filter((r) => r.redisPerRequest !== undefined).map((r) => `  ${r.name}: Redis per request ${r.redisPerRequest}`);
  return [formatTable(header, rows), ...errors, ...cpu, ...redis].join("\n");
}

/** A plain-text table: the first `left` columns (default 1) left-aligned, the others right-aligned. */
export function formatTable(header: string[], rows: string[][], options: { left?: number } = {}): string {
  const left = options.left ?? 1;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** "gateway 0.43, authz 0.31 ms": CPU milliseconds per request of each process. */
export function formatCpuMs(perRequest: Record<string, number>): string {
  return `${Object.entries(perRequest)
    .map(([name, ms]) => `${name} ${Number.isNaN(ms) ? "-" : ms.toFixed(ms >= 1 ? 2 : 3)}`)
    .join(", ")} ms`;
}
