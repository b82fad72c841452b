import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import type { JWK } from "jose";

/**
 * The key-encryption key (KEK) under which self-rotating private signing keys
 * are stored: 32 bytes for AES-256-GCM, from the operator (environment or a
 * mounted file), or ephemeral in development on the memory store. `id` is a
 * fingerprint (not the key) stored beside each sealed key, so that a replica
 * started with a different KEK can say so plainly.
 */
export interface KeyEncryptionKey {
  readonly id: string;
  readonly bytes: Uint8Array;
}

export class KeySealError extends Error {
  override readonly name = "KeySealError";
}

/** A KEK over 32 bytes; its id is a truncated SHA-256 under a fixed label, which reveals nothing of the key. */
export function createKeyEncryptionKey(bytes: Uint8Array): KeyEncryptionKey {
  if (bytes.length !== 32) throw new KeySealError(`a key-encryption key is 32 bytes, got ${bytes.length}`);
  const id = createHash("sha256").update("gatehouse kek id v1\0").update(bytes).digest("base64url").slice(0, 12);
  return { id, bytes: Uint8Array.from(bytes) };
}

/** A fresh random KEK: development on the memory store only (the keys die with the process anyway). */
export function createEphemeralKeyEncryptionKey(): KeyEncryptionKey {
  return createKeyEncryptionKey(randomBytes(32));
}

const VERSION = "v1";

/**
 * Seals a private JWK: AES-256-GCM with a random 96-bit IV (NIST SP 800-38D
 * §8.2.2), the kid as associated data, so that a sealed key moved to another
 * kid's record does not open. Format `v1.<kek id>.<iv>.<tag>.<ciphertext>`,
 * base64url parts.
 */
export function sealPrivateJwk(kek: KeyEncryptionKey, kid: string, privateJwk: JWK): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", kek.bytes, iv);
  cipher.setAAD(Buffer.from(kid, "utf8"));
  const body = Buffer.concat([cipher.update(JSON.stringify(privateJwk), "utf8"), cipher.final()]);
  return [VERSION, kek.id, iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), body.toString("base64url")].join(".");
}

/** Opens a sealed private JWK; throws KeySealError naming the cause (above all: another KEK sealed it). */
export function openPrivateJwk(kek: KeyEncryptionKey, kid: string, sealed: string): JWK {
  const [version, kekId, iv, tag, body, ...rest] = sealed.split(".");
  if (version !== VERSION || kekId === undefined || iv === undefined || tag === undefined || body === undefined || rest.length > 0) {
    throw new KeySealError(`signing key ${kid}: the stored private key is not in a format this version reads`);
  }
  if (kekId !== kek.id) {
    throw new KeySealError(`signing key ${kid} was sealed under key-encryption key ${kekId}, but this replica has ${kek.id}: the configured key-encryption key is not the one in use`);
  }
  try {
    const decipher = createDecipheriv("aes-256-gcm", kek.bytes, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(kid, "utf8"));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    const plain = Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]);
    return JSON.parse(plain.toString("utf8")) as JWK;
  } catch {
    throw new KeySealError(`signing key ${kid}: the stored private key does not open under key-encryption key ${kek.id} (altered, or moved from another kid)`);
  }
}
