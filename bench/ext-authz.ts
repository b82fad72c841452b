/**
 * A short run of the ext_authz phases on their own (bench/lib/ext-authz.ts),
 * until bench:guard runs them beside its HTTP phases: an authz service and a
 * gateway with the Check on, a bare grpc-js echo, each in its own process.
 *
 *   npx tsx bench/ext-authz.ts
 *   BENCH_SECONDS (default 3), BENCH_CONNECTIONS (default 10: calls in flight), REDIS_URL
 *
 * The authz service and the gateway run from the sources under tsx here;
 * bench:guard runs them from dist/.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthorizationService } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { runTs, type RunningProcess } from "../test/support/process.js";
import { freePort, startRedisServer } from "../test/support/redis-server.js";
import { extAuthzGuardSection, runExtAuthzPhases } from "./lib/ext-authz.js";
import { BENCH_REDIRECT_URI, createBenchSecrets, writeBenchStackConfig, type BenchSecrets } from "./lib/stack-config.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const concurrency = Number(process.env.BENCH_CONNECTIONS ?? 10);

const ownRedis = process.env.REDIS_URL ? undefined : await startRedisServer();
const redisUrl = process.env.REDIS_URL ?? ownRedis!.url;
const [authzPort, gatewayPort, checkPort, echoPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const secrets = await createBenchSecrets();
const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-ext-authz-"));
const config = writeBenchStackConfig({
  dir,
  name: "ext-authz",
  secrets,
  authzPort,
  gatewayPort,
  guard: { cacheTtlSeconds: 30, ...extAuthzGuardSection(checkPort) },
  // The Check never proxies: the upstream is never called.
  routes: [{ name: "bench", methods: ["GET"], path: "/bench/**", scopes: ["read"], upstream: "http://127.0.0.1:9" }],
});
const env = { REDIS_URL: redisUrl, GATEHOUSE_CONFIG: config, ...secrets.env };
const processes: RunningProcess[] = [];
const start = (running: RunningProcess) => (processes.push(running), running);
try {
  const authz = start(runTs("services/authz/main.ts", { env: { ...env, LOG_LEVEL: "warn" } }));
  const echo = start(runTs("bench/lib/grpc-echo-main.ts", { env: { PORT: String(echoPort) } }));
  await Promise.all([waitForAuthz(`http://127.0.0.1:${authzPort}`), echo.waitFor(/listening/)]);
  const gateway = start(runTs("gateway/main.ts", { env }));
  await gateway.waitFor(/revocation feed subscribed/, 30_000);
  const token = await issueToken(`http://127.0.0.1:${authzPort}`, secrets);
  process.stderr.write(`bench:ext-authz: ${concurrency} calls in flight, ${seconds} s per phase (+1 s warm-up), loopback\n`);
  const result = await runExtAuthzPhases({
    echoAddress: `127.0.0.1:${echoPort}`,
    checkAddress: `127.0.0.1:${checkPort}`,
    token,
    concurrency,
    seconds,
    pids: { "grpc echo": echo.child.pid, gateway: gateway.child.pid, authz: authz.child.pid, "load generator": process.pid },
    serving: { echo: "grpc echo", gateway: "gateway" },
  });
  process.stdout.write(`${result.summary}\n`);
} finally {
  for (const running of processes.reverse()) await running.stop("SIGTERM");
  await ownRedis?.stop();
  rmSync(dir, { recursive: true, force: true });
}

async function waitForAuthz(url: string): Promise<void> {
  const authz = createClient(AuthorizationService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  for (let i = 0; i < 300; i++) {
    try {
      await authz.getMetadata({});
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error("the authz service did not start");
}

/** A token for the web client: Authorize, Decide, ExchangeCode (as bench/guard.ts gets one). */
async function issueToken(authzUrl: string, secrets: BenchSecrets): Promise<string> {
  const authz = createClient(AuthorizationService, createConnectTransport({ baseUrl: authzUrl, httpVersion: "1.1" }));
  const gateway = { headers: { "gatehouse-service-credential": secrets.service } };
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const { requestId } = await authz.authorize({ responseType: "code", clientId: "web", redirectUri: BENCH_REDIRECT_URI, scope: "read", codeChallenge: challenge, codeChallengeMethod: "S256" }, gateway);
  const { redirectUrl } = await authz.decide({ requestId, subject: "bench-user", authTime: 1n, approved: true }, gateway);
  const code = new URL(redirectUrl).searchParams.get("code")!;
  const { token } = await authz.exchangeCode({ code, redirectUri: BENCH_REDIRECT_URI, codeVerifier: verifier }, { headers: { authorization: `Basic ${Buffer.from(`web:${secrets.web}`).toString("base64")}` } });
  return token!.accessToken;
}
