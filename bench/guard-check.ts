/**
 * npm run bench:guard-check — what the guard's check endpoint (entrance 2,
 * gateway/plugins/check-endpoint.ts) costs, each figure against its baseline
 * in the same run, on the same echo upstream (loopback, autocannon, closed
 * loop, one phase at a time):
 *
 *   (n0) nginx proxying to the upstream, no auth_request       (baseline of n1)
 *   (n1) the same nginx with auth_request to gatehouse's check, cached token
 *   (g0) a bare fastify GET answering 200 without a body        (baseline of g1)
 *   (g1) gatehouse's check endpoint alone (X-Original-* fields), cached token
 *
 * It prints req/s, p50 and p99 per phase, n1/n0 (reported) and g1/g0
 * (issue 10's bar: ≥ 0.6). nginx runs with one worker (test/support/nginx.ts,
 * the README's configuration); gatehouse and the authz service from the
 * production build (dist/). A separate module so that its phases can be
 * merged into bench/guard.ts.
 *
 *   BENCH_SECONDS (default 5)        measured seconds per phase (after 1 s of warm-up)
 *   BENCH_CONNECTIONS (default 10)   concurrent connections
 *   BENCH_PHASES                     which phases, e.g. "g0,g1" (default n0,n1,g0,g1)
 *   REDIS_URL                        a Redis to use; default: a redis-server started here
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import autocannon from "autocannon";
import { parse, stringify } from "yaml";
import { AuthorizationService } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { findNginx } from "../test/support/nginx.js";
import { runNode, runTs, type RunningProcess } from "../test/support/process.js";
import { freePort, startRedisServer } from "../test/support/redis-server.js";
import { BENCH_REDIRECT_URI, createBenchSecrets, writeBenchStackConfig, type BenchSecrets } from "./lib/stack-config.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
const phases = new Set((process.env.BENCH_PHASES ?? "n0,n1,g0,g1").split(","));
const CHECK_PATH = "/.gatehouse/check";

interface PhaseResult {
  key: string;
  name: string;
  rps: number;
  p50: number;
  p99: number;
  failures: number;
}

async function main(): Promise<void> {
  if (findNginx() === undefined) throw new Error("nginx is not installed (apt-get install nginx)");
  const ownRedis = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? ownRedis!.url;
  const [authzPort, upstreamPort, gatewayPort, fastifyPort, plainNginxPort, guardNginxPort] = (await Promise.all(Array.from({ length: 6 }, () => freePort()))) as [number, number, number, number, number, number];
  const secrets = await createBenchSecrets();
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-check-"));
  const upstream = `127.0.0.1:${upstreamPort}`;
  const configFile = writeBenchStackConfig({
    dir,
    name: `check-${gatewayPort}`,
    secrets,
    authzPort,
    gatewayPort,
    guard: { cacheTtlSeconds: 30 },
    routes: [{ name: "bench", methods: ["GET"], path: "/bench/**", scopes: ["read"], upstream: `http://${upstream}` }],
  });
  // The check believes only trusted proxies: nginx and the load generator are on loopback.
  const file = parse(readFileSync(configFile, "utf8")) as { gateway: Record<string, unknown> };
  file.gateway.trustedProxies = ["127.0.0.1"];
  writeFileSync(configFile, stringify(file));
  const env = { REDIS_URL: redisUrl, ...secrets.env };

  const processes: RunningProcess[] = [];
  const start = (running: RunningProcess) => (processes.push(running), running);
  try {
    start(runNode("dist/services/authz/main.js", { env: { ...env, GATEHOUSE_CONFIG: configFile, LOG_LEVEL: "warn" } }));
    const echo = start(runTs("bench/lib/echo-upstream-main.ts", { env: { PORT: String(upstreamPort) } }));
    const bare = start(runTs("bench/lib/bare-fastify-get.ts", { env: { PORT: String(fastifyPort) } }));
    await Promise.all([waitForAuthz(`http://127.0.0.1:${authzPort}`), echo.waitFor(/listening/), bare.waitFor(/listening/)]);
    const gateway = start(runNode("dist/gateway/main.js", { env: { ...env, GATEHOUSE_CONFIG: configFile } }));
    await gateway.waitFor(/listening/);
    await gateway.waitFor(/revocation feed subscribed/);
    const nginxEnv = { UPSTREAM: upstream, GATEHOUSE: `127.0.0.1:${gatewayPort}`, CHECK_PATH };
    const plainNginx = start(runTs("bench/lib/nginx-main.ts", { env: { ...nginxEnv, PORT: String(plainNginxPort), PLAIN: "1" } }));
    const guardNginx = start(runTs("bench/lib/nginx-main.ts", { env: { ...nginxEnv, PORT: String(guardNginxPort) } }));
    await Promise.all([plainNginx.waitFor(/listening/), guardNginx.waitFor(/listening/)]);

    const token = await issueToken(`http://127.0.0.1:${authzPort}`, secrets);
    const bearer = { authorization: `Bearer ${token}` };
    const checkHeaders = { ...bearer, "x-original-method": "GET", "x-original-uri": "/bench/x" };
    // Each path once, by condition: an answer other than 200 stops the run.
    for (const [name, url, headers] of [
      ["nginx + auth_request", `http://127.0.0.1:${guardNginxPort}/bench/x`, bearer],
      ["check endpoint", `http://127.0.0.1:${gatewayPort}${CHECK_PATH}`, checkHeaders],
    ] as const) {
      const response = await fetch(url, { headers });
      if (response.status !== 200) throw new Error(`${name} answered ${response.status}: ${await response.text()}`);
    }

    log(`${connections} connections, ${seconds} s per phase (+1 s warm-up), loopback; nginx 1 worker; upstream ${upstream}`);
    const results: PhaseResult[] = [];
    const run = async (key: string, name: string, url: string, headers: Record<string, string>) => {
      if (phases.has(key)) results.push(await measure(key, name, url, headers));
    };
    await run("n0", "(n0) nginx proxying, no auth_request", `http://127.0.0.1:${plainNginxPort}/bench/x`, bearer);
    await run("n1", "(n1) nginx + auth_request to gatehouse, cached", `http://127.0.0.1:${guardNginxPort}/bench/x`, bearer);
    await run("g0", "(g0) bare fastify GET", `http://127.0.0.1:${fastifyPort}/bench/x`, {});
    await run("g1", "(g1) gatehouse check endpoint, cached", `http://127.0.0.1:${gatewayPort}${CHECK_PATH}`, checkHeaders);
    process.stdout.write(`\n${format(results)}\n`);
  } finally {
    for (const running of processes.reverse()) await running.stop("SIGTERM");
    await ownRedis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One phase: 1 s of warm-up, then `seconds` measured; every response's latency is kept. */
