import type { ForeignLoad } from "./foreign-load.js";

/** What the capacity model predicts for one phase, and what bounds it. */
export interface Prediction {
  readonly rps: number;
  /** "shared cores", or the name of the process whose one core is the limit. */
  readonly bound: string;
}

/**
 * The capacity model of docs/capacity-model.md at the one point a single
 * machine can check: every process of the phase on the same cores. Two limits:
 * the cores left by foreign load, shared by all the processes of the flow
 * (X · Σ cpu_p ≤ (K − foreign) · 1000 ms/s), and each process's own core, a
 * Node.js event loop and Redis's command thread being single-threaded
 * (X · cpu_p ≤ 1000 ms/s). The prediction is the lower of them.
 */
export function predictThroughput(cpuMsPerRequest: Record<string, number>, foreign: ForeignLoad): Prediction {
  const costs = Object.entries(cpuMsPerRequest).filter(([, ms]) => Number.isFinite(ms) && ms > 0);
  const total = costs.reduce((sum, [, ms]) => sum + ms, 0);
  const cores = Math.max(0, foreign.cores - foreign.otherCpuPercent / 100);
  let best: Prediction = { rps: (cores * 1000) / total, bound: "shared cores" };
  for (const [name, ms] of costs) if (1000 / ms < best.rps) best = { rps: 1000 / ms, bound: name };
  return best;
}
