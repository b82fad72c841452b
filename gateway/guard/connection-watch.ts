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
 * says how a handle ends. The sidecar watches every proxied response, so
 * adding and removing one must cost next to nothing, and must not keep the
 * response alive: the watched connections are an intrusive doubly linked
 * list, each entry unlinked and cleared when its connection ends. (A Map or
 * Set that gains and loses an entry per request does not let go: under V8 in
 * Node 20, the responses it had held survived the young-generation
 * collections and were promoted, for as long as the table was not rebuilt.
 * Measured in bench:guard: scavenges of 8-14 ms instead of 1-2 ms, and a
 * third more CPU per proxied request.) Revocations are rare, so they scan.
 */

/** Why a watched connection ends. */
export type ConnectionEnd = "revoked" | "expired";

export interface ConnectionWatch<H> {
  /** Watches a connection opened for `principal` until `delete` (or until it is ended). */
  add(handle: H, principal: Principal): Watched<H>;
  /** Stops watching (the connection ended by itself); again, or after it was ended, does nothing. */
  delete(watched: Watched<H>): void;
  readonly size: number;
}

/** One watched connection, as `add` gave it: what `delete` takes back. */
export interface Watched<H> {
  readonly handle: H | undefined;
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

/** A list entry; the list's head is an entry without a handle. */
interface Entry<H> extends Watched<H> {
  handle: H | undefined;
  principal: Principal | undefined;
  /** When it ends by expiry: the token's exp, or later when the clocks disagree (CLOCK_SKEW_GRACE_MS). */
  deadline: number;
  /** When a connection of a revoked token is ended unless it finishes first (revocationGraceMs); 0: not revoked. */
  revokedUntil: number;
  prev: Entry<H> | undefined;
  next: Entry<H> | undefined;
}

export function createConnectionWatch<H>(options: ConnectionWatchOptions<H>): ConnectionWatchControl<H> {
  const head: Entry<H> = { handle: undefined, principal: undefined, deadline: 0, revokedUntil: 0, prev: undefined, next: undefined };
  head.prev = head.next = head;
  let size = 0;
  /** Connections of revoked tokens waiting for their grace to end. */
  let revokedCount = 0;
  /** No token expires before this: a sweep before it has nothing to do. */
  let nextExpiry = Number.POSITIVE_INFINITY;
  let closed = false;
  const graceMs = options.revocationGraceMs ?? 0;

  const unlink = (entry: Entry<H>): void => {
    if (entry.prev === undefined) return;
    entry.prev.next = entry.next;
    entry.next!.prev = entry.prev;
    if (entry.revokedUntil !== 0) revokedCount--;
    // Nothing of the connection stays reachable through an entry someone still holds.
    entry.prev = entry.next = entry.handle = entry.principal = undefined;
    size--;
  };

  const endAll = (matches: (entry: Entry<H>) => boolean, reason: ConnectionEnd): number => {
    const ending: H[] = [];
    for (let entry = head.next!; entry !== head; ) {
      const next = entry.next!;
      if (matches(entry)) {
        ending.push(entry.handle!);
        unlink(entry);
      }
      entry = next;
    }
    for (const handle of ending) {
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
    if (revokedCount > 0) ended += endAll((entry) => entry.revokedUntil !== 0 && entry.revokedUntil <= now, "revoked");
    if (now < nextExpiry) return ended;
    ended += endAll((entry) => entry.deadline <= now, "expired");
    nextExpiry = Number.POSITIVE_INFINITY;
    for (let entry = head.next!; entry !== head; entry = entry.next!) if (entry.deadline < nextExpiry) nextExpiry = entry.deadline;
    return ended;
  };

  const timer = setInterval(() => sweep(options.clock()), options.sweepIntervalMs ?? 250);
  timer.unref();

  const matcherOf = (target: RevocationTarget): ((principal: Principal) => boolean) =>
    "jti" in target
      ? (principal) => target.jti !== "" && principal.jti === target.jti
      : "grantId" in target
        ? (principal) => target.grantId !== "" && principal.grantId === target.grantId
        : // Issue 12: the user's rights or state changed; the connection is ended and may be opened again, checked anew.
          (principal) => target.subject !== "" && principal.subject === target.subject && (principal.tenant ?? DEFAULT_TENANT) === target.tenant;

  return {
    add(handle, principal) {
      const now = options.clock();
      // A token this gateway's clock already calls expired: the authz service said live, so it gets the grace.
      const deadline = principal.expiresAt <= now ? now + CLOCK_SKEW_GRACE_MS : principal.expiresAt;
      const entry: Entry<H> = { handle, principal, deadline, revokedUntil: 0, prev: undefined, next: undefined };
      if (closed) return entry;
      entry.prev = head.prev;
      entry.next = head;
      head.prev!.next = entry;
      head.prev = entry;
      size++;
      if (deadline < nextExpiry) nextExpiry = deadline;
      return entry;
    },
    delete(watched) {
      unlink(watched as Entry<H>);
    },
    get size() {
      return size;
    },
    revoked(target) {
      if (closed || size === 0) return 0;
      const matches = matcherOf(target);
      if (graceMs <= 0) return endAll((entry) => matches(entry.principal!), "revoked");
      const until = options.clock() + graceMs;
      let count = 0;
      for (let entry = head.next!; entry !== head; entry = entry.next!) {
        if (entry.revokedUntil === 0 && matches(entry.principal!)) {
          entry.revokedUntil = until;
          revokedCount++;
          count++;
        }
      }
      return count;
    },
    sweep,
    close() {
      closed = true;
      clearInterval(timer);
      while (head.next !== head) unlink(head.next!);
    },
  };
}
