import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { cpuSeconds } from "./cpu.js";

/**
 * What else the machine did while a figure was measured: the 1-minute load
 * average at the end (it includes the benchmark itself), and the CPU that
 * processes other than the named ones used, in % of one core. A figure taken
 * beside a large foreign share is a smoke figure, not a measurement.
 */
export interface ForeignLoad {
  readonly loadAverage: number;
  /** CPU of every other process (and the kernel's interrupt work), % of one core. */
  readonly otherCpuPercent: number;
  readonly cores: number;
}

/** Busy CPU seconds of the whole machine so far (/proc/stat, all cores): everything except idle and iowait. */
function machineBusySeconds(): number {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user/nice).
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return NaN;
  }
}

/** Starts watching; the returned function gives the foreign load since then, the named processes excluded. */
export function startForeignLoad(own: Record<string, number | undefined>): () => ForeignLoad {
  const pids = [...new Set(Object.values(own).filter((pid): pid is number => pid !== undefined))];
  const started = performance.now();
  const busyBefore = machineBusySeconds();
  const ownBefore = pids.map(cpuSeconds);
  return () => {
    const seconds = (performance.now() - started) / 1000;
    const ownUsed = pids.reduce((sum, pid, i) => sum + (cpuSeconds(pid) - ownBefore[i]!), 0);
    const other = machineBusySeconds() - busyBefore - ownUsed;
    return { loadAverage: loadavg()[0]!, otherCpuPercent: Math.max(0, (100 * other) / seconds), cores: cpus().length };
  };
}

/** "load 1.9, others 45% of a core": the foreign load in one short cell. */
export function formatForeignLoad(load: ForeignLoad): string {
  return `load ${load.loadAverage.toFixed(1)}, others ${load.otherCpuPercent.toFixed(0)}%`;
}
