/**
 * npm run bench:rpc — Introspect, ExchangeCode and Refresh over Connect
 * (HTTP/2, binary) against one authz service process (the production build)
 * on Redis, with concurrent callers on loopback. Prints req/s, p50/p99, the
 * CPU each process used (% of one core and ms per call), and beside each
 * figure the foreign load (load average, CPU of every other process: issue 16).
 *
 * The calls use a lean Connect-protocol client on raw node:http2
 * (lib/connect-h2.ts): on two cores the connect-es client (about 350 µs of CPU
 * per call here) would be the bottleneck, not the service.
 *
 *   BENCH_SECONDS (default 5)   duration of each measured phase
 *   BENCH_CONCURRENCY (64)      calls in flight
 *   REDIS_URL                   a Redis to use; default: a redis-server started here
 *   BENCH_PROFILE=dir           write a CPU profile of the service to dir
 *   BENCH_PHASES                which phases (default: all of metadata, introspect,
 *                               introspect-first-seen, exchange, refresh)
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RefreshRequestSchema, RefreshResponseSchema } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { startRedisServer } from "../test/support/redis-server.js";
import { startBenchAuthz } from "./lib/authz-fixture.js";
import { formatResults, runLoad, type LoadResult } from "./lib/load.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const phases = new Set((process.env.BENCH_PHASES ?? "metadata,introspect,introspect-first-seen,exchange,refresh").split(","));

async function main(): Promise<void> {
  const ownRedis = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? ownRedis!.url;
  const authz = await startBenchAuthz({ replicas: 1, redis: { url: redisUrl }, profileDir: process.env.BENCH_PROFILE });
  try {
    const cpu = { service: authz.replicas[0]!.child.pid, "load generator": process.pid, redis: ownRedis?.pid };
    log(`authz service on :${authz.ports[0]}, Redis ${redisUrl}; ${concurrency} concurrent callers, ${seconds} s per phase`);
    const results: LoadResult[] = [];

    // Warm up connections, JIT and script caches.
    await runLoad("warm-up", { concurrency, seconds: 1 }, () => authz.issueTokens());

    if (phases.has("metadata")) {
      results.push(await runLoad("GetMetadata (the RPC path alone)", { concurrency, seconds, cpu }, () => authz.call("GetMetadata", new Uint8Array())));
    }

    if (phases.has("introspect")) {
      // Resource servers see the same tokens again and again.
      // In batches of `concurrency`: the service sheds what is over its limit (authz.overload), as it should.
      const bodies = await inBatches(1_000, concurrency, async () => authz.introspectBody((await authz.issueTokens()).accessToken));
      results.push(
        await runLoad("Introspect (1,000 live tokens)", { concurrency, seconds, cpu }, (w, i) =>
          authz.call("Introspect", bodies[(w * 7919 + i) % bodies.length]!, authz.asResourceServer),
        ),
      );
    }

    if (phases.has("introspect-first-seen")) {
      // Tokens never seen before: a signature verification each.
      log("issuing tokens for the first-seen Introspect phase ...");
      const unseen: Uint8Array[] = [];
      await runLoad("issue", { concurrency, seconds: 4 }, async () => void unseen.push(authz.introspectBody((await authz.issueTokens()).accessToken)));
      let next = 0;
      results.push(
        await runLoad("Introspect (each token first seen)", { concurrency, seconds: 1, cpu, stopWhen: () => next >= unseen.length }, () =>
          authz.call("Introspect", unseen[next++]!, authz.asResourceServer),
        ),
      );
    }

    if (phases.has("exchange")) {
      log("minting codes for ExchangeCode ...");
      const codes: string[] = [];
      const wanted = 5_000 * seconds;
      await runLoad("mint", { concurrency, seconds: 60, stopWhen: () => codes.length >= wanted }, async () => void codes.push(await authz.mintCode()));
      let next = 0;
      results.push(
        await runLoad("ExchangeCode", { concurrency, seconds, cpu, stopWhen: () => next >= codes.length }, () =>
          authz.call("ExchangeCode", authz.exchangeBody(codes[next++]!), authz.asWeb),
        ),
      );
    }

    if (phases.has("refresh")) {
      // Each caller rotates its own family, chained.
      const families = await Promise.all(Array.from({ length: concurrency }, async () => (await authz.issueTokens()).refreshToken));
      results.push(
        await runLoad("Refresh (rotation)", { concurrency, seconds, cpu }, async (worker) => {
          const body = toBinary(RefreshRequestSchema, create(RefreshRequestSchema, { refreshToken: families[worker]! }));
          const { token } = fromBinary(RefreshResponseSchema, await authz.call("Refresh", body, authz.asWeb));
          families[worker] = token!.refreshToken;
        }),
      );
    }
    process.stdout.write(`\n${formatResults(results)}\n`);
  } finally {
    await authz.stop();
    await ownRedis?.stop();
  }
}

function log(message: string): void {
  process.stderr.write(`bench:rpc: ${message}\n`);
}

await main();

/** `count` results of `make`, at most `batch` at a time. */
async function inBatches<T>(count: number, batch: number, make: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  while (results.length < count) results.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - results.length) }, make))));
  return results;
}
