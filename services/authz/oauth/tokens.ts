import { toSeconds } from "./clock.js";
import { formatScope } from "./scope.js";

/**
 * The claims of a gatehouse access token: an RFC 9068 JWT. `gid` names the
 * grant (refresh token family) the token came from, so that revoking the
 * grant revokes its access tokens too (RFC 7009 §2.1; RFC 6749 §4.1.2 for a
 * replayed code).
 */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string;
  client_id: string;
  scope: string;
  jti: string;
  iat: number;
  exp: number;
  auth_time: number;
  gid: string;
}

export interface AccessTokenInput {
  issuer: string;
  audience: string;
  subject: string;
  clientId: string;
  scopes: readonly string[];
  jti: string;
  grantId: string;
  /** Seconds since the epoch. */
  authTime: number;
  /** ms since the epoch. */
  now: number;
  ttlSeconds: number;
}

/** RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; plus scope (§2.2.3) and auth_time (§2.2.1). */
export function buildAccessTokenClaims(input: AccessTokenInput): AccessTokenClaims {
  const iat = toSeconds(input.now);
  return {
    iss: input.issuer,
    sub: input.subject,
    aud: input.audience,
    client_id: input.clientId,
    scope: formatScope(input.scopes),
    jti: input.jti,
    iat,
    exp: iat + input.ttlSeconds,
    auth_time: input.authTime,
    gid: input.grantId,
  };
}

/** A JWS compact serialization has three dot-separated parts. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

/**
 * A refresh token is `<grantId>.<secret>`: the grant id finds the family (and
 * its hash tag in Redis) in one lookup, and the secret (256 bits) makes it
 * unguessable. Only its hash is stored.
 */
export function formatRefreshToken(grantId: string, secret: string): string {
  return `${grantId}.${secret}`;
}

export function parseRefreshToken(token: string): { grantId: string } | undefined {
  const match = /^([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{32,128})$/.exec(token);
  return match === null ? undefined : { grantId: match[1]! };
}
