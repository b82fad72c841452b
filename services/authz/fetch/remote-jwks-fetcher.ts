import type { JWK } from "jose";
import type { Clock } from "../oauth/clock.js";
import { RemoteJwksError, type RemoteJwks } from "../oauth/remote-jwks.js";
import { safeHttpsGet, type SafeGetOptions } from "./safe-https-get.js";

export interface RemoteJwksOptions extends SafeGetOptions {
  clock: Clock;
  /** Bounds of the cache lifetime, whatever Cache-Control says. */
  minCacheSeconds: number;
  maxCacheSeconds: number;
  /** A refresh (unknown kid) fetches again at most this often per URL. */
  refetchCooldownSeconds: number;
  /** Most URLs cached at once; the oldest are forgotten first. */
  maxEntries?: number;
}

interface Entry {
  set: { keys: JWK[] };
  fetchedAt: number;
  freshUntil: number;
}

/**
 * The core's RemoteJwks port over safeHttpsGet: a key set per URL, cached as
 * its response's `Cache-Control: max-age` (RFC 9111 §5.2.2.1) says, clamped
 * to [minCacheSeconds, maxCacheSeconds] (`no-store`/`no-cache` count as the
 * minimum: a key set fetched on every assertion would let clients make the
 * server hammer their host). Concurrent fetches of one URL share one request.
 * When a refresh of a still-fresh set fails, the cached set answers: a
 * client's host being down for a moment does not lock it out.
 */
export function createRemoteJwksFetcher(options: RemoteJwksOptions): RemoteJwks {
  const entries = new Map<string, Entry>();
  const inFlight = new Map<string, Promise<Entry>>();
  const maxEntries = options.maxEntries ?? 1_000;

  const fetchSet = async (uri: string): Promise<Entry> => {
    let response;
    try {
      response = await safeHttpsGet(uri, options);
    } catch (error) {
      throw new RemoteJwksError(`${uri}: ${(error as Error).message}`);
    }
    if (response.status !== 200) throw new RemoteJwksError(`${uri} answered ${response.status}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(response.body);
    } catch {
      throw new RemoteJwksError(`${uri} is not JSON`);
    }
    const keys = (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || !keys.every((key) => typeof key === "object" && key !== null && typeof (key as JWK).kty === "string")) {
      throw new RemoteJwksError(`${uri} is not a JWK Set (RFC 7517 §5)`);
    }
    const now = options.clock();
    const entry: Entry = { set: { keys: keys as JWK[] }, fetchedAt: now, freshUntil: now + cacheSeconds(response.headers["cache-control"], options) * 1000 };
    if (entries.size >= maxEntries && !entries.has(uri)) entries.delete(entries.keys().next().value!);
    entries.set(uri, entry);
    return entry;
  };

  const fetchShared = (uri: string): Promise<Entry> => {
    let pending = inFlight.get(uri);
    if (pending === undefined) {
      pending = fetchSet(uri).finally(() => inFlight.delete(uri));
      inFlight.set(uri, pending);
    }
    return pending;
  };

  return {
    async get(uri, { refresh }) {
      const cached = entries.get(uri);
      const now = options.clock();
      if (cached !== undefined) {
        const fresh = cached.freshUntil > now;
        const coolingDown = now - cached.fetchedAt < options.refetchCooldownSeconds * 1000;
        if ((fresh && !refresh) || (refresh && coolingDown)) return cached.set;
        try {
          return (await fetchShared(uri)).set;
        } catch (error) {
          if (fresh) return cached.set;
          throw error;
        }
      }
      return (await fetchShared(uri)).set;
    },
  };
}

/** Seconds to keep a response, from its Cache-Control (RFC 9111 §5.2.2), within the bounds. */
export function cacheSeconds(header: string | string[] | undefined, bounds: { minCacheSeconds: number; maxCacheSeconds: number }): number {
  const value = [header ?? ""].flat().join(",").toLowerCase();
  let seconds = bounds.minCacheSeconds;
  if (!/(?:^|,)\s*(?:no-store|no-cache)\b/.test(value)) {
    const maxAge = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/.exec(value);
    if (maxAge !== null) seconds = Number(maxAge[1]);
  }
  return Math.min(bounds.maxCacheSeconds, Math.max(bounds.minCacheSeconds, seconds));
}
