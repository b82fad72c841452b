import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { RedisConfig } from "../config.js";

/** A Redis connection of any topology: one server, Sentinel, or Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * Connection settings shared by every topology. A dead Redis must turn into a
 * prompt Unavailable, never a hang: commands are not queued while
 * disconnected, each has a timeout, and reconnection runs in the background.
 */
const BASE: RedisOptions = {
  enableOfflineQueue: false,
  // Measured: Introspect 7,032 vs 5,584 calls/s in the same run without it.
  enableAutoPipelining: true,
  maxRetriesPerRequest: 1,
  commandTimeout: 2_000,
  connectTimeout: 2_000,
  retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1_000),
};

/**
 * Builds the ioredis client for a configured topology: one URL, Sentinel, or
 * Cluster. `commandTimeoutMs` (authz.overload.redisCommandTimeoutMs) is the
 * innermost deadline of the chain: shorter than the call's budget, so a slow
 * Redis is answered temporarily_unavailable inside the call.
 */
export function createRedisClient(config: RedisConfig, timeouts: { commandTimeoutMs?: number } = {}): RedisClient {
  const COMMON: RedisOptions = { ...BASE, commandTimeout: timeouts.commandTimeoutMs ?? BASE.commandTimeout };
  switch (config.kind) {
    case "url":
      return new Redis(config.url, COMMON);
    case "sentinel":
      return new Redis({
        ...COMMON,
        sentinels: config.sentinels,
        name: config.name,
        password: config.password,
        sentinelPassword: config.sentinelPassword,
        // After a failover, reconnect to the new master rather than fail on a demoted replica.
        reconnectOnError: (error) => /READONLY/.test(error.message),
      });
    case "cluster":
      return new Cluster(config.nodes, {
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        scaleReads: "master",
        slotsRefreshTimeout: 2_000,
        clusterRetryStrategy: (attempt: number) => Math.min(100 * 2 ** attempt, 1_000),
        redisOptions: { ...COMMON, password: config.password },
      });
  }
}

/** Resolves when the client is ready, or after `timeoutMs` with false. */
export function waitUntilReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === "ready") return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off("ready", onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    client.once("ready", onReady);
  });
}
