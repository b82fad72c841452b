import type { KeySchema } from "./keys.js";
import type { RedisClient } from "./redis-client.js";
import { defineScript, guard } from "./redis-script.js";
import { AUDIT_EVENTS_KEPT, resourceWithin, type AuditLog, type AuditRecord, type EntryMeta, type RegistryCollection, type RegistryStore } from "../oauth/registry.js";

/**
 * The registry and audit log (oauth/registry.ts) of one tenant on Redis.
 * Each write is one Lua script over the keys of one collection, which share
 * a hash tag (store/keys.ts), so it is atomic on a single Redis and on
 * Cluster alike. Reads are one command each.
 */
export function createRedisRegistry(client: RedisClient, keys: KeySchema): RegistryStore {
  return {
    clients: createCollection(client, keys.registry("clients")),
    scopes: createCollection(client, keys.registry("scopes")),
    users: createCollection(client, keys.registry("users")),
  };
}

function createCollection<T extends EntryMeta>(client: RedisClient, keys: { entries: string; order: string; aliases: string }): RegistryCollection<T> {
  const all = [keys.entries, keys.order, keys.aliases];
  const parse = (json: string | null) => (json === null ? undefined : (JSON.parse(json) as T));
  return {
    get: (id) => guard(async () => parse(await client.hget(keys.entries, id))),
    getByAlias: (alias) =>
      guard(async () => {
        const json = (await readByAlias.run(client, [keys.entries, keys.aliases], [alias])) as string | null;
        return parse(json);
      }),
    create: (id, entry, alias) =>
      guard(async () => (await createEntry.run(client, all, [id, JSON.stringify({ ...entry, revision: 1 }), alias ?? ""])) === 1),
    replace: (id, revision, entry) =>
      guard(async () => (await replaceEntry.run(client, [keys.entries], [id, revision, JSON.stringify({ ...entry, revision: revision + 1 })])) as "replaced" | "conflict" | "missing"),
    delete: (id, alias) => guard(async () => (await deleteEntry.run(client, all, [id, alias ?? ""])) === 1),
    list: (after, limit) =>
      guard(async () => {
        const ids = await client.zrangebylex(keys.order, after === undefined ? "-" : `(${after}`, "+", "LIMIT", 0, limit);
        if (ids.length === 0) return [];
        const values = await client.hmget(keys.entries, ...ids);
        // An id whose entry vanished between the two reads (a concurrent delete) is skipped.
        return ids.flatMap((id, i) => (values[i] == null ? [] : [{ id, entry: JSON.parse(values[i]!) as T }]));
      }),
  };
}

/** KEYS: entries, aliases. ARGV: alias. */
const readByAlias = defineScript(`
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
return redis.call('HGET', KEYS[1], id)
`);

/** KEYS: entries, order, aliases. ARGV: id, json, alias ("" none). 1 when created, 0 when the id or alias is taken. */
const createEntry = defineScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[3], ARGV[1]) end
return 1
`);

/** KEYS: entries. ARGV: id, expected revision, json. */
const replaceEntry = defineScript(`
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 'missing' end
if tonumber(cjson.decode(current)['revision']) ~= tonumber(ARGV[2]) then return 'conflict' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 'replaced'
`);

/** KEYS: entries, order, aliases. ARGV: id, alias ("" none). */
const deleteEntry = defineScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' and redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[3], ARGV[2]) end
return 1
`);

/** Events read per round trip while filtering by resource. */
const SCAN_BATCH = 200;

/** The tenant's audit trail: one stream, trimmed to the last AUDIT_EVENTS_KEPT events on every append. */
export function createRedisAuditLog(client: RedisClient, keys: KeySchema): AuditLog {
  const toRecord = ([id, fields]: [string, string[]]): AuditRecord => {
    const data = JSON.parse(fields[1] ?? "{}") as Omit<AuditRecord, "id" | "time">;
    return { ...data, id, time: Number(id.split("-")[0]) };
  };
  return {
    append: (event) =>
      guard(async () => {
        const id = await client.xadd(keys.auditLog, "MAXLEN", AUDIT_EVENTS_KEPT, "*", "event", JSON.stringify(event));
        return { ...structuredClone(event), id: id!, time: Number(id!.split("-")[0]) };
      }),
    list: (before, limit, resource) =>
      guard(async () => {
        const result: AuditRecord[] = [];
        let end = before === undefined ? "+" : `(${before}`;
        // Newest first; with a resource filter, batches are read until the page is full or the trail ends (≤ AUDIT_EVENTS_KEPT).
        for (;;) {
          const count = resource === undefined ? limit - result.length : SCAN_BATCH;
          const batch = (await client.xrevrange(keys.auditLog, end, "-", "COUNT", count)) as Array<[string, string[]]>;
          for (const entry of batch) {
            const record = toRecord(entry);
            if (resource === undefined || resourceWithin(record.resource, resource)) result.push(record);
            if (result.length === limit) return result;
          }
          if (batch.length < count) return result;
          end = `(${batch[batch.length - 1]![0]}`;
        }
      }),
  };
}
