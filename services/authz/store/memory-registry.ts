import type { Clock } from "../oauth/clock.js";
import { AUDIT_EVENTS_KEPT, compareIds, resourceWithin, type AuditLog, type AuditRecord, type EntryMeta, type RegistryCollection, type RegistryStore } from "../oauth/registry.js";

/**
 * The reference registry and audit log (oauth/registry.ts) of one tenant, in
 * one process's memory. Each method body runs to completion before another
 * starts, so each is atomic, as the Redis scripts are. Entries are copied in
 * and out, so nobody holds a reference into the store.
 */
export function createMemoryRegistry(): RegistryStore {
  return { clients: createCollection(), scopes: createCollection(), users: createCollection() };
}

function createCollection<T extends EntryMeta>(): RegistryCollection<T> {
  const entries = new Map<string, string>();
  const aliases = new Map<string, string>();
  const parse = (json: string | undefined) => (json === undefined ? undefined : (JSON.parse(json) as T));
  return {
    async get(id) {
      return parse(entries.get(id));
    },
    async getByAlias(alias) {
      const id = aliases.get(alias);
      return id === undefined ? undefined : parse(entries.get(id));
    },
    async create(id, entry, alias) {
      if (entries.has(id) || (alias !== undefined && aliases.has(alias))) return false;
      entries.set(id, JSON.stringify({ ...entry, revision: 1 }));
      if (alias !== undefined) aliases.set(alias, id);
      return true;
    },
    async replace(id, revision, entry) {
      const current = parse(entries.get(id));
      if (current === undefined) return "missing";
      if (current.revision !== revision) return "conflict";
      entries.set(id, JSON.stringify({ ...entry, revision: revision + 1 }));
      return "replaced";
    },
    async delete(id, alias) {
      if (!entries.delete(id)) return false;
      if (alias !== undefined && aliases.get(alias) === id) aliases.delete(alias);
      return true;
    },
    async list(after, limit) {
      const ids = [...entries.keys()].filter((id) => after === undefined || compareIds(id, after) > 0).sort(compareIds).slice(0, limit);
      return ids.map((id) => ({ id, entry: parse(entries.get(id))! }));
    },
  };
}

/** The audit log of one tenant in memory: the last AUDIT_EVENTS_KEPT events. */
export function createMemoryAuditLog(clock: Clock): AuditLog {
  const events: AuditRecord[] = [];
  let lastMs = 0;
  let sequence = 0;
  return {
    async append(event) {
      const time = clock();
      // Stream ids: ms, then a sequence within the same (or an earlier-seeming) ms, so ids always increase.
      if (time > lastMs) {
        lastMs = time;
        sequence = 0;
      } else sequence++;
      const record: AuditRecord = structuredClone({ ...event, id: `${lastMs}-${sequence}`, time });
      events.push(record);
      if (events.length > AUDIT_EVENTS_KEPT) events.splice(0, events.length - AUDIT_EVENTS_KEPT);
      return structuredClone(record);
    },
    async list(before, limit, resource) {
      const result: AuditRecord[] = [];
      for (let i = events.length - 1; i >= 0 && result.length < limit; i--) {
        const event = events[i]!;
        if (before !== undefined && compareStreamIds(event.id, before) >= 0) continue;
        if (resource !== undefined && !resourceWithin(event.resource, resource)) continue;
        result.push(structuredClone(event));
      }
      return result;
    },
  };
}

/** Orders `{ms}-{seq}` ids as Redis streams do. */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am !== bm ? am - bm : as - bs;
}
