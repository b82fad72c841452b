import { DEFAULT_TENANT } from "../../startup/tenant-name.js";

/**
 * The guard's cache of introspection results (RFC 7662), keyed by a hash of
 * the token, never the token. An entry lives at most the configured TTL and
 * never past the token's `exp`, and `exp` is checked again on every hit. It is
 * evicted at once when the token (its `jti`) or its grant is revoked, or when
 * its resource owner's rights or state change (issue 12); the revocation feed
 * tells. Pure: time is an argument.
 */

/** What the guard knows about a live access token. */
export interface Principal {
  readonly active: true;
  readonly subject: string;
  readonly clientId: string;
  /** RFC 6749 §3.3 scope string, as introspected. */
  readonly scope: string;
  readonly scopes: ReadonlySet<string>;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
  readonly jti: string;
  readonly grantId: string;
  /** RFC 7662 §2.2 / RFC 9068 §2.2 `aud`: the resources the token is meant for. */
  readonly audience: readonly string[];
  /**
   * Issue 12: the resource owner's groups as the authz service reported them
   * at introspection (their current rights, not the token's); absent: none.
   */
  readonly groups?: ReadonlySet<string> | undefined;
  /**
   * The tenant that issued the token (issue 11): DEFAULT_TENANT for the
   * configuration's issuer, a tenant's name for its issuer, "" for an issuer
   * this gateway does not know (refused by every route). Without named
   * tenants the gateway does not look: DEFAULT_TENANT. Absent: DEFAULT_TENANT.
   */
  readonly tenant?: string | undefined;
  /** The identity header values, made safe for an HTTP header once (see `headerValue`); `tenant` only where tenants are configured. */
  readonly headerValues: { readonly subject: string; readonly client: string; readonly scope: string; readonly tenant?: string | undefined };
}

export const INACTIVE = Object.freeze({ active: false as const });
export type Introspected = Principal | typeof INACTIVE;

/**
 * Until when an introspection result may be served from the cache: the
 * configured TTL, and never past the token's expiry. Inactive results are
 * kept for the TTL (a token never becomes active again).
 */
export function cacheExpiry(now: number, ttlMs: number, result: Introspected): number {
  return result.active ? Math.min(now + ttlMs, result.expiresAt) : now + ttlMs;
}

export interface IntrospectionCache {
  readonly size: number;
  /** The cached result, or undefined when absent or no longer valid at `now` (then it is dropped). */
  get(tokenHash: string, now: number): Introspected | undefined;
  set(tokenHash: string, result: Introspected, now: number): void;
  /** Drops the entry of the access token with this `jti`; returns how many were dropped. */
  evictToken(jti: string): number;
  /** Drops every entry of tokens of this grant (refresh family); returns how many were dropped. */
  evictGrant(grantId: string): number;
  /**
   * Drops every entry of tokens of this resource owner in this tenant (issue
   * 12: their rights or state changed); returns how many were dropped.
   */
  evictSubject(tenant: string, subject: string): number;
  clear(): void;
}

interface Entry {
  readonly result: Introspected;
  readonly validUntil: number;
}

/**
 * A bounded cache: when full, the oldest entry goes first. Insertion order is
 * close to expiry order because every entry lives at most the same TTL.
 */
export function createIntrospectionCache(options: { ttlMs: number; maxEntries: number }): IntrospectionCache {
  const entries = new Map<string, Entry>();
  const byJti = new Map<string, string>();
  const byGrant = new Map<string, Set<string>>();
  const bySubject = new Map<string, Set<string>>();
  // A subject is a user of one tenant; NUL cannot occur in a tenant name.
  const subjectKey = (tenant: string, subject: string) => `${tenant}\u0000${subject}`;
  const subjectKeyOf = (result: Principal) => subjectKey(result.tenant ?? DEFAULT_TENANT, result.subject);
  const addTo = (index: Map<string, Set<string>>, key: string, tokenHash: string) => {
    let hashes = index.get(key);
    if (hashes === undefined) index.set(key, (hashes = new Set()));
    hashes.add(tokenHash);
  };
  const removeFrom = (index: Map<string, Set<string>>, key: string, tokenHash: string) => {
    const hashes = index.get(key);
    if (hashes === undefined) return;
    hashes.delete(tokenHash);
    if (hashes.size === 0) index.delete(key);
  };
  const evictAll = (index: Map<string, Set<string>>, key: string): number => {
    const hashes = index.get(key);
    if (hashes === undefined) return 0;
    let evicted = 0;
    for (const tokenHash of [...hashes]) if (remove(tokenHash)) evicted++;
    return evicted;
  };

  const remove = (tokenHash: string): boolean => {
    const entry = entries.get(tokenHash);
    if (entry === undefined) return false;
    entries.delete(tokenHash);
    const { result } = entry;
    if (result.active) {
      if (byJti.get(result.jti) === tokenHash) byJti.delete(result.jti);
      removeFrom(byGrant, result.grantId, tokenHash);
      if (result.subject !== "") removeFrom(bySubject, subjectKeyOf(result), tokenHash);
    }
    return true;
  };

  return {
    get size() {
      return entries.size;
    },

    get(tokenHash, now) {
      const entry = entries.get(tokenHash);
      if (entry === undefined) return undefined;
      // Checked on every hit: the entry's lifetime, and the token's own exp.
      if (now >= entry.validUntil || (entry.result.active && now >= entry.result.expiresAt)) {
        remove(tokenHash);
        return undefined;
      }
      return entry.result;
    },

    set(tokenHash, result, now) {
      if (options.maxEntries <= 0 || options.ttlMs <= 0) return;
      const validUntil = cacheExpiry(now, options.ttlMs, result);
      if (validUntil <= now) return;
      remove(tokenHash);
      // Sweep a little on every insert, so that dead entries do not wait for the bound.
      for (let i = 0; i < 2; i++) {
        const first = entries.entries().next();
        if (first.done === true || first.value[1].validUntil > now) break;
        remove(first.value[0]);
      }
      // Make room: the oldest entry goes first.
      while (entries.size >= options.maxEntries) {
        const oldest = entries.keys().next().value as string;
        remove(oldest);
      }
      entries.set(tokenHash, { result, validUntil });
      if (result.active) {
        if (result.jti !== "") byJti.set(result.jti, tokenHash);
        if (result.grantId !== "") addTo(byGrant, result.grantId, tokenHash);
        if (result.subject !== "") addTo(bySubject, subjectKeyOf(result), tokenHash);
      }
    },

    evictToken(jti) {
      const tokenHash = byJti.get(jti);
      return tokenHash !== undefined && remove(tokenHash) ? 1 : 0;
    },

    evictGrant(grantId) {
      return evictAll(byGrant, grantId);
    },

    evictSubject(tenant, subject) {
      return evictAll(bySubject, subjectKey(tenant, subject));
    },

    clear() {
      entries.clear();
      byJti.clear();
      byGrant.clear();
      bySubject.clear();
    },
  };
}