async function measure(key: string, name: string, url: string, headers: Record<string, string>): Promise<PhaseResult> {
  await autocannonRun(url, headers, 1, () => {});
  const latencies: number[] = [];
  const result = await autocannonRun(url, headers, seconds, (ms) => latencies.push(ms));
  latencies.sort((x, y) => x - y);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return { key, name, rps: latencies.length / result.duration, p50: pct(0.5), p99: pct(0.99), failures: result.errors + result.timeouts + result.non2xx };
}

function autocannonRun(url: string, headers: Record<string, string>, duration: number, onLatency: (ms: number) => void): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url, connections, duration, headers, pipelining: 1 }, (error, result) => (error ? reject(error) : resolve(result)));
    instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode === 200) onLatency(responseTime);
    });
  });
}

function format(results: PhaseResult[]): string {
  const header = ["phase", "req/s", "p50 ms", "p99 ms", "failures"];
  const rows = results.map((r) => [r.name, r.rps.toFixed(0), r.p50.toFixed(3), r.p99.toFixed(3), String(r.failures)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const lines = [line(header), ...rows.map(line), ""];
  const by = (key: string) => results.find((r) => r.key === key);
  const [n0, n1, g0, g1] = [by("n0"), by("n1"), by("g0"), by("g1")];
  if (n0 !== undefined && n1 !== undefined) {
    lines.push(`n1/n0 = ${(n1.rps / n0.rps).toFixed(2)} (nginx + auth_request against the same nginx without it; reported); p99 added ${(n1.p99 - n0.p99).toFixed(3)} ms`);
  }
  if (g0 !== undefined && g1 !== undefined) {
    const ratio = g1.rps / g0.rps;
    lines.push(`g1/g0 = ${ratio.toFixed(2)} (check endpoint against a bare fastify GET; bar ≥ 0.6: ${ratio >= 0.6 ? "met" : "MISSED"})`);
  }
  return lines.join("\n");
}

async function waitForAuthz(url: string): Promise<void> {
  const authz = createClient(AuthorizationService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  for (let i = 0; i < 200; i++) {
    try {
      await authz.getMetadata({});
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error("the authz service did not start");
}

/** A token for the web client: Authorize, Decide, ExchangeCode (the code grant with PKCE), as bench/guard.ts gets one. */
async function issueToken(authzUrl: string, secrets: BenchSecrets): Promise<string> {
  const authz = createClient(AuthorizationService, createConnectTransport({ baseUrl: authzUrl, httpVersion: "1.1" }));
  const gateway = { headers: { "gatehouse-service-credential": secrets.service } };
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const { requestId } = await authz.authorize(
    { responseType: "code", clientId: "web", redirectUri: BENCH_REDIRECT_URI, scope: "read", codeChallenge: challenge, codeChallengeMethod: "S256" },
    gateway,
  );
  const { redirectUrl } = await authz.decide({ requestId, subject: "bench-user", authTime: 1n, approved: true }, gateway);
  const code = new URL(redirectUrl).searchParams.get("code")!;
  const { token } = await authz.exchangeCode(
    { code, redirectUri: BENCH_REDIRECT_URI, codeVerifier: verifier },
    { headers: { authorization: `Basic ${Buffer.from(`web:${secrets.web}`).toString("base64")}` } },
  );
  return token!.accessToken;
}

function log(message: string): void {
  process.stdout.write(`${message}\n`);
}

await main();
