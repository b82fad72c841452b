/**
 * npm run bench:token — the token endpoint end to end: HTTP/1.1 form posts
 * to the gateway's /oauth2/token, which calls the authz service over
 * Connect (HTTP/2), which uses Redis. Two phases, each `BENCH_SECONDS` long:
 *
 *   authorization_code   each request redeems one code minted beforehand
 *                        (Authorize + Decide over RPC), with PKCE and Basic auth
 *   refresh_token        each connection rotates its own refresh family, chained
 *
 * The authz service and the gateway each run in their own process from the
 * production build (`npm run build`: dist/, plain node); the load generator
 * (autocannon, in this process) and a Redis it starts unless REDIS_URL is set
 * share the machine. Everything is on loopback. Prints req/s, p50/p99 and the
 * CPU each process used.
 *
 *   BENCH_SECONDS (default 5)        duration of each measured phase
 *   BENCH_CONNECTIONS (default 64)   HTTP/1.1 keep-alive connections to the gateway
 *   REDIS_URL                        a Redis to use; default: a redis-server started here
 *   BENCH_PROFILE=dir                write CPU profiles of the gateway and the authz service to dir
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import autocannon from "autocannon";
import {
  AuthorizeRequestSchema,
  AuthorizeResponseSchema,
  DecideRequestSchema,
  DecideResponseSchema,
} from "../gen/gatehouse/v1/authorization_service_pb.js";
import { runNode, type RunningProcess } from "../test/support/process.js";
import { freePort, startRedisServer } from "../test/support/redis-server.js";
import { startCpuMeter } from "./lib/cpu.js";
import { createConnectH2Client, type ConnectH2Client } from "./lib/connect-h2.js";
import { formatResults, runLoad, type LoadResult } from "./lib/load.js";
import { BENCH_REDIRECT_URI, createBenchSecrets, writeBenchStackConfig } from "./lib/stack-config.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 64);

const redirectUri = BENCH_REDIRECT_URI;

async function main(): Promise<void> {
  const ownRedis = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? ownRedis!.url;
  const authzPort = await freePort();
  const gatewayPort = await freePort();
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const secrets = await createBenchSecrets();
  const basicAuth = `Basic ${Buffer.from(`web:${secrets.web}`).toString("base64")}`;
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-token-"));
  const configFile = writeBenchStackConfig({ dir, name: "token", secrets, authzPort, gatewayPort, lifetimes: { code: 600 } });
  const env = { GATEHOUSE_CONFIG: configFile, REDIS_URL: redisUrl, LOG_LEVEL: "warn", ...secrets.env };
  // The production artefacts: `npm run build` output, run with plain node, one process each.
  const profile = (name: string) => (process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`, `--cpu-prof-name=${name}.cpuprofile`] : []);
  const authz = runNode("dist/services/authz/main.js", { env, nodeArgs: profile("authz") });
  let gateway: RunningProcess | undefined;
  let lean: ConnectH2Client | undefined;
  try {
    gateway = runNode("dist/gateway/main.js", { env, nodeArgs: profile("gateway") });
    // Ready means the gateway answers and reaches the authz service (health plugin).
    await waitForReady(`${gatewayUrl}/readyz`, () => `${authz.output()}${gateway?.output() ?? ""}`);

    // Setup traffic (minting codes) goes straight to the authz service, as the consent page's Decide would.
    const rpc = (lean = createConnectH2Client(`http://127.0.0.1:${authzPort}`, { sessions: 4 }));
    const verifier = randomBytes(32).toString("base64url");
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const asGateway = { "gatehouse-service-credential": secrets.service };
    const path = (method: string) => `/gatehouse.v1.AuthorizationService/${method}`;
    const authorizeBody = toBinary(
      AuthorizeRequestSchema,
      create(AuthorizeRequestSchema, { responseType: "code", clientId: "web", redirectUri, scope: "read", codeChallenge: challenge, codeChallengeMethod: "S256" }),
    );
    /** Authorize + Decide over RPC, as the consent page would: one fresh code. */
    const mintCode = async () => {
      const { requestId } = fromBinary(AuthorizeResponseSchema, await rpc.call(path("Authorize"), authorizeBody, asGateway));
      const decision = toBinary(DecideRequestSchema, create(DecideRequestSchema, { requestId, subject: "bench-user", authTime: 1n, approved: true }));
      const { redirectUrl } = fromBinary(DecideResponseSchema, await rpc.call(path("Decide"), decision, asGateway));
      return new URL(redirectUrl).searchParams.get("code")!;
    };
    const exchangeBody = (code: string) =>
      new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier }).toString();
    const exchangeOnce = async (code: string) => {
      const response = await fetch(`${gatewayUrl}/oauth2/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: basicAuth },
        body: exchangeBody(code),
      });
      if (response.status !== 200) throw new Error(`token endpoint answered ${response.status}: ${await response.text()}`);
      return (await response.json()) as { refresh_token: string };
    };

    const pids = { gateway: gateway.child.pid, "authz service": authz.child.pid, redis: ownRedis?.pid, "load generator": process.pid };
    log(`gateway pid ${gateway.child.pid} on :${gatewayPort}, authz service pid ${authz.child.pid} on :${authzPort}, Redis ${redisUrl}`);
    log(`${connections} HTTP/1.1 connections, ${seconds} s per phase`);

    const codes: string[] = [];
    const mint = async (wanted: number) => {
      codes.length = 0;
      const minted = await runLoad("mint", { concurrency: 64, seconds: 120, stopWhen: () => codes.length >= wanted }, async () => void codes.push(await mintCode()));
      if (codes.length < wanted) throw new Error(`minted ${codes.length} of ${wanted} codes; first error: ${minted.firstError}`);
    };

    // Warm-up: JIT, connections and script caches, through the same path as the measured phase.
    await mint(3_000);
    await hammer("warm-up", { seconds: 2, body: () => exchangeBody(codes.pop() ?? "exhausted") }, {});
    const results: LoadResult[] = [];

    log("minting codes for the authorization_code phase ...");
    await mint(7_000 * seconds);
    log(`${codes.length} codes minted`);
    let next = 0;
    results.push(
      await hammer("token: authorization_code (PKCE, Basic)", { seconds, body: () => exchangeBody(codes[next++] ?? "ran-out-of-codes") }, pids),
    );
    if (next > codes.length) log("warning: the authorization_code phase ran out of minted codes; raise the mint");

    // Refresh: one family per connection, each response's refresh token used for the connection's next request.
    // Twice as many families as connections, so a connection never waits for a token to come back.
    await mint(2 * connections);
    const families = await Promise.all(codes.splice(0, 2 * connections).map(async (code) => (await exchangeOnce(code)).refresh_token));
    results.push(await hammer("token: refresh_token (rotation)", { seconds, refresh: families }, pids));

    process.stdout.write(`\n${formatResults(results)}\n`);
  } finally {
    lean?.close();
    await gateway?.stop();
    await authz.stop();
    await ownRedis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  /**
   * One autocannon run against POST /oauth2/token. Either a body per request
   * (authorization_code), or per connection a refresh token that each
   * response replaces (refresh_token: rotation makes the old one dead).
   */
  async function hammer(
    name: string,
    phase: { seconds: number; body?: () => string; refresh?: string[] },
    cpu: Record<string, number | undefined>,
  ): Promise<LoadResult> {
    const meter = startCpuMeter(cpu);
    // Live refresh tokens: a request takes one, its response gives the rotated one back. (autocannon
    // resets a connection's context whenever its request list wraps, so the chain cannot live there.)
    const pool = [...(phase.refresh ?? [])];
    const result = await autocannon({
      url: `${gatewayUrl}/oauth2/token`,
      connections,
      duration: phase.seconds,
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basicAuth },
      requests: [
        {
          method: "POST",
          setupRequest: (request) => {
            if (phase.body !== undefined) return { ...request, body: phase.body() };
            return { ...request, body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: pool.shift() ?? "none-left" }).toString() };
          },
          onResponse: (status, body) => {
            if (phase.refresh !== undefined && status === 200) pool.push((JSON.parse(body) as { refresh_token: string }).refresh_token);
          },
        },
      ],
    });
    const used = meter();
    const ok = result["2xx"];
    const errors = result.non2xx + result.errors + result.timeouts;
    return {
      name,
      requests: ok,
      errors,
      seconds: result.duration,
      rps: ok / result.duration,
      p50: result.latency.p50,
      p99: result.latency.p99,
      ...(errors > 0 ? { firstError: `${result.non2xx} non-2xx, ${result.errors} socket errors, ${result.timeouts} timeouts` } : {}),
      ...(Object.keys(cpu).length > 0 ? { cpu: used } : {}),
    };
  }
}

async function waitForReady(url: string, output: () => string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not become ready; output:\n${output()}`);
}

function log(message: string): void {
  process.stderr.write(`bench:token: ${message}\n`);
}

await main();
