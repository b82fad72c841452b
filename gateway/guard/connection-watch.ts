import type { Principal } from "./introspection-cache.js";
import type { RevocationTarget } from "../revocation-feed.js";
import { DEFAULT_TENANT } from "../../startup/tenant-name.js";

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
  /** Ends every connection of the revoked token or grant, or of the resource owner whose rights changed (after revocationGraceMs); returns how many. */
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
  /**
   * How long a connection of a revoked token may still finish by itself
   * before it is ended (default 0: at once). Plain responses get one sweep:
   * a response that was already on its way when the revocation came completes
   * as it would have a moment earlier; one that is still open a sweep later
   * (an event stream, a long poll) is long-lived, and is cut.
   */
  revocationGraceMs?: number;
}

/**
 * A token the authz service still called active although this gateway's
 * clock has passed its `exp` (the two clocks disagree): the authz service
 * decides whether a token is live, so the connection is not cut at once, but
 * it is given no longer than this.
 */
export const CLOCK_SKEW_GRACE_MS = 60_000;

export function createConnectionWatch<H>(options: ConnectionWatchOptions<H>): ConnectionWatchControl<H> {
  const watched = new Map<H, Principal>();
  /** The deadline of connections whose token had already expired by this gateway's clock when they were added (rare). */
  const skewed = new Map<H, number>();
  const deadlineOf = (handle: H, principal: Principal) => skewed.get(handle) ?? principal.expiresAt;
  /** No token expires before this: a sweep before it has nothing to do. */
  let nextExpiry = Number.POSITIVE_INFINITY;
  let closed = false;
  const graceMs = options.revocationGraceMs ?? 0;
  /** Connections of revoked tokens, and when they are ended unless they finish first. */
  const revokedUntil = new Map<H, number>();

  const endAll = (matches: (principal: Principal, handle: H) => boolean, reason: ConnectionEnd): number => {
    const ending: H[] = [];
    for (const [handle, principal] of watched) if (matches(principal, handle)) ending.push(handle);
    for (const handle of ending) {
      watched.delete(handle);
      skewed.delete(handle);
      revokedUntil.delete(handle);
      try {
        options.end(handle, reason);
      } catch {
        // One connection that fails to end must not keep the others open.
      }
    }
    return ending.length;
  };

  const sweep = (now: number): number => {
    if (closed) return 0;
    let ended = 0;
    if (revokedUntil.size > 0) {
      const due = (_principal: Principal, handle: H) => {
        const until = revokedUntil.get(handle);
        return until !== undefined && until <= now;
      };
      ended += endAll(due, "revoked");
    }
    if (now < nextExpiry) return ended;
    ended += endAll((principal, handle) => deadlineOf(handle, principal) <= now, "expired");
    nextExpiry = Number.POSITIVE_INFINITY;
    for (const [handle, principal] of watched) {
      const deadline = deadlineOf(handle, principal);
      if (deadline < nextExpiry) nextExpiry = deadline;
    }
    return ended;
  };

  const timer = setInterval(() => sweep(options.clock()), options.sweepIntervalMs ?? 250);
  timer.unref();

  return {
    add(handle, principal) {
      if (closed) return;
      watched.set(handle, principal);
      let deadline = principal.expiresAt;
      const now = options.clock();
      if (deadline <= now) skewed.set(handle, (deadline = now + CLOCK_SKEW_GRACE_MS));
      if (deadline < nextExpiry) nextExpiry = deadline;
    },
    delete(handle) {
      watched.delete(handle);
      if (skewed.size > 0) skewed.delete(handle);
      if (revokedUntil.size > 0) revokedUntil.delete(handle);
    },
    get size() {
      return watched.size;
    },
    revoked(target) {
      if (closed || watched.size === 0) return 0;
      const matches =
        "jti" in target
          ? (principal: Principal) => target.jti !== "" && principal.jti === target.jti
          : "grantId" in target
            ? (principal: Principal) => target.grantId !== "" && principal.grantId === target.grantId
            : // Issue 12: the user's rights or state changed; the connection is ended and may be opened again, checked anew.
              (principal: Principal) => target.subject !== "" && principal.subject === target.subject && (principal.tenant ?? DEFAULT_TENANT) === target.tenant;
      if (graceMs <= 0) return endAll(matches, "revoked");
      const until = options.clock() + graceMs;
      let count = 0;
      for (const [handle, principal] of watched) {
        if (matches(principal) && !revokedUntil.has(handle)) {
          revokedUntil.set(handle, until);
          count++;
        }
      }
      return count;
    },
    sweep,
    close() {
      closed = true;
      clearInterval(timer);
      watched.clear();
      skewed.clear();
      revokedUntil.clear();
    },
  };
}
