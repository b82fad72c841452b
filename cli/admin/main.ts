/**
 * `gatehouse admin …` (bin/gatehouse.mjs), or in development
 * `node --import tsx cli/admin/main.ts …`: the only file of the command line
 * that reads process.env, argv and stdin (admin-cli.ts says what it does).
 */
import { runAdminCli } from "./admin-cli.js";

/** Reads all of stdin (a password piped in), without its final newline. */
async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

process.exitCode = await runAdminCli(process.argv.slice(2), {
  env: process.env,
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readStdin: readAllStdin,
});
