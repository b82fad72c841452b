import type { Clock } from "../oauth/clock.js";
import type {
  AttemptCounter,
  CodeGrant,
  CodeRedemption,
  ParkedRequest,
  RefreshFamily,
  Revocation,
  RotateInput,
  Rotation,
  Session,
  SessionExpiry,
  SessionParticipant,
  Store,
  StoredSession,
  UserState,
} from "../oauth/store.js";
import type { TenantStores } from "./tenant-stores.js";
import { createMemoryAuditLog, createMemoryRegistry } from "./memory-registry.js";
import { checkNextGeneration, type SigningKeySet, type SigningKeyStore } from "../oauth/signing-key-store.js";

/**
 * The reference Store: a single process's memory. It is the embedded default
 * when no Redis is configured. JavaScript runs one callback at a time, so each
 * method body below is atomic, which is what the Redis store achieves with
 * one Lua script per operation.
 */
export function createMemoryStore(options: { clock: Clock; sweepIntervalMs?: number }): Store {
  return createMemoryStores(options).forTenant(undefined);
}

type FeedListener = (revocation: Revocation, tenant: string | undefined) => void;

/**
 * Every tenant's store in one process's memory (tenant-stores.ts): each
 * tenant has a table of its own, so nothing of one is visible to another;
 * revocations travel through one feed, each with its tenant.
 */
export function createMemoryStores(options: { clock: Clock; sweepIntervalMs?: number }): TenantStores {
  const listeners = new Set<FeedListener>();
  const stores = new Map<string | undefined, Store>();
  const sweeps: NodeJS.Timeout[] = [];
  const close = async () => {
    for (const sweep of sweeps) clearInterval(sweep);
    listeners.clear();
  };
  return {
    forTenant(tenant) {
      let store = stores.get(tenant);
      if (store === undefined) {
        const table = new ExpiringMap(options.clock);
        const sweep = setInterval(() => table.sweep(), options.sweepIntervalMs ?? 30_000);
        sweep.unref();
        sweeps.push(sweep);
        store = createTenantMemoryStore(options.clock, table, tenant, listeners, close);
        stores.set(tenant, store);
      }
      return store;
    },
    async subscribeAll(onRevocation) {
      listeners.add(onRevocation);
      return { unsubscribe: () => listeners.delete(onRevocation) };
    },
    async ping() {},
    close,
  };
}

