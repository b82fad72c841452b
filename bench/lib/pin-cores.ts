import { spawnSync } from "node:child_process";
import { cpus } from "node:os";

/**
 * Pins the servers being measured to the last core and everything else (the
 * load generator, the upstream, Redis, the authz service) to the first, every
 * thread of each (`taskset -a`; threads started later inherit the mask).
 *
 * Unpinned on two cores, four busy processes take turns on both, and a
 * server that the scheduler sets aside for a time slice leaves its requests
 * waiting for milliseconds: such waits made the p99 of one phase 3 ms and of
 * the next 18 ms, by chance, which drowned the half a millisecond a bar
 * allows. Pinned, a server has its core to itself, as it would in a
 * deployment that gives it a CPU.
 *
 * Gives what it did (or why not), to print beside the figures. Linux with
 * util-linux's taskset and at least two cores; otherwise nothing is pinned.
 */
export function pinCores(served: Readonly<Record<string, number>>, others: Readonly<Record<string, number>>): string {
  const cores = cpus().length;
  if (cores < 2) return "not pinned (one core)";
  const last = cores - 1;
  const pin = (core: number, pid: number) => spawnSync("taskset", ["-a", "-p", "-c", String(core), String(pid)], { stdio: "ignore" }).status === 0;
  const pinned = [...Object.values(served).map((pid) => pin(last, pid)), ...Object.values(others).map((pid) => pin(0, pid))];
  if (!pinned.every(Boolean)) return "not pinned (taskset failed or is not installed)";
  return `pinned: ${Object.keys(served).join(", ")} on CPU ${last}; ${Object.keys(others).join(", ")} on CPU 0`;
}
