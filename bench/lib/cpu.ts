import { readFileSync } from "node:fs";

/** CPU seconds used so far by a process (Linux /proc), user + system. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime are fields 14 and 15 of stat(5); index 11 and 12 after the command name.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Starts measuring; the returned function gives each process's share of one core since then, in %. */
export function startCpuMeter(processes: Record<string, number | undefined>): () => Record<string, number> {
  const started = performance.now();
  const before = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, pid === undefined ? NaN : cpuSeconds(pid)]));
  return () => {
    const seconds = (performance.now() - started) / 1000;
    return Object.fromEntries(
      Object.entries(processes).map(([name, pid]) => [name, pid === undefined ? NaN : (100 * (cpuSeconds(pid) - before[name]!)) / seconds]),
    );
  };
}
