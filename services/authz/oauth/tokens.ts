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
  aud: string | string[];
  client_id: string;
  scope: string;
  jti: string;
  iat: number;
  exp: number;
  /** Absent from tokens no resource owner authenticated for (client credentials, RFC 9068 §2.2). */
  auth_time?: number;
  gid: string;
  /** RFC 8693 §4.1: the acting party of a delegated token, the earlier actors nested within. */
  act?: Actor;
}

/** RFC 8693 §4.1 `act`: the current actor; `act` within it, the actor before it. */
export interface Actor {
  sub: string;
  act?: Actor;
}

export interface AccessTokenInput {
  issuer: string;
  audience: string | readonly string[];
  subject: string;
  clientId: string;
  scopes: readonly string[];
  jti: string;
  grantId: string;
  /** Seconds since the epoch; 0: no resource owner authenticated (client credentials), and the claim is left out. */
  authTime: number;
  /** ms since the epoch. */
  now: number;
  ttlSeconds: number;
  /** RFC 8693 §4.1; absent: no `act` claim. */
  act?: Actor | undefined;
}

/** RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; plus scope (§2.2.3) and auth_time (§2.2.1). */
export function buildAccessTokenClaims(input: AccessTokenInput): AccessTokenClaims {
  const iat = toSeconds(input.now);
  const claims: AccessTokenClaims = {
    iss: input.issuer,
    sub: input.subject,
    aud: typeof input.audience === "string" ? input.audience : input.audience.length === 1 ? input.audience[0]! : [...input.audience],
    client_id: input.clientId,
    scope: formatScope(input.scopes),
    jti: input.jti,
    iat,
    exp: iat + input.ttlSeconds,
    auth_time: input.authTime,
    gid: input.grantId,
  };
  if (input.authTime === 0) delete claims.auth_time;
  if (input.act !== undefined) claims.act = input.act;
  return claims;
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
