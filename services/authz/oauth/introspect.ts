import type { OAuthContext } from "./context.js";
import { toSeconds } from "./clock.js";
import { OAuthError } from "./errors.js";
import type { Client } from "./model.js";
import { formatScope } from "./scope.js";
import { hashSecret } from "./secrets.js";
import { looksLikeJwt, parseRefreshToken, type Actor } from "./tokens.js";

/** An RFC 7662 §2.2 response. Inactive tokens carry nothing else (RFC 7662 §2.2). */
export type Introspection =
  | { active: false }
  | {
      active: true;
      tokenType: "Bearer" | "refresh_token";
      scope: string;
      clientId: string;
      sub: string;
      exp: number;
      iat: number;
      aud: string[];
      iss: string;
      jti: string;
      authTime: number;
      grantId: string;
      /** RFC 8693 §4.1; absent when nobody acts on the subject's behalf. */
      act?: Actor | undefined;
    };

const INACTIVE: Introspection = { active: false };

/**
 * RFC 7662 §2: is this token live, and what does it carry? Expired, revoked,
 * malformed and foreign-signed tokens are inactive. A client sees only its
 * own tokens unless it is allowed to introspect any (a resource server, the
 * gateway); someone else's token is simply inactive to it (RFC 7662 §4).
 * When the revocation state cannot be read the call fails (Unavailable):
 * a token that cannot be checked is never reported active.
 */
export async function introspect(ctx: OAuthContext, caller: Client, token: string, tokenTypeHint: string): Promise<Introspection> {
  if (caller.type !== "confidential") throw new OAuthError("invalid_client", "introspection requires an authenticated client");
  if (token === "") throw new OAuthError("invalid_request", "token is required");
  const mayRead = (clientId: string) => caller.introspectAnyToken || clientId === caller.id;

  // RFC 7662 §2.1: the hint only orders the search; the token's shape decides here.
  void tokenTypeHint;
  if (looksLikeJwt(token)) {
    let claims;
    try {
      claims = await ctx.keys.verify(token, ctx.clock());
    } catch {
      return INACTIVE;
    }
    if (!mayRead(claims.client_id)) return INACTIVE;
    if (await ctx.store.grants.isRevoked(claims.gid, claims.jti)) return INACTIVE;
    return {
      active: true,
      tokenType: "Bearer",
      scope: claims.scope,
      clientId: claims.client_id,
      sub: claims.sub,
      exp: claims.exp,
      iat: claims.iat,
      aud: [claims.aud].flat(),
      iss: claims.iss,
      jti: claims.jti,
      authTime: claims.auth_time ?? 0,
      grantId: claims.gid,
      ...(claims.act === undefined ? {} : { act: claims.act }),
    };
  }

  const refresh = parseRefreshToken(token);
  if (refresh === undefined) return INACTIVE;
  const family = await ctx.store.grants.get(refresh.grantId);
  if (family === undefined || family.tokenHash !== hashSecret(token) || !mayRead(family.clientId)) return INACTIVE;
  if (family.tokenExpiresAt <= ctx.clock()) return INACTIVE;
  return {
    active: true,
    tokenType: "refresh_token",
    scope: formatScope(family.scopes),
    clientId: family.clientId,
    sub: family.subject,
    exp: toSeconds(family.tokenExpiresAt),
    iat: 0,
    aud: [],
    iss: ctx.policy.issuer,
    jti: "",
    authTime: family.authTime,
    grantId: family.grantId,
  };
}
