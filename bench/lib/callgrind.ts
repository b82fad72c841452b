import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { LoadResult } from "./load.js";
import { median } from "./median.js";

/**
 * Instruction counts of server processes, from valgrind's callgrind: the
 * cost of a request that the clock on a shared two-core host cannot give to
 * within a few per cent (between minutes this host drifts by more than
 * issue 11's 5 % bar; `valgrind --tool=callgrind` counts the same instructions
 * for the same work whatever else runs).
 *
 * The server runs under callgrind with instrumentation off (about five times
 * slower than native rather than fifty), so that start-up and warm-up are
 * not counted; around a measured stretch of calls, `callgrind_control`
 * turns it on, zeroes the counters, and dumps them afterwards.
 *
 * What it does not see: cache misses and branch mispredictions (a larger
 * working set costs more cycles for the same instructions), time spent
 * waiting, and other processes (Redis, the load generator). Every thread of
 * the process is counted: the main thread, V8's compiler and GC helpers, and
 * libuv's pool.
 */

const run = promisify(execFile);

export interface Callgrind {
  /** The command that runs node under callgrind (runNode's wrapper). */
  readonly wrapper: readonly string[];
  /**
   * Instructions each process of `pids` (run with the wrapper) executes
   * while `stretch` runs, in the order of `pids`. Warm the processes up
   * first: what V8 compiles while the stretch runs is counted too.
   */
  count(pids: readonly number[], stretch: () => Promise<void>): Promise<CountedStretch>;
}

export interface CountedStretch {
  /**
   * Per process, in the order of `pids`: instructions executed, less two
   * kinds of work that a stretch of a thousand requests catches or misses by
   * chance, so that it would decide the comparison:
   * - V8's optimising compiler (its background jobs): warm-up, not the
   *   requests' cost, and how much of it is left after a warm-up varies;
   * - major (mark-compact) garbage collections: one costs as much as a few
   *   hundred requests and comes every few thousand (seen: about 230 k
   *   instructions per ExchangeCode call in a stretch that caught one, none
   *   in the next). Scavenges, every few dozen requests, stay in.
   */
  readonly instructions: readonly number[];
  /** Per process: the optimising compiler's instructions, left out of `instructions`. */
  readonly compiler: readonly number[];
  /** Per process: major GC's instructions, left out of `instructions`. */
  readonly majorGc: readonly number[];
  readonly seconds: number;
}

