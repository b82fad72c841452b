import type { OAuthContext } from "./context.js";
import { OAuthError } from "./errors.js";
import type { Client } from "./model.js";
import { longestAccessTokenLifetime } from "./issue-tokens.js";
import { hashSecret } from "./secrets.js";
import { looksLikeJwt, parseRefreshToken } from "./tokens.js";

/**
 * RFC 7009 §2.1. Revoking a refresh token revokes its grant: the family and
 * every access token issued from it. That holds for a refresh token that a
 * rotation already replaced too: presenting it at the token endpoint revokes
 * the family (RFC 9700 §4.14.2), and revoking it must not do less, or a
 * client that revokes what it believes is its token leaves the tokens issued
 * in its place alive. Revoking an access token revokes that
 * token. An invalid or unknown token is not an error (RFC 7009 §2.2: "invalid
 * tokens do not cause an error response"), but a token of another client is
 * refused (RFC 7009 §2.1: "verifies whether the token was issued to the client
 * making the revocation request. If this validation fails, the request is
 * refused").
 */
export async function revoke(ctx: OAuthContext, caller: Client, token: string, tokenTypeHint: string): Promise<void> {
  if (token === "") throw new OAuthError("invalid_request", "token is required");
  // RFC 7009 §2.1: the hint only helps the search; the token's shape decides here.
  void tokenTypeHint;
  const refuse = () => new OAuthError("unauthorized_client", "the token was not issued to this client");

  const refresh = parseRefreshToken(token);
  if (refresh !== undefined) {
    const family = await ctx.store.grants.get(refresh.grantId);
    if (family === undefined) return;
    // Possession is proved by the family's current token or by one it rotated
    // out (only their hashes are stored); any other value names no token.
    const tokenHash = hashSecret(token);
    if (family.tokenHash !== tokenHash && !(await ctx.store.grants.wasRotatedOut(refresh.grantId, tokenHash))) return;
    if (family.clientId !== caller.id) throw refuse();
    await revokeGrant(ctx, refresh.grantId);
    return;
  }
  if (!looksLikeJwt(token)) return;
  const now = ctx.clock();
  let claims;
  try {
    claims = await ctx.keys.verify(token, now);
  } catch {
    return;
  }
  if (claims.client_id !== caller.id) throw refuse();
  if (isClientCredentialsToken(claims)) {
    // A client-credentials token is its grant's root (oauth/grants/client-credentials.ts): revoking it
    // revokes the grant, and so the tokens exchanged from it (RFC 8693), which hang off the same grant.
    await revokeGrant(ctx, claims.gid);
    return;
  }
  await ctx.store.grants.revokeAccessToken(claims.gid, claims.jti, claims.exp * 1000 - now);
  await ctx.store.revocationFeed.announce({ jti: claims.jti });
}

/** The client's own token (RFC 9068 §2.2: sub is the client), issued with no resource owner and no actor. */
function isClientCredentialsToken(claims: { sub: string; client_id: string; auth_time?: number; act?: unknown }): boolean {
  return claims.sub === claims.client_id && claims.auth_time === undefined && claims.act === undefined;
}

/**
 * Revokes a grant: its refresh token family and every access token issued
 * from it, and tells every replica at once (WatchRevocations).
 */
export async function revokeGrant(ctx: OAuthContext, grantId: string): Promise<void> {
  // Tokens exchanged from the grant's (RFC 8693) hang off it too, each no longer-lived than the longest lifetime.
  await ctx.store.grants.revoke(grantId, longestAccessTokenLifetime(ctx.policy) * 1000);
  await ctx.store.revocationFeed.announce({ grantId });
}
