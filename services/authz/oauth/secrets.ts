import { hash, randomBytes, randomFillSync, timingSafeEqual } from "node:crypto";

/**
 * Compares two secrets in time that does not depend on where they differ
 * (RFC 6749 §10.10 asks for guessing to be infeasible; a timing side channel
 * would make it feasible). Lengths are not secret: every value compared here
 * has a fixed-length encoding.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, "utf8");
  const right = Buffer.from(b, "utf8");
  if (left.length !== right.length) return false;
  return timingSafeEqual(left, right);
}

/**
 * The digest under which a code, token, session or request handle is stored.
 * The values are ≥ 128-bit random strings, so an unkeyed SHA-256 is already
 * irreversible: a dump of the store yields nothing that can be presented
 * (RFC 6819 §5.1.4.1.3, RFC 9700 §4.14).
 */
export function hashSecret(value: string): string {
  // One-shot (crypto.hash, a string of UTF-8): a third of createHash's cost, which builds a Hash object per call.
  return hash("sha256", value, "base64url");
}

/** A source of unguessable values; a dependency so tests can observe it. */
export type RandomSource = (bytes: number) => string;

/** base64url of `bytes` cryptographically random bytes (RFC 6749 §10.10). */
export const cryptoRandom: RandomSource = (bytes) => randomBytes(bytes).toString("base64url");

/**
 * cryptoRandom, drawn from a pool filled `poolBytes` at a time. Each
 * randomBytes call costs a trip to the kernel's CSPRNG (about 11 µs here, a
 * VM; two or three per token response), a fill of 4 KiB costs about as much
 * as one. Node pools randomUUID the same way. Every byte is handed out once
 * and wiped from the pool as it is; a request larger than the pool is served
 * directly.
 */
export function createPooledRandom(poolBytes = 4096): RandomSource {
  const pool = Buffer.allocUnsafeSlow(poolBytes);
  let offset = poolBytes;
  return (bytes) => {
    if (bytes > poolBytes) return cryptoRandom(bytes);
    if (offset + bytes > poolBytes) {
      randomFillSync(pool);
      offset = 0;
    }
    const value = pool.toString("base64url", offset, offset + bytes);
    pool.fill(0, offset, offset + bytes);
    offset += bytes;
    return value;
  };
}