export function createCallgrind(): Callgrind {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-callgrind-"));
  const control = async (pid: number, ...args: string[]) => {
    // callgrind_control reaches the process through vgdb, also while it waits in epoll.
    const { stdout } = await run("callgrind_control", [...args, String(pid)], { timeout: 120_000 });
    if (!stdout.includes("OK")) throw new Error(`callgrind_control ${args.join(" ")} ${pid}: ${stdout.trim()}`);
  };
  const dumpsOf = (pid: number) => readdirSync(dir).filter((name) => name.startsWith(`callgrind.out.${pid}.`));
  return {
    wrapper: ["valgrind", "--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${join(dir, "callgrind.out.%p")}`],
    async count(pids, stretch) {
      for (const pid of pids) await control(pid, "--instr=on");
      for (const pid of pids) await control(pid, "--zero");
      const started = performance.now();
      await stretch();
      const seconds = (performance.now() - started) / 1000;
      const instructions: number[] = [];
      const compiler: number[] = [];
      const majorGc: number[] = [];
      for (const pid of pids) {
        const before = new Set(dumpsOf(pid));
        await control(pid, "--dump");
        await control(pid, "--instr=off");
        const dump = dumpsOf(pid).find((name) => !before.has(name));
        if (dump === undefined) throw new Error(`callgrind wrote no dump for ${pid} in ${dir}`);
        const left = await leftOutOf(join(dir, dump));
        compiler.push(left.compiler);
        majorGc.push(left.majorGc);
        instructions.push(totalOf(readFileSync(join(dir, dump), "utf8")) - left.compiler - left.majorGc);
      }
      return { instructions, compiler, majorGc, seconds };
    },
  };
}

/** The `summary:` (or `totals:`) line of a callgrind dump: instructions executed (event Ir). */
export function totalOf(dump: string): number {
  const line = /^(?:summary|totals): (\d+)/m.exec(dump);
  if (line === null) throw new Error("a callgrind dump without a summary line");
  return Number(line[1]);
}

/**
 * The roots of the work left out (Node 20's V8), each counted inclusive of
 * what it calls; none runs inside another. The compiler: TurboFan's
 * background jobs (Maglev is off). Major GC: concurrent marking, sweeping
 * (only mark-compact leaves pages to sweep), the atomic pause, and the
 * main thread's incremental marking.
 */
const LEFT_OUT = {
  compiler: ["v8::internal::OptimizingCompileDispatcher::CompileTask::RunInternal()"],
  majorGc: [
    "v8::internal::ConcurrentMarking::JobTaskMajor::Run(v8::JobDelegate*)",
    "v8::internal::Sweeper::SweeperJob::Run(v8::JobDelegate*)",
    "v8::internal::Heap::MarkCompact()",
    "v8::internal::Heap::StartIncrementalMarking(",
    "v8::internal::IncrementalMarking::Step(",
  ],
} as const;

/** The instructions of a dump under each root of LEFT_OUT (callgrind_annotate's inclusive figures). */
async function leftOutOf(dumpPath: string): Promise<{ compiler: number; majorGc: number }> {
  const { stdout } = await run("callgrind_annotate", ["--inclusive=yes", "--threshold=100", dumpPath], { maxBuffer: 64 * 1024 * 1024 });
  const inclusive = (root: string) => {
    const line = stdout.split("\n").find((l) => l.includes(`???:${root}`));
    return line === undefined ? 0 : Number(/^\s*([\d,]+)/.exec(line)?.[1]?.replace(/,/g, "") ?? 0);
  };
  const sum = (roots: readonly string[]) => roots.reduce((total, root) => total + inclusive(root), 0);
  return { compiler: sum(LEFT_OUT.compiler), majorGc: sum(LEFT_OUT.majorGc) };
}

/**
 * Counted requests are preceded by this many times as many uncounted ones:
 * V8's optimising compiler (its own threads, counted too) must have settled,
 * or its work is much of what is counted (seen: after as many warm-up calls
 * as counted ones, three quarters of GetMetadata's count was the compiler).
 */
export const WARM_UP_REQUESTS = 5;

/** BENCH_INSTRUCTIONS: requests per counted phase, or undefined (phases by the clock). */
export function countedRequests(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`BENCH_INSTRUCTIONS: expected a positive whole number of requests, got ${JSON.stringify(value)}`);
  return n;
}

/** One counted phase (or IDLE): instructions per process name. */
export interface CountedPhase {
  /** Its deployment's phase (e.g. "split token: refresh_token"), the same with and without tenants. */
  readonly name: string;
  /** Phases are compared within one deployment; its idle rate is its own ("" when there is one). */
  readonly deployment: string;
  /** Named tenants configured (0: the single-tenant deployment). */
  readonly tenants: number;
  readonly requests: number;
  readonly seconds: number;
  readonly instructions: Readonly<Record<string, number>>;
  /** The optimising compiler's instructions, left out of `instructions`, in all processes. */
  readonly compiler: number;
  /** Major GC's instructions, left out of `instructions`, in all processes. */
  readonly majorGc: number;
}

/** The name of an idle stretch's CountedPhase. */
export const IDLE = "(idle)";

/**
 * What the processes do while no request arrives (timers, the store's
 * heartbeats), over 10 s: under callgrind a phase lasts many times longer
 * than by the clock, so this rate times its length is taken out of it.
 */
export async function countIdle(callgrind: Callgrind, deployment: string, processes: Readonly<Record<string, number>>, tenants: number): Promise<CountedPhase> {
  const idle = await callgrind.count(Object.values(processes), () => new Promise((resolve) => setTimeout(resolve, 10_000)));
  return countedPhase(IDLE, deployment, tenants, 0, processes, idle);
}

/** A counted stretch as a phase's figures, per process name. */
function countedPhase(
  name: string,
  deployment: string,
  tenants: number,
  requests: number,
  processes: Readonly<Record<string, number>>,
  stretch: CountedStretch,
): CountedPhase {
  const names = Object.keys(processes);
  return {
    name,
    deployment,
    tenants,
    requests,
    seconds: stretch.seconds,
    instructions: Object.fromEntries(names.map((process, i) => [process, stretch.instructions[i]!])),
    compiler: stretch.compiler.reduce((a, b) => a + b, 0),
    majorGc: stretch.majorGc.reduce((a, b) => a + b, 0),
  };
}

