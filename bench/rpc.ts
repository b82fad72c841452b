/**
 * npm run bench:rpc — Introspect, ExchangeCode and Refresh over Connect
 * (HTTP/2, binary) against one authz service process on Redis, with
 * concurrent callers on loopback. Prints req/s and p50/p99 per RPC.
 *
 * Setup (minting codes and tokens) uses the connect-es client; the measured
 * calls use a lean Connect-protocol client on raw node:http2
 * (lib/connect-h2.ts), because on two cores the connect-es client (about
 * 350 µs of CPU per call here) would be the bottleneck, not the service.
 *
 *   BENCH_SECONDS (default 5)   duration of each measured phase
 *   BENCH_CONCURRENCY (64)      calls in flight
 *   REDIS_URL                   a Redis to use; default: a redis-server started here
 *   BENCH_PROFILE=dir           write a CPU profile of the service to dir
 *   BENCH_PHASES                which phases, e.g. "introspect" (default: all of
 *                               introspect, introspect-first-seen, exchange, refresh)
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { exportJWK, generateKeyPair } from "jose";
import { stringify } from "yaml";
import {
  AuthorizationService,
  AuthorizeRequestSchema,
  AuthorizeResponseSchema,
  DecideRequestSchema,
  DecideResponseSchema,
  ExchangeCodeRequestSchema,
  IntrospectRequestSchema,
  RefreshRequestSchema,
  RefreshResponseSchema,
} from "../gen/gatehouse/v1/authorization_service_pb.js";
import { createConnectH2Client } from "./lib/connect-h2.js";
import { hashSecret } from "../services/authz/oauth/secrets.js";
import { runNode } from "../test/support/process.js";
import { freePort, startRedisServer } from "../test/support/redis-server.js";
import { formatResults, runLoad, type LoadResult } from "./lib/load.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const phases = new Set((process.env.BENCH_PHASES ?? "introspect,introspect-first-seen,exchange,refresh").split(","));

const webSecret = randomBytes(32).toString("base64url");
const rsSecret = randomBytes(32).toString("base64url");
const serviceCredential = randomBytes(32).toString("base64url");
const redirectUri = "https://bench.test/cb";

async function main(): Promise<void> {
  const ownRedis = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? ownRedis!.url;
  const port = await freePort();
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-"));
  const configFile = join(dir, "config.yaml");
  writeFileSync(
    configFile,
    stringify({
      issuer: "https://auth.bench.test",
      authz: {
        port,
        keyPrefix: `bench-${Date.now()}:`,
        serviceCredential: { env: "BENCH_SERVICE_CREDENTIAL" },
        signingKeys: { source: { env: "BENCH_SIGNING_KEYS" } },
      },
      lifetimes: { code: 600 },
      scopes: [{ name: "read", description: "Read" }],
      clients: [
        { id: "web", name: "Web", type: "confidential", secretHashes: [`sha256:${hashSecret(webSecret)}`], redirectUris: [redirectUri], scopes: ["read"] },
        { id: "rs", name: "Resource server", type: "confidential", secretHashes: [`sha256:${hashSecret(rsSecret)}`], grantTypes: [], responseTypes: [], introspectAnyToken: true },
      ],
    }),
  );
  // The production artefact: `npm run build` output, run with plain node.
  const service = runNode("dist/services/authz/main.js", {
    nodeArgs: process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
    env: {
      GATEHOUSE_CONFIG: configFile,
      REDIS_URL: redisUrl,
      LOG_LEVEL: "warn",
      BENCH_SERVICE_CREDENTIAL: serviceCredential,
      BENCH_SIGNING_KEYS: JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: "bench", alg: "ES256" }] }),
    },
  });
  try {
    await waitForService(port);
    const transport = createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "2", useBinaryFormat: true });
    const authz = createClient(AuthorizationService, transport);
    const gateway = { headers: { "gatehouse-service-credential": serviceCredential } };
    const asWeb = { headers: { authorization: `Basic ${Buffer.from(`web:${webSecret}`).toString("base64")}` } };
    const asRs = { headers: { authorization: `Basic ${Buffer.from(`rs:${rsSecret}`).toString("base64")}` } };

    const verifier = randomBytes(32).toString("base64url");
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const lean = createConnectH2Client(`http://127.0.0.1:${port}`, { sessions: 4 });
    const path = (method: string) => `/gatehouse.v1.AuthorizationService/${method}`;
    const authorizeBody = toBinary(
      AuthorizeRequestSchema,
      create(AuthorizeRequestSchema, { responseType: "code", clientId: "web", redirectUri, scope: "read", codeChallenge: challenge, codeChallengeMethod: "S256" }),
    );
    const mintCode = async () => {
      const { requestId } = fromBinary(AuthorizeResponseSchema, await lean.call(path("Authorize"), authorizeBody, gateway.headers));
      const decision = toBinary(DecideRequestSchema, create(DecideRequestSchema, { requestId, subject: "bench-user", authTime: 1n, approved: true }));
      const { redirectUrl } = fromBinary(DecideResponseSchema, await lean.call(path("Decide"), decision, gateway.headers));
      return new URL(redirectUrl).searchParams.get("code")!;
    };
    const exchange = (code: string) => authz.exchangeCode({ code, redirectUri, codeVerifier: verifier }, asWeb);
    const leanIntrospect = (token: string) =>
      lean.call(path("Introspect"), toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token })), asRs.headers);

    const cpu = { service: service.child.pid, "load generator": process.pid, redis: ownRedis?.pid };
    log(`authz service pid ${service.child.pid} on :${port}, Redis ${redisUrl}; ${concurrency} concurrent callers, ${seconds} s per phase`);
    const results: LoadResult[] = [];

    // Warm up connections, JIT and script caches.
    await runLoad("warm-up", { concurrency, seconds: 1 }, async () => exchange(await mintCode()));

    // Introspect: resource servers see the same tokens again and again.
    const tokens = await Promise.all(Array.from({ length: 1_000 }, async () => (await exchange(await mintCode())).token!.accessToken));
    const introspectBodies = tokens.map((token) => toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token })));
    if (phases.has("metadata")) {
      results.push(await runLoad("GetMetadata (no work: the RPC path alone)", { concurrency, seconds, cpu }, () => lean.call(path("GetMetadata"), new Uint8Array())));
    }
    if (phases.has("introspect")) results.push(
      await runLoad("Introspect (1,000 live tokens)", { concurrency, seconds, cpu }, (w, i) =>
        lean.call(path("Introspect"), introspectBodies[(w * 7919 + i) % introspectBodies.length]!, asRs.headers),
      ),
    );

    // Introspect of tokens never seen before: a signature verification each.
    if (phases.has("introspect-first-seen")) {
    log("issuing tokens for the first-seen Introspect phase ...");
    const unseen: string[] = [];
    await runLoad("issue", { concurrency, seconds: 4 }, async () => void unseen.push((await exchange(await mintCode())).token!.accessToken));
    let unseenIndex = 0;
    results.push(
      await runLoad("Introspect (each token first seen)", { concurrency, seconds: 1, cpu }, () => {
        const token = unseen[unseenIndex++];
        if (token === undefined) throw new Error("ran out of unseen tokens");
        return leanIntrospect(token);
      }),
    );
    }

    // ExchangeCode: codes minted beforehand, each redeemed once.
    if (phases.has("exchange")) {
    log("minting codes for ExchangeCode ...");
    const codes: string[] = [];
    const wanted = 5_000 * seconds;
    await runLoad("mint", { concurrency, seconds: 60, stopWhen: () => codes.length >= wanted }, async () => void codes.push(await mintCode()));
    let next = 0;
    results.push(
      await runLoad("ExchangeCode", { concurrency, seconds, cpu }, () => {
        const code = codes[next++];
        if (code === undefined) throw new Error("ran out of minted codes");
        return lean.call(
          path("ExchangeCode"),
          toBinary(ExchangeCodeRequestSchema, create(ExchangeCodeRequestSchema, { code, redirectUri, codeVerifier: verifier })),
          asWeb.headers,
        );
      }),
    );
    }

    // Refresh: each caller rotates its own family, chained.
    if (phases.has("refresh")) {
    const families = await Promise.all(Array.from({ length: concurrency }, async () => (await exchange(await mintCode())).token!.refreshToken));
    results.push(
      await runLoad("Refresh (rotation)", { concurrency, seconds, cpu }, async (worker) => {
        const body = toBinary(RefreshRequestSchema, create(RefreshRequestSchema, { refreshToken: families[worker]! }));
        const { token } = fromBinary(RefreshResponseSchema, await lean.call(path("Refresh"), body, asWeb.headers));
        families[worker] = token!.refreshToken;
      }),
    );
    }

    lean.close();
    process.stdout.write(`\n${formatResults(results)}\n`);
  } finally {
    await service.stop();
    await ownRedis?.stop();
  }
}

async function waitForService(port: number): Promise<void> {
  const authz = createClient(AuthorizationService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }));
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

function log(message: string): void {
  process.stderr.write(`bench:rpc: ${message}\n`);
}

await main();
