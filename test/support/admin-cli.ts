import { spawn } from "node:child_process";
import { ROOT } from "./process.js";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `gatehouse admin …` (cli/admin/main.ts under tsx) as its own process, with `stdin` piped in. */
export function runAdminCli(args: readonly string[], env: Record<string, string | undefined>, stdin = ""): Promise<CliRun> {
  const child = spawn(process.execPath, ["--import", "tsx", "cli/admin/main.ts", ...args], {
    cwd: ROOT,
    // Only what the test names: no GATEHOUSE_ADMIN_* of the machine leaks in.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  child.stdin.end(stdin);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}
