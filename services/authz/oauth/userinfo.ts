import type { OAuthContext } from "./context.js";
import { findUserRights } from "./current-rights.js";
import { OAuthError } from "./errors.js";
import { OPENID_SCOPE } from "./id-token.js";
import { parseScope } from "./scope.js";
import { subjectFor } from "./subject-identifier.js";
import { looksLikeJwt } from "./tokens.js";
import { claimsForScopes } from "./user-claims.js";

/**
 * OpenID Connect Core §5.3 UserInfo: the claims about the user that the
 * access token's scopes release (§5.4), with `sub` exactly as in the ID Token
 * (§5.3.2, pairwise included). The token must be live, unrevoked, and
 * granted `openid`; failures are the RFC 6750 §3.1 codes (§5.3.3).
 */
export async function userInfo(ctx: OAuthContext, accessToken: string): Promise<Record<string, unknown>> {
  if (accessToken === "") throw new OAuthError("invalid_request", "an access token is required");
  if (!looksLikeJwt(accessToken)) throw new OAuthError("invalid_token", "the access token is invalid");
  let claims;
  try {
    claims = await ctx.keys.verify(accessToken, ctx.clock());
  } catch {
    throw new OAuthError("invalid_token", "the access token is invalid or expired");
  }
  if (await ctx.store.grants.isRevoked(claims.gid, claims.jti)) throw new OAuthError("invalid_token", "the access token was revoked");
  // Issue 12: a blocked user's tokens open nothing, UserInfo included.
  if ((await findUserRights(ctx, claims.sub))?.disabled === true) throw new OAuthError("invalid_token", "the access token was revoked");
  const scopes = parseScope(claims.scope);
  if (!scopes.includes(OPENID_SCOPE)) throw new OAuthError("insufficient_scope", "the access token was not granted the openid scope");
  const client = await ctx.directory.findClient(claims.client_id);
  if (client === undefined) throw new OAuthError("invalid_token", "the access token's client is no longer registered");
  const user = await ctx.directory.findUserBySubject(claims.sub);
  return { sub: subjectFor(ctx.policy, client, claims.sub), ...claimsForScopes(user?.claims, scopes) };
}
