import type { Principal } from "./introspection-cache.js";
import type { RevocationTarget } from "../revocation-feed.js";

/**
 * Connections that outlive the check that let them in (WebSockets, server-sent
 * events, long polls): each is held with the principal that opened it, and
 * ended when that token is revoked, its grant (refresh family) is revoked, or
 * it expires. Revocations come from the revocation feed, which reaches every
 * gateway within milliseconds; expiry is swept on a timer.
 *
 * Generic over the entrance's handle (a response, a socket): the entrance
 * says how a handle ends. Adding and removing a handle is one Map operation
 * each, so that the sidecar can watch every proxied request; revocations are
 * rare, so they scan.
 */

/** Why a watched connection ends. */
export type ConnectionEnd = "revoked" | "expired";

export interface ConnectionWatch<H> {
  /** Watches a connection opened for `principal` until `delete` (or until it is ended). */
  add(handle: H, principal: Principal): void;
  /** Stops watching (the connection ended by itself). */
  delete(handle: H): void;
  readonly size: number;
}

/** The pipeline's side of a watch. */
export interface ConnectionWatchControl<H> extends ConnectionWatch<H> {
  /** Ends every connection of the revoked token or grant; returns how many. */
  revoked(target: RevocationTarget): number;
  /** Ends every connection whose token has expired at `now`; returns how many. */
  sweep(now: number): number;
  /** Stops the expiry timer; nothing more is ended. */
  close(): void;
}

export interface ConnectionWatchOptions<H> {
  /** Ends a connection; called once per handle, after it was removed from the watch. */
  end: (handle: H, reason: ConnectionEnd) => void;
  clock: () => number;
  /** How often expiry is checked (real time); default 250 ms, well within the second the issue allows. */
  sweepIntervalMs?: number;
}

export function createConnectionWatch<H>(options: ConnectionWatchOptions<H>): ConnectionWatchControl<H> {
  const watched = new Map<H, Principal>();
  /** No token expires before this: a sweep before it has nothing to do. */
  let nextExpiry = Number.POSITIVE_INFINITY;
  let closed = false;

  const endAll = (matches: (principal: Principal) => boolean, reason: ConnectionEnd): number => {
    const ending: H[] = [];
    for (const [handle, principal] of watched) if (matches(principal)) ending.push(handle);
    for (const handle of ending) {
      watched.delete(handle);
      try {
        options.end(handle, reason);
      } catch {
        // One connection that fails to end must not keep the others open.
      }
    }
    return ending.length;
  };

  const sweep = (now: number): number => {
    if (closed || now < nextExpiry) return 0;
    const ended = endAll((principal) => principal.expiresAt <= now, "expired");
    nextExpiry = Number.POSITIVE_INFINITY;
    for (const principal of watched.values()) if (principal.expiresAt < nextExpiry) nextExpiry = principal.expiresAt;
    return ended;
  };

  const timer = setInterval(() => sweep(options.clock()), options.sweepIntervalMs ?? 250);
  timer.unref();

  return {
    add(handle, principal) {
      if (closed) return;
      watched.set(handle, principal);
      if (principal.expiresAt < nextExpiry) nextExpiry = principal.expiresAt;
    },
    delete(handle) {
      watched.delete(handle);
    },
    get size() {
      return watched.size;
    },
    revoked(target) {
      if (closed || watched.size === 0) return 0;
      if ("jti" in target) return target.jti === "" ? 0 : endAll((principal) => principal.jti === target.jti, "revoked");
      return target.grantId === "" ? 0 : endAll((principal) => principal.grantId === target.grantId, "revoked");
    },
    sweep,
    close() {
      closed = true;
      clearInterval(timer);
      watched.clear();
    },
  };
}
