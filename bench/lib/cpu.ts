import { readdirSync, readFileSync } from "node:fs";

/** CPU seconds used so far by a process (Linux /proc), user + system, all its threads. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime are fields 14 and 15 of stat(5); index 11 and 12 after the command name.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** What a CPU usage meter reads: the wall time since it started and each process's CPU seconds in it. */
export interface CpuUsage {
  readonly wallSeconds: number;
  readonly cpuSeconds: Record<string, number>;
}

/** Starts measuring; the returned function gives the wall time and each process's CPU seconds since then. */
export function startCpuUsage(processes: Record<string, number | undefined>): () => CpuUsage {
  const started = performance.now();
  const before = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, pid === undefined ? NaN : cpuSeconds(pid)]));
  return () => ({
    wallSeconds: (performance.now() - started) / 1000,
    cpuSeconds: Object.fromEntries(
      Object.entries(processes).map(([name, pid]) => [name, pid === undefined ? NaN : cpuSeconds(pid) - before[name]!]),
    ),
  });
}

/** CPU milliseconds per request of each process, from CPU seconds over a phase and the requests it served. */
export function cpuMsPerRequest(cpu: Record<string, number>, requests: number): Record<string, number> {
  return Object.fromEntries(Object.entries(cpu).map(([name, seconds]) => [name, requests > 0 ? (1000 * seconds) / requests : NaN]));
}

/**
 * The processes whose parent is `pid` (Linux /proc). A benchmark that starts
 * nginx through a small node wrapper finds nginx's master and its worker this
 * way: the worker is what serves, and what its CPU per request is read from.
 * `command`, when given, keeps only the children of that command name.
 */
export function childPids(pid: number, command?: string): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // stat(5): "pid (comm) state ppid ...".
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(") ") + 2).split(" ")[1]);
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (ppid === pid && (command === undefined || comm === command)) children.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return children;
}
