import type { JWK } from "jose";

/**
 * One self-rotating signing key as stored: its public half in the clear (it
 * is published anyway), its private half sealed under the key-encryption key
 * (oauth/key-sealing.ts), never in the clear. Times are absolute (ms since
 * the epoch), so that every replica reading the same record switches keys at
 * the same instant by its own clock, without a message between them.
 */
export interface StoredSigningKey {
  kid: string;
  alg: string;
  /** When the key was generated. */
  createdAt: number;
  /** When the key becomes the signing key; until then it is only published. */
  activatesAt: number;
  /** The public JWK, with kid, alg and use. */
  publicJwk: JWK;
  /** The private JWK sealed with AES-256-GCM under the key-encryption key, the kid as associated data. */
  sealedPrivateJwk: string;
}

/**
 * The signing keys of one key space (one issuer; one tenant). `generation`
 * counts the writes: every write names the generation it read, and only one
 * writer per generation succeeds (compare-and-set).
 */
export interface SigningKeySet {
  generation: number;
  /** Ordered by activatesAt. */
  keys: StoredSigningKey[];
}

export type SigningKeySetWrite =
  | { readonly kind: "written"; readonly set: SigningKeySet }
  /** Another writer got there first; `set` is what it wrote (undefined: the set expired meanwhile). */
  | { readonly kind: "conflict"; readonly set: SigningKeySet | undefined };

/**
 * The self-rotating signing keys of one key space, shared by every replica.
 * The record expires `ttlMs` after its last write (every key of the store
 * expires); replicas rewrite it at every rotation, long before that.
 */
export interface SigningKeyStore {
  /** The current set, or undefined when none was ever written (or it expired). */
  read(): Promise<SigningKeySet | undefined>;
  /**
   * Atomic: claims the right to generate the key of `slot` for `ttlMs`. Of
   * concurrent claims of one slot exactly one succeeds until the claim
   * expires, so replicas never both generate a key for the same slot; a
   * claimer that dies frees the slot when its claim expires.
   */
  claim(slot: string, ttlMs: number): Promise<boolean>;
  /**
   * Atomic compare-and-set: writes `next` (whose generation must be
   * `expectedGeneration + 1`) only if the stored generation is still
   * `expectedGeneration` (0: nothing stored). Of concurrent writes from one
   * generation exactly one succeeds.
   */
  replace(expectedGeneration: number, next: SigningKeySet, ttlMs: number): Promise<SigningKeySetWrite>;
}

/** A write names the generation it read and writes the one after it; anything else is a bug of the caller. */
export function checkNextGeneration(expectedGeneration: number, next: SigningKeySet): void {
  if (next.generation !== expectedGeneration + 1) {
    throw new Error(`a signing key set written over generation ${expectedGeneration} must be generation ${expectedGeneration + 1}, not ${next.generation}`);
  }
}