function createTenantMemoryStore(clock: Clock, table: ExpiringMap, tenant: string | undefined, listeners: Set<FeedListener>, close: () => Promise<void>): Store {
  /** Scheduled session ends (Back-Channel Logout on expiry); taken by the sweeper. */
  const expiries: SessionExpiry[] = [];

  const get = <T>(key: string): T | undefined => table.get(key) as T | undefined;
  /** Adds a member to an index set that lives as long as its longest-lived member may (issue 12). */
  const index = (key: string, member: string, ttlMs: number) => {
    const members = get<Set<string>>(key) ?? new Set<string>();
    members.add(member);
    table.set(key, members, Math.max(ttlMs, (table.expiresAt(key) ?? 0) - clock()));
  };

  return {
    registry: createMemoryRegistry(),
    audit: createMemoryAuditLog(clock),
    requests: {
      async park(requestHash, request, ttlSeconds) {
        table.set(`request:${requestHash}`, structuredClone(request), ttlSeconds * 1000);
      },
      async take(requestHash) {
        const request = get<ParkedRequest>(`request:${requestHash}`);
        table.delete(`request:${requestHash}`);
        return request;
      },
    },

    codes: {
      async save(codeHash, grant, ttlSeconds) {
        table.set(`code:${codeHash}`, { grant: structuredClone(grant) }, ttlSeconds * 1000);
      },
      async redeem(codeHash, tombstoneTtlSeconds): Promise<CodeRedemption> {
        const entry = get<{ grant: CodeGrant } | { redeemedGrantId: string }>(`code:${codeHash}`);
        if (entry === undefined) return { kind: "unknown" };
        if ("redeemedGrantId" in entry) return { kind: "replayed", grantId: entry.redeemedGrantId };
        table.set(`code:${codeHash}`, { redeemedGrantId: entry.grant.grantId }, tombstoneTtlSeconds * 1000);
        return { kind: "redeemed", grant: entry.grant };
      },
    },

    grants: {
      async create(family) {
        if (table.has(`grant-revoked:${family.grantId}`)) return false;
        index(`subject-grants:${family.subject}`, family.grantId, family.familyExpiresAt - clock());
        table.set(`grant:${family.grantId}`, { family: structuredClone(family), previous: undefined }, family.tokenExpiresAt - clock());
        return true;
      },
      async listOfSubject(subject) {
        const members = get<Set<string>>(`subject-grants:${subject}`);
        const families: RefreshFamily[] = [];
        for (const grantId of [...(members ?? [])]) {
          const entry = table.has(`grant-revoked:${grantId}`) ? undefined : get<GrantEntry>(`grant:${grantId}`);
          if (entry === undefined) members!.delete(grantId);
          else families.push(structuredClone(entry.family));
        }
        return families;
      },
      async get(grantId) {
        if (table.has(`grant-revoked:${grantId}`)) return undefined;
        const entry = get<GrantEntry>(`grant:${grantId}`);
        return entry === undefined ? undefined : structuredClone(entry.family);
      },
      async rotate(input: RotateInput): Promise<Rotation> {
        const key = `grant:${input.grantId}`;
        const entry = get<GrantEntry>(key);
        if (entry === undefined || table.has(`grant-revoked:${input.grantId}`)) return { kind: "unknown" };
        const now = clock();
        const usedKey = `grant-used:${input.grantId}:${input.presentedHash}`;
        if (entry.family.tokenHash === input.presentedHash) {
          table.set(usedKey, true, entry.family.familyExpiresAt - now);
          entry.previous = { tokenHash: input.presentedHash, rotatedAt: now, sealedTokens: input.sealedTokens };
          entry.family.tokenHash = input.nextHash;
          entry.family.tokenExpiresAt = input.nextTokenExpiresAt;
          table.set(key, entry, input.nextTokenExpiresAt - now);
          return { kind: "rotated" };
        }
        const previous = entry.previous;
        if (
          previous !== undefined &&
          previous.tokenHash === input.presentedHash &&
          input.graceMs > 0 &&
          previous.sealedTokens !== "" &&
          now - previous.rotatedAt <= input.graceMs
        ) {
          return { kind: "grace", sealedTokens: previous.sealedTokens };
        }
        if (table.has(usedKey)) {
          table.delete(key);
          table.set(`grant-revoked:${input.grantId}`, true, input.revokedTtlMs);
          return { kind: "reused" };
        }
        return { kind: "unknown" };
      },
      async wasRotatedOut(grantId, tokenHash) {
        return table.has(`grant-used:${grantId}:${tokenHash}`);
      },
      async revoke(grantId, revokedTtlMs) {
        table.delete(`grant:${grantId}`);
        table.set(`grant-revoked:${grantId}`, true, revokedTtlMs);
      },
      async revokeAccessToken(grantId, jti, ttlMs) {
        table.set(`jti-revoked:${grantId}:${jti}`, true, ttlMs);
      },
      async isRevoked(grantId, jti) {
        return table.has(`grant-revoked:${grantId}`) || (jti !== undefined && table.has(`jti-revoked:${grantId}:${jti}`));
      },
    },

    revocationFeed: {
      async announce(revocation) {
        for (const listener of [...listeners]) listener(revocation, tenant);
      },
      async subscribe(onRevocation) {
        // In one process nothing can break between announcer and subscriber.
        const listener: FeedListener = (revocation, from) => {
          if (from === tenant) onRevocation(revocation);
        };
        listeners.add(listener);
        return { unsubscribe: () => listeners.delete(listener) };
      },
    },

    sessions: {
      async create(sessionHash, session, ttlSeconds) {
        index(`subject-sessions:${session.subject}`, sessionHash, ttlSeconds * 1000);
        table.set(`session:${sessionHash}`, structuredClone(session), ttlSeconds * 1000);
      },
      async listOfSubject(subject) {
        const members = get<Set<string>>(`subject-sessions:${subject}`);
        const sessions: StoredSession[] = [];
        for (const sessionHash of [...(members ?? [])]) {
          const session = get<Session>(`session:${sessionHash}`);
          if (session === undefined) members!.delete(sessionHash);
          else sessions.push({ sessionHash, session: structuredClone(session) });
        }
        return sessions;
      },
      async deleteAllOfSubject(subject) {
        const members = get<Set<string>>(`subject-sessions:${subject}`);
        table.delete(`subject-sessions:${subject}`);
        const ended: string[] = [];
        for (const sessionHash of members ?? []) {
          if (table.has(`session:${sessionHash}`)) ended.push(sessionHash);
          table.delete(`session:${sessionHash}`);
        }
        return ended;
      },
      async get(sessionHash) {
        return structuredClone(get<Session>(`session:${sessionHash}`));
      },
      async delete(sessionHash) {
        table.delete(`session:${sessionHash}`);
      },
      async addParticipant(sid, participant, ttlSeconds) {
        const key = `session-participants:${sid}`;
        const list = get<SessionParticipant[]>(key) ?? [];
        if (!list.some((p) => p.clientId === participant.clientId && p.grantId === participant.grantId)) list.push(structuredClone(participant));
        table.set(key, list, ttlSeconds * 1000);
      },
      async scheduleExpiry(expiry) {
        expiries.push(structuredClone(expiry));
      },
      async takeExpired(now, limit) {
        expiries.sort((a, b) => a.expiresAt - b.expiresAt);
        let count = 0;
        while (count < expiries.length && count < limit && expiries[count]!.expiresAt <= now) count++;
        return expiries.splice(0, count);
      },
      async takeParticipants(sid) {
        const key = `session-participants:${sid}`;
        const list = get<SessionParticipant[]>(key) ?? [];
        table.delete(key);
        return structuredClone(list);
      },
    },

    consents: {
      async remember(subject, clientId, scopes, ttlSeconds) {
        const key = `consent:${JSON.stringify([subject, clientId])}`;
        const granted = new Set([...(get<string[]>(key) ?? []), ...scopes]);
        table.set(key, [...granted], ttlSeconds * 1000);
        // The subject's index lives as long as its longest-lived consent (issue 12: listed by an administrator).
        const indexKey = `consents-of:${subject}`;
        const indexTtl = Math.max(ttlSeconds * 1000, (table.expiresAt(indexKey) ?? 0) - clock());
        table.set(indexKey, [...new Set([...(get<string[]>(indexKey) ?? []), clientId])], indexTtl);
      },
      async get(subject, clientId) {
        return [...(get<string[]>(`consent:${JSON.stringify([subject, clientId])}`) ?? [])];
      },
      async listOfSubject(subject) {
        const indexKey = `consents-of:${subject}`;
        const index = get<string[]>(indexKey) ?? [];
        const live = index.flatMap((clientId) => {
          const scopes = get<string[]>(`consent:${JSON.stringify([subject, clientId])}`);
          return scopes === undefined ? [] : [{ clientId, scopes: [...scopes] }];
        });
        if (live.length < index.length) table.set(indexKey, live.map((c) => c.clientId), (table.expiresAt(indexKey) ?? 0) - clock());
        return live;
      },
      async forget(subject, clientId) {
        table.delete(`consent:${JSON.stringify([subject, clientId])}`);
        const indexKey = `consents-of:${subject}`;
        const index = get<string[]>(indexKey);
        if (index !== undefined) table.set(indexKey, index.filter((id) => id !== clientId), (table.expiresAt(indexKey) ?? 0) - clock());
      },
    },

    attempts: createMemoryAttemptCounter(table, clock),

    signingKeys: createMemorySigningKeyStore(table),
    clientAssertions: {
      async use(clientId, jti, expiresAt) {
        const key = `assertion:${JSON.stringify([clientId, jti])}`;
        if (table.has(key)) return false;
        // An assertion already expired cannot be replayed either; remember it a moment all the same.
        table.set(key, true, Math.max(1, expiresAt - clock()));
        return true;
      },
    },

    userStates: {
      async get(subject) {
        return structuredClone(get<UserState>(`user-state:${subject}`));
      },
      async put(subject, state) {
        table.set(`user-state:${subject}`, structuredClone(state), Number.POSITIVE_INFINITY);
      },
      async delete(subject) {
        table.delete(`user-state:${subject}`);
      },
    },

    async ping() {},
    close,
  };
}

