/**
 * `npm start`: runs gatehouse on its embedded defaults (config/dev.yaml, the
 * in-memory store, or Redis with REDIS_URL) and prints where to go.
 * `npm run authz` runs only the authz service the same way.
 *
 * Development secrets (the gateway's service credential, the gateway's client
 * secret) are generated fresh on every run and handed to the processes
 * through their environment, as production hands them through Secrets.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { hashSecret } from "../services/authz/oauth/secrets.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const only = process.argv[2];

const gatewayClientSecret = randomBytes(32).toString("base64url");
const env: NodeJS.ProcessEnv = {
  ...process.env,
  GATEHOUSE_SERVICE_CREDENTIAL: process.env.GATEHOUSE_SERVICE_CREDENTIAL ?? randomBytes(32).toString("base64url"),
  GATEHOUSE_GATEWAY_CLIENT_SECRET: gatewayClientSecret,
  GATEHOUSE_GATEWAY_CLIENT_SECRET_HASH: `sha256:${hashSecret(gatewayClientSecret)}`,
};

const children: ChildProcess[] = [];
function run(name: string, entry: string): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", entry], { cwd: root, env, stdio: ["ignore", "inherit", "inherit"] });
  child.once("exit", (code, signal) => {
    if (!stopping) {
      process.stderr.write(`gatehouse: ${name} exited (${signal ?? code}); stopping everything\n`);
      void stop(code ?? 1);
    }
  });
  children.push(child);
  return child;
}

let stopping = false;
async function stop(code: number): Promise<void> {
  stopping = true;
  await Promise.all(
    children.map((child) =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            child.once("exit", () => resolve());
            child.kill("SIGTERM");
          }),
    ),
  );
  process.exit(code);
}
process.once("SIGINT", () => void stop(0));
process.once("SIGTERM", () => void stop(0));

run("authz", "services/authz/main.ts");
if (only === undefined || only === "all") {
  process.stdout.write(
    [
      "",
      "  gatehouse authz service: http://127.0.0.1:50051 (Connect, gRPC, gRPC-Web)",
      "  Try:  curl -s -X POST -H 'content-type: application/json' -d '{}' \\",
      "          http://127.0.0.1:50051/gatehouse.v1.AuthorizationService/GetMetadata",
      "  Ctrl-C stops it.",
      "",
    ].join("\n"),
  );
}
