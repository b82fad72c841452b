import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort, startRedisServer, type RedisServer } from "./redis-server.js";
import { waitFor } from "./wait-for.js";

const run = promisify(execFile);

export interface RedisCluster {
  readonly nodes: ReadonlyArray<{ host: string; port: number; server: RedisServer }>;
  /** The node currently serving `key`'s slot as master. */
  masterFor(key: string): Promise<{ port: number; server: RedisServer }>;
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster on loopback: `masters` masters and one replica each,
 * from `redis-server --cluster-enabled yes` and `redis-cli --cluster create`.
 * Timeouts are short so a failover takes seconds, not the default 15.
 */
export async function startRedisCluster(options: { masters?: number; nodeTimeoutMs?: number } = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-cluster-"));
  const ports = await distinctFreePorts(masters * 2);
  const servers = await Promise.all(
    ports.map((port) =>
      startRedisServer({
        port,
        args: [
          "--cluster-enabled", "yes",
          "--cluster-config-file", join(dir, `nodes-${port}.conf`),
          "--cluster-node-timeout", String(options.nodeTimeoutMs ?? 1_000),
          "--cluster-replica-validity-factor", "0",
          "--dir", dir,
        ],
      }),
    ),
  );
  await run("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "1", "--cluster-yes"]);
  await waitForClusterOk(ports);
  const nodes = ports.map((port, i) => ({ host: "127.0.0.1", port, server: servers[i]! }));
  return {
    nodes,
    async masterFor(key) {
      for (const node of nodes) {
        const client = new Redis({ port: node.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        client.on("error", () => {});
        try {
          await client.connect();
          const role = (await client.call("ROLE")) as [string];
          const slot = Number(await client.call("CLUSTER", "KEYSLOT", key));
          const slots = (await client.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>;
          const owner = slots.find(([from, to]) => slot >= from && slot <= to);
          if (role[0] === "master" && owner !== undefined && owner[2][1] === node.port) return node;
        } catch {
          // a stopped node
        } finally {
          client.disconnect();
        }
      }
      throw new Error(`no master serves the slot of ${key}`);
    },
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

/** Every node sees the cluster ok, and every master has an in-sync replica (a failover then loses nothing acknowledged). */
async function waitForClusterOk(ports: number[]): Promise<void> {
  await waitFor(
    async () => {
      const states = await Promise.all(
        ports.map(async (port) => {
          const { stdout: cluster } = await run("redis-cli", ["-p", String(port), "CLUSTER", "INFO"]).catch(() => ({ stdout: "" }));
          const { stdout: replication } = await run("redis-cli", ["-p", String(port), "INFO", "replication"]).catch(() => ({ stdout: "" }));
          const synced = /role:master/.test(replication) ? /connected_slaves:[1-9]/.test(replication) && /slave0:.*state=online/.test(replication) : /master_link_status:up/.test(replication);
          return /cluster_state:ok/.test(cluster) && synced;
        }),
      );
      return states.every(Boolean);
    },
    // A few seconds on a quiet machine: gossip, then each replica's first sync.
    { budgetMs: 15_000, what: "every node of the Redis cluster to see cluster_state:ok, and every replica in sync", intervalMs: 200 },
  );
}

export interface RedisSentinelSetup {
  readonly masterName: string;
  readonly sentinels: ReadonlyArray<{ host: string; port: number }>;
  readonly master: RedisServer;
  readonly replica: RedisServer;
  /** The port of whichever server the sentinels currently name as master. */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

/** A master, one replica and three sentinels on loopback, with fast failure detection. */
export async function startRedisSentinel(options: { downAfterMs?: number } = {}): Promise<RedisSentinelSetup> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-sentinel-"));
  const masterName = "gatehouse";
  const master = await startRedisServer();
  const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(master.port)] });
  const sentinelPorts = await distinctFreePorts(3);
  const { writeFileSync } = await import("node:fs");
  const sentinels = await Promise.all(
    sentinelPorts.map(async (port) => {
      const file = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        file,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1_000}`,
          `sentinel failover-timeout ${masterName} 5000`,
          `sentinel parallel-syncs ${masterName} 1`,
        ].join("\n"),
      );
      return startRedisServer({ port, configFile: file, args: ["--sentinel"] });
    }),
  );
  const currentMasterPort = async () => {
    const { stdout } = await run("redis-cli", ["-p", String(sentinelPorts[0]), "SENTINEL", "get-master-addr-by-name", masterName]);
    return Number(stdout.trim().split("\n")[1]);
  };
  // The replica in sync and known to the sentinels: a few seconds on a quiet machine.
  await waitFor(
    async () => {
      const { stdout } = await run("redis-cli", ["-p", String(replica.port), "INFO", "replication"]);
      const { stdout: known } = await run("redis-cli", ["-p", String(sentinelPorts[0]), "SENTINEL", "replicas", masterName]).catch(() => ({ stdout: "" }));
      return /master_link_status:up/.test(stdout) && known.includes(String(replica.port));
    },
    { budgetMs: 15_000, what: "the Redis replica to sync and the sentinels to know it", intervalMs: 200 },
  );
  return {
    masterName,
    sentinels: sentinelPorts.map((port) => ({ host: "127.0.0.1", port })),
    master,
    replica,
    currentMasterPort,
    async stop() {
      await Promise.all([...sentinels, master, replica].map((s) => s.stop()));
    },
  };
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}
