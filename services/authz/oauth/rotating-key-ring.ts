import type { Clock } from "./clock.js";
import { StoreUnavailableError } from "./errors.js";
import { buildKeyRing, createKeyView, generateRingKey, importRingKey, KeyRingError, type KeyRing, type KeyView, type RingKey, type SigningAlgorithm } from "./key-ring.js";
import { applyRotationStep, keyPhases, keySetTtlMs, nextPhaseChange, planRotation, type RotationPolicy } from "./key-rotation.js";
import { openPrivateJwk, sealPrivateJwk, type KeyEncryptionKey } from "./key-sealing.js";
import type { RandomSource } from "./secrets.js";
import type { SigningKeySet, SigningKeyStore, StoredSigningKey } from "./signing-key-store.js";

/** A key ring whose keys rotate themselves through the store; see createRotatingKeyRing. */
export interface RotatingKeyRing extends KeyRing {
  /**
   * Re-reads the stored set and takes the next rotation step when one is due
   * (generate the successor, delete retired keys). Run on a heartbeat by the
   * composition root, and on a token with an unknown kid. Never throws: a
   * failure is reported through `onRefreshFailed`, and the keys held stay.
   */
  refresh(): Promise<void>;
  /** The stored set this replica holds (its generation and keys; no private material). */
  readonly keySet: SigningKeySet;
}

/** What a rotating ring tells its owner (the composition root logs it). */
export interface RotationEvents {
  /** This replica generated a key and stored it (exactly one replica per slot). */
  onGenerated?(key: { kid: string; alg: string; activatesAt: number }): void;
  /** The set held changed (a new generation read or written). */
  onChanged?(set: { generation: number; activeKid: string; kids: string[] }): void;
  onRefreshFailed?(error: unknown): void;
}

export interface RotatingKeyRingOptions {
  store: SigningKeyStore;
  policy: RotationPolicy;
  algorithm: SigningAlgorithm;
  kek: KeyEncryptionKey;
  issuer: string;
  clock: Clock;
  random: RandomSource;
  /** Waits; used only while another replica generates the very first key. */
  sleep: (ms: number) => Promise<void>;
  events?: RotationEvents | undefined;
  verifyCacheSize?: number | undefined;
  /** How long a claim to generate a slot's key holds (a claimer that dies frees it then). */
  claimTtlMs?: number | undefined;
  /** Least time (by the clock) between refreshes caused by unknown kids, so that forged kids cannot drive the store. */
  unknownKidRefreshIntervalMs?: number | undefined;
}

/** Rounds of read, plan and write one refresh may take before leaving the rest to the next heartbeat. */
const MAX_ROUNDS = 5;
/** Pause between reads while another replica generates the first key. */
const FIRST_KEY_POLL_MS = 50;
/** At start, a store that does not answer is tried this often, this far apart (about 30 s), before the start fails. */
const START_ATTEMPTS = 60;
const START_RETRY_MS = 500;

/**
 * Signing keys that rotate themselves, coordinated through the store:
 *
 * - Every replica reads the stored set on a heartbeat and decides, by the pure
 *   policy (key-rotation.ts) and its clock, which key signs. Activation and
 *   retirement are absolute instants in the set, so replicas holding the same
 *   set switch at the same instant without talking to each other; a replica
 *   that has not read a new set yet is at most one heartbeat behind, and the
 *   new key was published `publishAhead` before it signs, so a heartbeat
 *   shorter than that means every replica verifies it before any signs with it.
 * - When a successor is due, a replica claims the slot (the set's generation)
 *   in the store; only the claimer generates, and its compare-and-set write
 *   names the generation it read, so two replicas never both add a key.
 * - Private keys are stored sealed under the KEK; a key that does not open
 *   (another KEK) fails the start clearly and is never replaced by a new one.
 *
 * Signing never waits for the store: the view of the keys is held in memory
 * and recomputed only when an activation or retirement instant passes or a
 * new set is read.
 */
