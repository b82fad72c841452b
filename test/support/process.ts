import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { scaledBudget } from "./scaled-budget.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface RunningProcess {
  readonly child: ChildProcess;
  /** Everything written so far to stdout and stderr. */
  output(): string;
  /**
   * Resolves with the first output line that matches; rejects when the process
   * exits first, or when `quietBudgetMs` scaled by TEST_TIME_SCALE has gone by.
   * The default, 20 s quiet: a process under tsx starts in one or two seconds
   * on a quiet machine, and ten times slower on a busy one (measured: two
   * replicas starting side by side at a load average of 13 took 40 s).
   */
  waitFor(pattern: RegExp, quietBudgetMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

type RunOptions = {
  env?: Record<string, string | undefined>;
  args?: string[];
  nodeArgs?: string[];
  /** A command that runs node (e.g. valgrind's callgrind, bench/lib/callgrind.ts); its pid is then the child's. */
  wrapper?: readonly string[];
};

/** Runs a TypeScript entry point of the repository as its own process (node --import tsx). */
export function runTs(entry: string, options: RunOptions = {}): RunningProcess {
  return runNode(entry, { ...options, nodeArgs: [...(options.nodeArgs ?? []), "--import", "tsx"] });
}

/** Runs a JavaScript entry point (e.g. the build in dist/) as its own process, with plain node. */
export function runNode(entry: string, options: RunOptions = {}): RunningProcess {
  const argv = [process.execPath, ...(options.nodeArgs ?? []), entry, ...(options.args ?? [])];
  const [command, ...args] = [...(options.wrapper ?? []), ...argv] as [string, ...string[]];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const onData = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    for (const waiter of [...waiters]) {
      const line = output.split("\n").find((l) => waiter.pattern.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => output,
    waitFor(pattern, quietBudgetMs = 20_000) {
      const timeoutMs = scaledBudget(quietBudgetMs);
      const line = output.split("\n").find((l) => pattern.test(l));
      if (line !== undefined) return Promise.resolve(line);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no output matching ${pattern} within ${timeoutMs} ms; output:\n${output}`)), timeoutMs);
        waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        void exited.then(() => {
          clearTimeout(timer);
          const found = output.split("\n").find((l) => pattern.test(l));
          if (found !== undefined) resolve(found);
          else reject(new Error(`process exited before printing ${pattern}; output:\n${output}`));
        });
      });
    },
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
