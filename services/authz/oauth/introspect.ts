import type { OAuthContext } from "./context.js";
import { toSeconds } from "./clock.js";
import { OAuthError } from "./errors.js";
import type { Client } from "./model.js";
import { formatScope, parseScope } from "./scope.js";
import { hashSecret } from "./secrets.js";
import { looksLikeJwt, parseRefreshToken, type Actor } from "./tokens.js";
import { findUserRights, mayHoldScope, type UserRights } from "./current-rights.js";

/**
 * The resource owner of an access token, with their current rights; undefined
 * for a token with no user behind it (a client credentials token, RFC 9068
 * §2.2: `sub` is the client) or whose subject names no user.
 */
async function ownerRights(ctx: OAuthContext, claims: { sub: string; client_id: string; auth_time?: number; act?: unknown }): Promise<UserRights | undefined> {
  if (claims.sub === claims.client_id && claims.auth_time === undefined && claims.act === undefined) return undefined;
  return findUserRights(ctx, claims.sub);
}

/**
 * The token's scopes that the user may still hold (issue 12): a scope limited
 * to groups the user has left no longer opens anything, though the token
 * names it. RFC 7662 §2.2 `scope` is what the server says the token is good
 * for now.
 */
function currentScope(ctx: OAuthContext, scope: string, groups: readonly string[]): string {
  const scopes = parseScope(scope);
  // The configuration's scopes, not the directory's: only they can be limited to groups (the admin API's
  // scopes have none), and introspection, the guard's hot path, is spared a store read of every scope.
  const kept = scopes.filter((name) => mayHoldScope(ctx.policy.scopes.get(name), groups));
  return kept.length === scopes.length ? scope : formatScope(kept);
}

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
      /** Issue 12: the resource owner's groups now (not at issue); empty for a token without a user. */
      groups: readonly string[];
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
    // Both reads at once: the revocation markers and the resource owner's current state.
    const [revoked, rights] = await Promise.all([ctx.store.grants.isRevoked(claims.gid, claims.jti), ownerRights(ctx, claims)]);
    if (revoked) return INACTIVE;
    // Issue 12: a disabled user's tokens are dead; the scopes and groups are the user's current ones.
    if (rights?.disabled === true) return INACTIVE;
    return {
      active: true,
      tokenType: "Bearer",
      scope: rights === undefined ? claims.scope : currentScope(ctx, claims.scope, rights.groups),
      groups: rights?.groups ?? [],
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
  const rights = await findUserRights(ctx, family.subject);
  if (rights?.disabled === true) return INACTIVE;
  return {
    groups: rights?.groups ?? [],
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