export async function createRotatingKeyRing(options: RotatingKeyRingOptions): Promise<RotatingKeyRing> {
  const { store, policy, kek, clock, random, events = {} } = options;
  const claimTtlMs = options.claimTtlMs ?? 30_000;
  const unknownKidIntervalMs = options.unknownKidRefreshIntervalMs ?? 1_000;
  const ttlMs = keySetTtlMs(policy);

  let held: SigningKeySet = { generation: 0, keys: [] };
  const opened = new Map<string, RingKey>();
  let cached: { view: KeyView; validFrom: number; validUntil: number } | undefined;

  /** Takes `set` as the one held: opens its new keys (throws on a key that does not open, keeping the old set). */
  const adopt = async (set: SigningKeySet): Promise<void> => {
    if (set.generation === held.generation && sameKids(set, held)) return;
    const fresh = new Map<string, RingKey>();
    for (const stored of set.keys) {
      const known = opened.get(stored.kid);
      fresh.set(stored.kid, known ?? (await openStoredKey(kek, stored)));
    }
    opened.clear();
    for (const [kid, key] of fresh) opened.set(kid, key);
    held = set;
    cached = undefined;
    if (set.keys.length > 0) {
      events.onChanged?.({ generation: set.generation, activeKid: viewAt(clock()).active.kid, kids: set.keys.map((k) => k.kid) });
    }
  };

  const viewAt = (now: number): KeyView => {
    if (cached !== undefined && now >= cached.validFrom && now < cached.validUntil) return cached.view;
    const phases = keyPhases(held.keys, policy, now);
    const live = phases.filter((p) => p.phase !== "retired").map((p) => opened.get(p.kid)!);
    // No active key can only mean the first key's activation is a moment ahead by this replica's clock (skew): it signs already.
    const activeKid = phases.find((p) => p.phase === "active")?.kid ?? phases.find((p) => p.phase === "published")?.kid;
    if (activeKid === undefined) throw new KeyRingError("no signing key: the stored set is empty");
    const view = createKeyView(live, opened.get(activeKid)!);
    cached = { view, validFrom: now, validUntil: nextPhaseChange(held.keys, policy, now) };
    return view;
  };

  const generate = async (activatesAt: number): Promise<StoredSigningKey> => {
    const kid = `${new Date(activatesAt).toISOString().slice(0, 10)}-${random(9)}`;
    const { ringKey, privateJwk } = await generateRingKey(options.algorithm, kid);
    opened.set(kid, ringKey);
    return {
      kid,
      alg: options.algorithm,
      createdAt: clock(),
      activatesAt,
      publicJwk: ringKey.publicJwk,
      sealedPrivateJwk: sealPrivateJwk(kek, kid, privateJwk),
    };
  };

  /** One refresh: read, adopt, and take the step the policy asks for; returns once a set with a signing key is held. */
  const step = async (): Promise<void> => {
    // Bounded: while another replica generates the first key, polls for as long as its claim holds.
    const maxRounds = MAX_ROUNDS + Math.ceil(claimTtlMs / FIRST_KEY_POLL_MS);
    for (let round = 0; round < maxRounds; round++) {
      const stored = await store.read();
      if (stored === undefined && held.keys.length > 0) {
        // The record is gone (expired while no replica ran, or Redis lost it): put back what this
        // replica holds, rather than start over and orphan the tokens its keys signed.
        const restored = { generation: 1, keys: held.keys };
        const write = await store.replace(0, restored, ttlMs);
        await adopt(write.kind === "written" ? restored : (write.set ?? restored));
        continue;
      }
      if (stored !== undefined) await adopt(stored);
      const plan = planRotation(stored, policy, clock());
      if (plan.kind === "none") return;
      const generation = stored?.generation ?? 0;
      let created: StoredSigningKey | undefined;
      if (plan.kind === "create") {
        if (!(await store.claim(String(generation), claimTtlMs))) {
          // Another replica generates this slot's key; it is read at the next heartbeat.
          // Only with no key at all is it worth waiting for.
          if (held.keys.length > 0) return;
          await options.sleep(FIRST_KEY_POLL_MS);
          continue;
        }
        created = await generate(plan.activatesAt);
      }
      const next = applyRotationStep(stored, plan, created);
      const write = await store.replace(generation, next, ttlMs);
      if (write.kind === "written") {
        if (created !== undefined) events.onGenerated?.({ kid: created.kid, alg: created.alg, activatesAt: created.activatesAt });
        await adopt(next);
        return;
      }
      // Someone else wrote first (the key generated here was never published): read again and decide again.
      if (created !== undefined) opened.delete(created.kid);
      if (round >= MAX_ROUNDS && held.keys.length > 0) return;
    }
    if (held.keys.length === 0) throw new KeyRingError("no signing key: another replica claimed the first key and did not store it");
  };

  let inFlight: Promise<void> | undefined;
  const refreshOnce = (): Promise<void> => {
    inFlight ??= step().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  // The first refresh must hold a key; its failure (above all a KEK that opens nothing) fails the
  // start. A store that does not answer yet (Redis starting beside this pod) is waited for, a while.
  for (let attempt = 1; ; attempt++) {
    try {
      await refreshOnce();
      break;
    } catch (error) {
      if (error instanceof StoreUnavailableError && attempt < START_ATTEMPTS) {
        events.onRefreshFailed?.(error);
        await options.sleep(START_RETRY_MS);
        continue;
      }
      if (error instanceof KeyRingError) throw error;
      throw new KeyRingError(`self-rotating signing keys: ${(error as Error).message}`);
    }
  }

  let lastUnknownKidRefresh = -Infinity;
  const ring = buildKeyRing({
    view: () => viewAt(clock()),
    issuer: options.issuer,
    verifyCacheSize: options.verifyCacheSize,
    async onUnknownKid() {
      const now = clock();
      if (now - lastUnknownKidRefresh < unknownKidIntervalMs && inFlight === undefined) return;
      lastUnknownKidRefresh = now;
      await refresh();
    },
  });

  async function refresh(): Promise<void> {
    try {
      await refreshOnce();
    } catch (error) {
      events.onRefreshFailed?.(error);
    }
  }

  return {
    get activeKid() {
      return ring.activeKid;
    },
    get publicJwks() {
      return ring.publicJwks;
    },
    get activeAlg() {
      return ring.activeAlg;
    },
    get idTokenAlgorithms() {
      return ring.idTokenAlgorithms;
    },
    sign: (claims) => ring.sign(claims),
    verify: (token, now) => ring.verify(token, now),
    signIdToken: (claims, alg) => ring.signIdToken(claims, alg),
    signLogoutToken: (claims, alg) => ring.signLogoutToken(claims, alg),
    verifyIdTokenHint: (token) => ring.verifyIdTokenHint(token),
    refresh,
    get keySet() {
      return { generation: held.generation, keys: held.keys.map((k) => ({ ...k })) };
    },
  };
}

function sameKids(a: SigningKeySet, b: SigningKeySet): boolean {
  return a.keys.length === b.keys.length && a.keys.every((k, i) => k.kid === b.keys[i]!.kid && k.activatesAt === b.keys[i]!.activatesAt);
}

async function openStoredKey(kek: KeyEncryptionKey, stored: StoredSigningKey): Promise<RingKey> {
  let jwk;
  try {
    jwk = openPrivateJwk(kek, stored.kid, stored.sealedPrivateJwk);
  } catch (error) {
    throw new KeyRingError((error as Error).message);
  }
  if (jwk.kid !== stored.kid || jwk.alg !== stored.alg) throw new KeyRingError(`signing key ${stored.kid}: the sealed key names another kid or alg`);
  return importRingKey(jwk);
}