/**
 * One phase counted in every process of `processes`: `load` runs
 * WARM_UP_REQUESTS × n requests uncounted, then n counted. A counted request
 * that failed would count as one served, so any failure fails the run.
 */
export async function countPhase(
  callgrind: Callgrind,
  processes: Readonly<Record<string, number>>,
  phase: { name: string; deployment: string; tenants: number; label: string },
  n: number,
  load: (label: string, requests: number) => Promise<LoadResult>,
): Promise<CountedPhase> {
  await load(`${phase.label} (warm-up)`, WARM_UP_REQUESTS * n);
  let result: LoadResult | undefined;
  const stretch = await callgrind.count(Object.values(processes), async () => {
    result = await load(phase.label, n);
  });
  if (result!.errors > 0) throw new Error(`${phase.label}: ${result!.errors} of the counted requests failed (${result!.firstError})`);
  process.stderr.write(
    `${phase.label}: ${result!.requests} requests, ${Object.keys(processes)
      .map((name, i) => `${name} ${formatInstructions(stretch.instructions[i]! / result!.requests)}`)
      .join(", ")} instructions each (compiler and major GC left out)\n`,
  );
  return countedPhase(phase.name, phase.deployment, phase.tenants, result!.requests, processes, stretch);
}

/**
 * Instructions per request of each phase, per process and in all, less the
 * idle rate's share of the phase's time; with tenants, the ratio tenants ÷
 * single (issue 11's bar: at most 5 % more).
 */
export function formatCountedPhases(counted: readonly CountedPhase[], tenants: number): string {
  const idleRate = (phase: CountedPhase, process: string) => {
    const rates = counted.filter((c) => c.name === IDLE && c.deployment === phase.deployment && c.tenants === phase.tenants).map((c) => (c.instructions[process] ?? 0) / c.seconds);
    return rates.length === 0 ? 0 : median(rates);
  };
  const perRequest = (phase: CountedPhase) =>
    Object.fromEntries(Object.entries(phase.instructions).map(([process, n]) => [process, (n - idleRate(phase, process) * phase.seconds) / phase.requests]));
  const total = (phase: CountedPhase) => Object.values(perRequest(phase)).reduce((a, b) => a + b, 0);
  const idle = counted
    .filter((c) => c.name === IDLE)
    .map((c) => `${c.deployment === "" ? "" : `${c.deployment} `}${c.tenants === 0 ? "single" : `${c.tenants} tenants`} ${Object.entries(c.instructions).map(([p, n]) => `${p} ${formatInstructions(n / c.seconds)}/s`).join(", ")}`);
  const lines = [`instructions per request (callgrind; the compiler and major GC left out, lib/callgrind.ts), less the idle rate (${idle.join("; ")}):`];
  for (const name of new Set(counted.filter((c) => c.name !== IDLE && c.tenants === 0).map((c) => c.name))) {
    const single = counted.filter((c) => c.name === name && c.tenants === 0);
    const many = counted.filter((c) => c.name === name && c.tenants === tenants && tenants > 0);
    const describe = (phase: CountedPhase) => {
      const parts = Object.entries(perRequest(phase));
      const compiler = `left out: compiler ${formatInstructions(phase.compiler / phase.requests)}, major GC ${formatInstructions(phase.majorGc / phase.requests)}`;
      return parts.length === 1
        ? `${formatInstructions(parts[0]![1])} (${compiler})`
        : `${formatInstructions(total(phase))} (${parts.map(([p, n]) => `${p} ${formatInstructions(n)}`).join(", ")}; ${compiler})`;
    };
    const rounds = single.map((s, i) => (many[i] === undefined ? describe(s) : `${describe(s)} → ${describe(many[i]!)}`)).join("; ");
    if (many.length === 0) {
      lines.push(`  ${name}: ${rounds}`);
      continue;
    }
    const ratio = median(many.map(total)) / median(single.map(total));
    lines.push(`  ${name}: ${rounds}; ratio ${ratio.toFixed(3)} (issue 11, at most 1.05: ${ratio <= 1.05 ? "met" : "MISSED"})`);
  }
  return lines.join("\n");
}

function formatInstructions(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(3)} M` : `${(n / 1e3).toFixed(1)} k`;
}
