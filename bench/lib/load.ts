import { startCpuMeter } from "./cpu.js";

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
}

export async function runLoad(
  name: string,
  options: { concurrency: number; seconds: number; stopWhen?: () => boolean; cpu?: Record<string, number | undefined> },
  call: (worker: number, iteration: number) => Promise<unknown>,
): Promise<LoadResult> {
  const meter = options.cpu === undefined ? undefined : startCpuMeter(options.cpu);
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
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return {
    name,
    requests: latencies.length,
    errors,
    seconds: elapsed,
    rps: latencies.length / elapsed,
    p50: pct(0.5),
    p99: pct(0.99),
    firstError,
    cpu: meter?.(),
  };
}

export function formatResults(results: LoadResult[]): string {
  const rows = results.map((r) => [
    r.name,
    r.rps.toFixed(0),
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    String(r.requests),
    String(r.errors),
  ]);
  const header = ["benchmark", "req/s", "p50 ms", "p99 ms", "requests", "errors"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const errors = results.filter((r) => r.firstError !== undefined).map((r) => `  ${r.name}: first error: ${r.firstError}`);
  const cpu = results
    .filter((r) => r.cpu !== undefined)
    .map((r) => `  ${r.name}: CPU ${Object.entries(r.cpu!).map(([name, pct]) => `${name} ${pct.toFixed(0)}%`).join(", ")} (of one core)`);
  return [line(header), ...rows.map(line), ...errors, ...cpu].join("\n");
}