function createMemorySigningKeyStore(table: ExpiringMap): SigningKeyStore {
  const current = () => table.get("signing-keys") as SigningKeySet | undefined;
  return {
    async read() {
      return structuredClone(current());
    },
    async claim(slot, ttlMs) {
      if (table.has(`signing-key-claim:${slot}`)) return false;
      table.set(`signing-key-claim:${slot}`, true, ttlMs);
      return true;
    },
    async replace(expectedGeneration, next, ttlMs) {
      checkNextGeneration(expectedGeneration, next);
      const stored = current();
      if ((stored?.generation ?? 0) !== expectedGeneration) return { kind: "conflict", set: structuredClone(stored) };
      table.set("signing-keys", structuredClone(next), ttlMs);
      return { kind: "written", set: structuredClone(next) };
    },
  };
}

interface GrantEntry {
  family: RefreshFamily;
  previous: { tokenHash: string; rotatedAt: number; sealedTokens: string } | undefined;
}

function createMemoryAttemptCounter(table: ExpiringMap, clock: Clock): AttemptCounter {
  const read = (key: string) => {
    const expiresAt = table.expiresAt(`attempts:${key}`);
    const count = table.get(`attempts:${key}`) as number | undefined;
    return count === undefined || expiresAt === undefined
      ? { count: 0, resetInMs: 0 }
      : { count, resetInMs: Math.max(0, expiresAt - clock()) };
  };
  return {
    async hit(key, windowMs) {
      const current = read(key);
      if (current.count === 0) {
        table.set(`attempts:${key}`, 1, windowMs);
        return { count: 1, resetInMs: windowMs };
      }
      table.set(`attempts:${key}`, current.count + 1, current.resetInMs);
      return { count: current.count + 1, resetInMs: current.resetInMs };
    },
    async get(key) {
      return read(key);
    },
    async reset(key) {
      table.delete(`attempts:${key}`);
    },
  };
}

/** A Map whose entries expire on the injected clock; expired entries are invisible at once and swept later. */
class ExpiringMap {
  readonly #entries = new Map<string, { value: unknown; expiresAt: number }>();
  constructor(private readonly clock: Clock) {}

  set(key: string, value: unknown, ttlMs: number): void {
    if (ttlMs <= 0) {
      this.#entries.delete(key);
      return;
    }
    this.#entries.set(key, { value, expiresAt: this.clock() + ttlMs });
  }

  get(key: string): unknown {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.clock()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  expiresAt(key: string): number | undefined {
    return this.get(key) === undefined ? undefined : this.#entries.get(key)!.expiresAt;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  sweep(): void {
    const now = this.clock();
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
  }
}
