import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/**
 * Resource owners' passwords, which people choose, are stored as scrypt
 * hashes: `scrypt$N$r$p$salt$hash` (base64url salt and hash).
 */
const DEFAULT_COST = { N: 2 ** 15, r: 8, p: 1 };

function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFC"), salt, length, Object.assign({}, cost, { maxmem: 256 * cost.N * cost.r * cost.p }), (error, key) =>
      error === null ? resolve(key) : reject(error),
    );
  });
}

export async function hashPassword(password: string, cost = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, cost, 32);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString("base64url")}$${hash.toString("base64url")}`;
}

/**
 * A hash that no password matches, at the cost real hashes have: verifying
 * against it spends the same scrypt work as verifying a real one (the salt
 * and the expected output are random bytes, so the derived key never equals
 * them). For an unknown username, so that timing does not tell it from a
 * wrong password. Built without running scrypt: every tenant's server has one
 * from its start (issue 11: 1,000 tenants used to queue 1,000 scrypt runs of
 * 32 MiB each on the thread pool at start-up).
 */
export function decoyPasswordHash(random: (bytes: number) => string, cost = DEFAULT_COST): string {
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${random(16)}$${random(32)}`;
}

/**
 * Bounds on the cost parameters a stored hash may name: generous for real use
 * (N = 2^15 is the default), and small enough that a mistyped hash cannot
 * make a login allocate gigabytes or throw.
 */
const LIMITS = { maxLog2N: 20, maxR: 32, maxP: 16 };
const DECIMAL = /^[1-9][0-9]{0,8}$/;

/** Constant-time check of a password against an encoded hash. Malformed hashes never match, and never throw. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  if (!parts.slice(1, 4).every((part) => DECIMAL.test(part))) return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const log2N = Math.log2(N);
  if (!Number.isInteger(log2N) || log2N < 1 || log2N > LIMITS.maxLog2N || r > LIMITS.maxR || p > LIMITS.maxP) return false;
  const salt = Buffer.from(parts[4]!, "base64url");
  const expected = Buffer.from(parts[5]!, "base64url");
  if (salt.length < 8 || expected.length < 16 || expected.length > 64) return false;
  try {
    const actual = await derive(password, salt, { N, r, p }, expected.length);
    return timingSafeEqual(actual, expected);
  } catch {
    return false;
  }
}
