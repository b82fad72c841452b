import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/**
 * The token pair of a rotation, sealed for the refresh grace window: AES-256-GCM
 * under a key derived (HKDF-SHA-256) from the refresh token that was rotated
 * out. The server never stores that token, only its hash, so the stored pair
 * can be opened only by someone presenting the old token again, which is
 * exactly who the grace window serves.
 */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  scope: string;
  /** The ID Token issued with the pair (OpenID Connect Core §12.2); absent or empty: none. */
  idToken?: string;
  /** When the pair was issued, ms since the epoch, so a retry learns the remaining lifetime. */
  issuedAt: number;
}

function deriveKey(presentedToken: string, grantId: string): Buffer {
  return Buffer.from(hkdfSync("sha256", presentedToken, grantId, "gatehouse refresh grace v1", 32));
}

export function sealTokenPair(pair: TokenPair, presentedToken: string, grantId: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", deriveKey(presentedToken, grantId), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(pair), "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
}

/** Returns undefined when the seal does not open with this token. */
export function openTokenPair(sealed: string, presentedToken: string, grantId: string): TokenPair | undefined {
  try {
    const raw = Buffer.from(sealed, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", deriveKey(presentedToken, grantId), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const body = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
    return JSON.parse(body.toString("utf8")) as TokenPair;
  } catch {
    return undefined;
  }
}
