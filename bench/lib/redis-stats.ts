import { Redis } from "ioredis";

/** One reading of a Redis server's counters (INFO commandstats + stats). */
export interface RedisSample {
  /** Calls per command name (lower case, as INFO prints them), commands run inside Lua scripts included. */
  readonly calls: Readonly<Record<string, number>>;
  /** total_reads_processed: read events on client sockets. */
  readonly reads: number;
}

/**
 * What Redis did between two samples: the commands by name and the read
 * events. At one request in flight, a read event is one round trip from a
 * client (a pipeline or a MULTI..EXEC sent in one write is one); under load,
 * commands of concurrent requests share reads, so reads are a lower bound.
 */
export interface RedisCost {
  readonly calls: Readonly<Record<string, number>>;
  readonly commands: number;
  readonly reads: number;
}

/** The INFO calls the meter itself makes: one command and one read per sample. */
const OWN_COMMANDS = new Set(["info"]);

/**
 * Reads INFO commandstats before and after a phase, on its own connection,
 * so that the Redis cost of a flow can be divided by the requests it served.
 */
export interface RedisStats {
  sample(): Promise<RedisSample>;
  close(): Promise<void>;
}

export function createRedisStats(url: string): RedisStats {
  const client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true });
  client.on("error", () => {});
  return {
    async sample() {
      const text = await client.info("commandstats", "stats");
      const calls: Record<string, number> = {};
      let reads = NaN;
      for (const line of text.split("\r\n")) {
        const command = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
        if (command !== null) calls[command[1]!] = Number(command[2]);
        const read = /^total_reads_processed:(\d+)/.exec(line);
        if (read !== null) reads = Number(read[1]);
      }
      return { calls, reads };
    },
    async close() {
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/** The cost between two samples, less the meter's own INFO calls (one read each side). */
export function diffRedis(before: RedisSample, after: RedisSample): RedisCost {
  const calls: Record<string, number> = {};
  for (const [name, count] of Object.entries(after.calls)) {
    if (OWN_COMMANDS.has(name)) continue;
    const delta = count - (before.calls[name] ?? 0);
    if (delta > 0) calls[name] = delta;
  }
  const commands = Object.values(calls).reduce((sum, n) => sum + n, 0);
  return { calls, commands, reads: Math.max(0, after.reads - before.reads - 2) };
}

/**
 * Measures the Redis cost of `phase`. A load generator that stops at its
 * deadline leaves requests in flight that the servers still finish, so the
 * counters are read once Redis has gone quiet (no command for 100 ms, at most
 * 3 s), before and after: the tail of one phase is not charged to the next.
 */
export async function measureRedis<T>(stats: RedisStats, phase: () => Promise<T>): Promise<{ result: T; redis: RedisCost }> {
  const before = await settle(stats);
  const result = await phase();
  const after = await settle(stats);
  return { result, redis: diffRedis(before, after) };
}

/** Samples until two samples 100 ms apart show no command but the meter's own (or 3 s have passed). */
async function settle(stats: RedisStats): Promise<RedisSample> {
  let previous = await stats.sample();
  for (let i = 0; i < 30; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const next = await stats.sample();
    if (diffRedis(previous, next).commands === 0) return next;
    previous = next;
  }
  return previous;
}

/** "7.0 cmds/req (evalsha 1.0, get 2.0, ...)", per request; commands inside scripts are counted too. */
export function formatRedisPerRequest(cost: RedisCost, requests: number, options: { reads?: boolean; detail?: boolean } = {}): string {
  if (requests <= 0) return "-";
  const per = (n: number) => (n / requests).toFixed(n / requests >= 10 ? 0 : 1);
  const detail = Object.entries(cost.calls)
    .sort(([, a], [, b]) => b - a)
    .filter(([, n]) => n / requests >= 0.05)
    .map(([name, n]) => `${name} ${per(n)}`)
    .join(", ");
  const reads = options.reads === true ? `, ${per(cost.reads)} round trips` : "";
  return `${per(cost.commands)} cmds${reads}${options.detail === false || detail === "" ? "" : ` (${detail})`}`;
}
