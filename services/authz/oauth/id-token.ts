import { hash } from "node:crypto";
import { toSeconds } from "./clock.js";
import type { OAuthContext } from "./context.js";
import type { Client } from "./model.js";
import { subjectFor } from "./subject-identifier.js";
import type { IdTokenClaims } from "./tokens.js";

export type { IdTokenClaims } from "./tokens.js";

/** What an ID Token says about one authentication. */
export interface Authentication {
  /** The user's own subject; the client's view of it is computed here. */
  subject: string;
  /** Seconds since the epoch. */
  authTime: number;
  nonce?: string | undefined;
  sid?: string | undefined;
}

/** The `openid` scope value (Core §3.1.2.1): without it a request is plain OAuth 2.0 and gets no ID Token. */
export const OPENID_SCOPE = "openid";

/**
 * JWS hash of an algorithm, for at_hash (Core §3.1.3.6: "the hash algorithm
 * used in the alg Header Parameter"); EdDSA with Ed25519 hashes with SHA-512,
 * as the OpenID Foundation's conformance suite expects.
 */
function hashOf(alg: string): "sha256" | "sha384" | "sha512" {
  if (alg.endsWith("384")) return "sha384";
  if (alg.endsWith("512") || alg === "EdDSA" || alg === "Ed25519") return "sha512";
  return "sha256";
}

/** Core §3.1.3.6: base64url of the left-most half of the hash of the access token's ASCII octets. */
export function accessTokenHash(accessToken: string, alg: string): string {
  // An access token is ASCII (a JWS, RFC 7515 §7.1); its latin1 octets are its ASCII octets.
  const digest = hash(hashOf(alg), Buffer.from(accessToken, "latin1"), "buffer");
  return digest.subarray(0, digest.length / 2).toString("base64url");
}

/**
 * Signs an ID Token for `client` (Core §3.1.3.6, and §12.2 after a refresh:
 * same `sub` and `auth_time`, no `nonce`). Its lifetime is the access token's.
 */
export async function issueIdToken(ctx: OAuthContext, client: Client, authentication: Authentication, accessToken: string): Promise<string> {
  const { policy } = ctx;
  const alg = client.idTokenSignedResponseAlg ?? ctx.keys.activeAlg;
  const iat = toSeconds(ctx.clock());
  const claims: IdTokenClaims = {
    iss: policy.issuer,
    sub: subjectFor(policy, client, authentication.subject),
    aud: client.id,
    exp: iat + policy.lifetimes.accessToken,
    iat,
    auth_time: authentication.authTime,
    azp: client.id,
    amr: ["pwd"],
  };
  if (authentication.nonce !== undefined && authentication.nonce !== "") claims.nonce = authentication.nonce;
  if (accessToken !== "") claims.at_hash = accessTokenHash(accessToken, alg);
  if (authentication.sid !== undefined && authentication.sid !== "") claims.sid = authentication.sid;
  if (policy.acr !== undefined) claims.acr = policy.acr;
  return ctx.keys.signIdToken(claims, alg);
}
