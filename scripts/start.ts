/**
 * `npm start`: runs gatehouse on its embedded defaults (config/dev.yaml, the
 * in-memory store, or Redis with REDIS_URL): the gateway and the authz
 * service in one process (all-in-one/main.ts), the demo client app and the
 * demo resource server. When all answer, it prints the URL to open and the
 * demo user. `npm run start:split` runs the authz service and the gateway as
 * two processes instead (the scale-out layout); `npm run authz` runs only the
 * authz service.
 *
 * Development secrets (the gateway's service credential, the gateway's client
 * secret) are generated fresh on every run and handed to the processes
 * through their environment, as production hands them through Secrets.
 *
 * The demo client's settings come from the same configuration file: the
 * issuer, and the redirect URI of the client `demo-app` (its port is where
 * the demo client listens). DEMO_API_PORT (default 3001) is where the demo
 * resource server listens; the gateway's routes send /api/* there.
 * DEMO_MCP_PORT (default 3002) is where the demo MCP server listens, when the
 * configuration declares a resource at /mcp; the route /mcp goes there.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { hashSecret } from "../services/authz/oauth/secrets.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const only = process.argv[2];
const configFile = process.env.GATEHOUSE_CONFIG ?? resolve(root, "config/dev.yaml");

const gatewayClientSecret = randomBytes(32).toString("base64url");
const env: NodeJS.ProcessEnv = {
  ...process.env,
  GATEHOUSE_CONFIG: configFile,
  GATEHOUSE_SERVICE_CREDENTIAL: process.env.GATEHOUSE_SERVICE_CREDENTIAL ?? randomBytes(32).toString("base64url"),
  // The demo's admin credential (authz.admin.credentials in config/dev.yaml), printed below with an example command.
  GATEHOUSE_ADMIN_CREDENTIAL: process.env.GATEHOUSE_ADMIN_CREDENTIAL ?? randomBytes(32).toString("base64url"),
  GATEHOUSE_GATEWAY_CLIENT_SECRET: gatewayClientSecret,
  GATEHOUSE_GATEWAY_CLIENT_SECRET_HASH: `sha256:${hashSecret(gatewayClientSecret)}`,
};

const children: ChildProcess[] = [];
function run(name: string, entry: string, args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", entry, ...args], { cwd: root, env: { ...env, ...extraEnv }, stdio: ["ignore", "inherit", "inherit"] });
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

/** Polls `url` until it answers 200, or gives up after `timeoutMs`. */
async function waitFor(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || stopping) throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const split = only === "split";
if (only === "authz" || split) run("authz", "services/authz/main.ts");
if (only === "authz") {
  process.stdout.write("\n  gatehouse authz service starting (Connect, gRPC, gRPC-Web); Ctrl-C stops it.\n\n");
} else {
  const file = parse(readFileSync(configFile, "utf8")) as {
    issuer: string;
    gateway?: { host?: string; port?: number };
    authz?: { host?: string; port?: number; admin?: unknown };
    clients?: Array<{ id: string; redirectUris?: string[] }>;
    resources?: Array<{ uri: string }>;
  };
  const issuer = file.issuer.replace(/\/+$/, "");
  const gatewayUrl = `http://${file.gateway?.host ?? "127.0.0.1"}:${process.env.GATEHOUSE_GATEWAY_PORT ?? file.gateway?.port ?? 8080}`;
  const demoRedirect = file.clients?.find((c) => c.id === "demo-app")?.redirectUris?.[0];
  // The authz service's Connect port (all-in-one serves it too unless allInOne.serveRpc is false).
  const authzUrl = `http://${file.authz?.host ?? "127.0.0.1"}:${process.env.GATEHOUSE_AUTHZ_PORT ?? file.authz?.port ?? 50051}`;
  const adminExample =
    file.authz?.admin === undefined
      ? []
      : [
          "  Admin API (AdminService), for example:",
          `    GATEHOUSE_ADMIN_URL=${authzUrl} GATEHOUSE_ADMIN_CREDENTIAL=${env.GATEHOUSE_ADMIN_CREDENTIAL} npm run -s admin -- clients list`,
        ];
  // One process for both by default: fewer processes, a faster start, no RPC hop.
  if (split) run("gateway", "gateway/main.ts");
  else run("gatehouse (all-in-one)", "all-in-one/main.ts");
  if (demoRedirect !== undefined) {
    const demo = { DEMO_ISSUER: issuer, DEMO_CLIENT_ID: "demo-app", DEMO_REDIRECT_URI: demoRedirect, DEMO_API_BASE: issuer };
    run("demo client", "demo/main.ts", ["client"], demo);
    run("demo resource server", "demo/main.ts", ["resource-server"], { DEMO_API_PORT: process.env.DEMO_API_PORT ?? "3001" });
  }
  // The demo MCP server (issue 15), behind the gateway at /mcp as a protected resource (config: resources, routes).
  const mcpResource = file.resources?.find((r) => new URL(r.uri).pathname === "/mcp")?.uri;
  if (mcpResource !== undefined) run("demo MCP server", "demo/main.ts", ["mcp-server"], { DEMO_MCP_PORT: process.env.DEMO_MCP_PORT ?? "3002" });
  try {
    await waitFor(`${gatewayUrl}/readyz`);
    if (mcpResource !== undefined) await waitFor(`http://127.0.0.1:${process.env.DEMO_MCP_PORT ?? "3002"}/healthz`);
    const demoUrl = demoRedirect === undefined ? undefined : new URL("/", demoRedirect).href;
    if (demoUrl !== undefined) await waitFor(new URL("/healthz", demoRedirect).href);
    process.stdout.write(
      [
        "",
        "  gatehouse is running.",
        "",
        ...(demoUrl === undefined
          ? [`  Gateway (issuer): ${issuer}   (no demo-app client in ${configFile}, so no demo)`]
          : [
              `  Open ${demoUrl} and click "Sign in with gatehouse".`,
              "  Demo user: demo   password: demo-password",
              "",
              `  Gateway (issuer):  ${issuer}   metadata: ${issuer}/.well-known/oauth-authorization-server`,
              `  Demo API:          ${issuer}/api/...  (guarded by the gateway; upstream http://127.0.0.1:${process.env.DEMO_API_PORT ?? "3001"})`,
            ]),
        ...(mcpResource === undefined
          ? []
          : [`  Demo MCP server:   ${mcpResource}  (connect any MCP client; it signs in through gatehouse, see the README)`]),
        split
          ? "  Authz service:     its own process; Connect/gRPC on the port in the config (authz.port)"
          : "  Authz service:     in the gateway's process (all-in-one); Connect/gRPC also on authz.port unless allInOne.serveRpc is false",
        ...adminExample,
        "  Ctrl-C stops everything.",
        "",
        "",
      ].join("\n"),
    );
  } catch (error) {
    process.stderr.write(`gatehouse: ${error instanceof Error ? error.message : String(error)}; stopping everything\n`);
    await stop(1);
  }
}
