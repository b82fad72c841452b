/**
 * npm run bench:scale — code exchanges and introspections per second with one
 * and with two authz replicas, on one Redis and on a Redis Cluster (3 masters,
 * 3 replicas; writes wait for a replica's acknowledgement there). Each replica
 * is its own process from the production build; the load spreads over them.
 * Loopback only, bounded: BENCH_SECONDS (default 4) per phase.
 *
 * On this two-core machine, two replicas share the same two cores with the
 * load generator and Redis, so the figures show the cost of the topology, not
 * the gain of another machine.
 */
import { startRedisServer } from "../test/support/redis-server.js";
import { startRedisCluster } from "../test/support/redis-topologies.js";
import { startBenchAuthz, type BenchRedis } from "./lib/authz-fixture.js";
import { formatResults, runLoad, type LoadResult } from "./lib/load.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 4);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);

async function measure(label: string, replicas: number, redis: BenchRedis): Promise<LoadResult[]> {
  const authz = await startBenchAuthz({ replicas, redis });
  try {
    await runLoad("warm-up", { concurrency, seconds: 1 }, () => authz.issueTokens());
    const codes: string[] = [];
    await runLoad("mint", { concurrency, seconds: 60, stopWhen: () => codes.length >= 4_000 * seconds }, async () => void codes.push(await authz.mintCode()));
    let next = 0;
    const exchange = await runLoad(`ExchangeCode, ${label}`, { concurrency, seconds, stopWhen: () => next >= codes.length }, () =>
      authz.call("ExchangeCode", authz.exchangeBody(codes[next++]!), authz.asWeb),
    );
    const bodies = await Promise.all(Array.from({ length: 500 }, async () => authz.introspectBody((await authz.issueTokens()).accessToken)));
    const introspect = await runLoad(`Introspect, ${label}`, { concurrency, seconds }, (w, i) =>
      authz.call("Introspect", bodies[(w * 7919 + i) % bodies.length]!, authz.asResourceServer),
    );
    return [exchange, introspect];
  } finally {
    await authz.stop();
  }
}

async function main(): Promise<void> {
  const results: LoadResult[] = [];
  const redis = await startRedisServer();
  try {
    results.push(...(await measure("1 replica, one Redis", 1, { url: redis.url })));
    results.push(...(await measure("2 replicas, one Redis", 2, { url: redis.url })));
  } finally {
    await redis.stop();
  }
  const cluster = await startRedisCluster();
  try {
    const nodes = [{ host: "127.0.0.1", port: cluster.nodes[0]!.port }];
    results.push(...(await measure("1 replica, Redis Cluster", 1, { cluster: nodes })));
    results.push(...(await measure("2 replicas, Redis Cluster", 2, { cluster: nodes })));
  } finally {
    await cluster.stop();
  }
  process.stdout.write(`\n${formatResults(results)}\n`);
}

await main();
