import type { SigningKeySet, StoredSigningKey } from "./signing-key-store.js";

/**
 * When signing keys rotate (all durations in ms). Pure data; the functions
 * below decide from it and `now` alone, so every replica reading the same
 * stored set reaches the same answer.
 */
export interface RotationPolicy {
  /** How long a key signs before its successor takes over. */
  rotateEveryMs: number;
  /**
   * How long a key is published in the JWKS before it signs: longer than any
   * cache of the JWKS should live (the gateway's 30 s, a resource server's
   * minutes), so that every verifier knows the key before it sees a token
   * signed with it.
   */
  publishAheadMs: number;
  /** The access token lifetime: a superseded key can sign no token that lives longer. */
  accessTokenTtlMs: number;
  /** Kept beyond that (clock skew between replicas and verifiers, a lifetime lowered by reload). */
  retireMarginMs: number;
}

/**
 * Where a key is in its life at a given instant:
 * - `published`: in the JWKS, not yet signing (it activates later);
 * - `active`: the one key that signs;
 * - `retiring`: superseded, still in the JWKS while tokens it signed may be unexpired;
 * - `retired`: no unexpired token can carry it; out of the JWKS, to be deleted.
 */
export type KeyPhase = "published" | "active" | "retiring" | "retired";

/** Keys ordered by activation (the stored order, enforced again here). */
function ordered(keys: readonly StoredSigningKey[]): StoredSigningKey[] {
  return [...keys].sort((a, b) => a.activatesAt - b.activatesAt || (a.kid < b.kid ? -1 : 1));
}

/**
 * The phase of every key at `now`. A key is superseded when the next key in
 * activation order activates; it may have signed tokens until then, and they
 * live up to the access token lifetime, so it retires at that instant plus
 * the lifetime plus the margin.
 */
export function keyPhases(keys: readonly StoredSigningKey[], policy: RotationPolicy, now: number): Array<{ kid: string; phase: KeyPhase }> {
  const sorted = ordered(keys);
  return sorted.map((key, i) => {
    const successor = sorted[i + 1];
    if (now < key.activatesAt) return { kid: key.kid, phase: "published" };
    if (successor === undefined || now < successor.activatesAt) return { kid: key.kid, phase: "active" };
    return { kid: key.kid, phase: now < retiresAt(successor, policy) ? "retiring" : "retired" };
  });
}

/** When the predecessor of `successor` leaves the JWKS. */
function retiresAt(successor: StoredSigningKey, policy: RotationPolicy): number {
  return successor.activatesAt + policy.accessTokenTtlMs + policy.retireMarginMs;
}

/**
 * The next instant at which some key changes phase (an activation or a
 * retirement), or Infinity: until then a replica's view of its keys stands.
 */
export function nextPhaseChange(keys: readonly StoredSigningKey[], policy: RotationPolicy, now: number): number {
  const sorted = ordered(keys);
  const instants = sorted.flatMap((key, i) => (i === 0 ? [key.activatesAt] : [key.activatesAt, retiresAt(key, policy)]));
  return Math.min(Infinity, ...instants.filter((t) => t > now));
}

/** What the stored set needs at `now`, if anything. */
export type RotationStep =
  | { readonly kind: "none" }
  /** Delete the retired keys. */
  | { readonly kind: "prune"; readonly retire: readonly string[] }
  /** Generate a key that activates at `activatesAt` (and delete the retired ones). */
  | { readonly kind: "create"; readonly activatesAt: number; readonly retire: readonly string[] };

/**
 * Decides the next step of rotation:
 * - no key that is active or will be: create one that is active at once (the
 *   first key; nothing can sign before it exists, and no cache can hold a set
 *   without it that a token of it would need);
 * - the active key has signed for `rotateEvery - publishAhead` and no
 *   successor is published: create the successor, activating `publishAhead`
 *   from now at the earliest (never sooner, even after a long outage:
 *   verifiers must see it first), and not before the active key's term ends;
 * - retired keys: delete them.
 */
export function planRotation(set: SigningKeySet | undefined, policy: RotationPolicy, now: number): RotationStep {
  const keys = set?.keys ?? [];
  const phases = keyPhases(keys, policy, now);
  const retire = phases.filter((p) => p.phase === "retired").map((p) => p.kid);
  const active = phases.find((p) => p.phase === "active");
  const published = phases.some((p) => p.phase === "published");
  if (active === undefined && !published) return { kind: "create", activatesAt: now, retire };
  if (active !== undefined && !published) {
    const activeKey = keys.find((k) => k.kid === active.kid)!;
    const termEnds = activeKey.activatesAt + policy.rotateEveryMs;
    if (now >= termEnds - policy.publishAheadMs) {
      return { kind: "create", activatesAt: Math.max(termEnds, now + policy.publishAheadMs), retire };
    }
  }
  return retire.length > 0 ? { kind: "prune", retire } : { kind: "none" };
}

/** The set after `step`: retired keys gone, `created` added, the generation counted up. */
export function applyRotationStep(set: SigningKeySet | undefined, step: RotationStep, created?: StoredSigningKey): SigningKeySet {
  const retire = step.kind === "none" ? [] : step.retire;
  const kept = (set?.keys ?? []).filter((k) => !retire.includes(k.kid));
  return { generation: (set?.generation ?? 0) + 1, keys: ordered(created === undefined ? kept : [...kept, created]) };
}

/**
 * How long the stored set must outlive its last write. A running replica
 * rewrites it at least once per `rotateEvery`; with none running, no token is
 * signed, and the newest key's tokens are dead within the access token
 * lifetime. Twice the term plus everything else leaves ample room.
 */
export function keySetTtlMs(policy: RotationPolicy): number {
  return 2 * policy.rotateEveryMs + policy.publishAheadMs + policy.accessTokenTtlMs + policy.retireMarginMs;
}
