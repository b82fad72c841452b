import { randomBytes } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { createRedisClient, waitUntilReady } from "../../services/authz/store/redis-client.js";
import { createRedisStore } from "../../services/authz/store/redis-store.js";
import { defineStoreContract, type StoreUnderTest } from "../integration/store-contract.js";
import { startRedisCluster, startRedisSentinel, type RedisCluster, type RedisSentinelSetup } from "../support/redis-topologies.js";
import { scaledBudget } from "../support/scaled-budget.js";

let cluster: RedisCluster;
let sentinel: RedisSentinelSetup;
beforeAll(async () => {
  [cluster, sentinel] = await Promise.all([startRedisCluster(), startRedisSentinel()]);
});
afterAll(async () => {
  await Promise.all([cluster?.stop(), sentinel?.stop()]);
});

async function storeOn(config: Parameters<typeof createRedisClient>[0], tenant?: string): Promise<StoreUnderTest> {
  let now = Date.now();
  const client = createRedisClient(config);
  if (!(await waitUntilReady(client, scaledBudget(5_000)))) throw new Error(`the store's Redis client was not ready within ${scaledBudget(5_000)} ms`);
  // Replicas acknowledge every single-use write here, as in production on these topologies
  // (within 500 ms there; scaled here, since a busy machine's replica acknowledges late).
  const store = createRedisStore({ client, clock: () => now, keyPrefix: `contract-${randomBytes(4).toString("hex")}:`, replicaAckTimeoutMs: scaledBudget(500), tenant });
  return {
    store,
    now: () => now,
    advance: async (ms) => {
      now += ms;
      await new Promise((resolve) => setTimeout(resolve, ms));
    },
    close: () => store.close(),
  };
}

defineStoreContract("Redis Cluster (3 masters, 3 replicas)", () =>
  storeOn({ kind: "cluster", nodes: cluster.nodes.slice(0, 1).map(({ host, port }) => ({ host, port })), password: undefined }),
);

// Issue 11: a tenant's key space (its own prefix, the hash tag per grant) keeps every script on one slot.
defineStoreContract("Redis Cluster (3 masters, 3 replicas), tenant-scoped store", () =>
  storeOn({ kind: "cluster", nodes: cluster.nodes.slice(0, 1).map(({ host, port }) => ({ host, port })), password: undefined }, "acme"),
);

defineStoreContract("Redis Sentinel (master, replica, 3 sentinels)", () =>
  storeOn({ kind: "sentinel", name: sentinel.masterName, sentinels: [...sentinel.sentinels], password: undefined, sentinelPassword: undefined }),
);
