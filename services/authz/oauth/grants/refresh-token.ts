import type { OAuthContext } from "../context.js";
import { OAuthError } from "../errors.js";
import { openTokenPair, sealTokenPair } from "../grace-seal.js";
import { issueIdToken, OPENID_SCOPE } from "../id-token.js";
import { issueAccessToken, mintRefreshToken, type TokenSet } from "../issue-tokens.js";
import type { Client } from "../model.js";
import { narrowResources } from "../resource.js";
import { resolveRefreshScope } from "../scope.js";
import { hashSecret } from "../secrets.js";
import { parseRefreshToken } from "../tokens.js";
import { verifyGrantRights } from "../current-rights.js";

/** An access token request with grant_type=refresh_token (RFC 6749 §6), from an authenticated client. */
export interface RefreshGrant {
  refreshToken: string;
  scope: string;
  /** RFC 8707 §2.2 `resource`, each occurrence: narrows the new access token to some of the grant's resources; absent or empty: all. */
  resources?: readonly string[];
}

/**
 * RFC 6749 §6 with refresh token rotation (RFC 9700 §4.14.2): every use
 * returns a new refresh token; the old one is then dead, and presenting it
 * again revokes the whole family. Within the client's grace window the
 * just-rotated token instead returns the very same new pair, for clients that
 * retry or refresh from two tabs at once.
 */
export async function refresh(ctx: OAuthContext, client: Client, request: RefreshGrant): Promise<TokenSet> {
  const { policy, store } = ctx;
  if (!client.grantTypes.has("refresh_token")) {
    throw new OAuthError("unauthorized_client", "this client may not use the refresh_token grant");
  }
  if (request.refreshToken === "") throw new OAuthError("invalid_request", "refresh_token is required");
  const parsed = parseRefreshToken(request.refreshToken);
  if (parsed === undefined) throw new OAuthError("invalid_grant", "the refresh token is invalid");
  const { grantId } = parsed;

  const family = await store.grants.get(grantId);
  if (family === undefined) throw new OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked");
  // RFC 6749 §6: "validate the refresh token and ensure that it was issued to the authenticated client".
  if (family.clientId !== client.id) throw new OAuthError("invalid_grant", "the refresh token was issued to another client");
  // Seed 003 (issue 12): "as long as ... the user is not blocked or its rights were changed": checked against the
  // user's current state, whichever token of the family is presented; a grant beyond them is revoked.
  await verifyGrantRights(ctx, family);
  const scopes = resolveRefreshScope(request.scope, family.scopes);
  // RFC 8707 §2.2: a refresh may ask for a token for some of the grant's resources (each one of them).
  const audience = narrowResources(request.resources ?? [], family.resources);

  const presentedHash = hashSecret(request.refreshToken);
  const graceMs = client.refreshGraceSeconds * 1000;
  const revokedTtlMs = policy.lifetimes.accessToken * 1000;

  if (family.tokenHash !== presentedHash) {
    // Not the current token: the store tells a retry within grace from a reuse.
    const rotation = await store.grants.rotate({
      grantId, presentedHash, nextHash: "", nextTokenExpiresAt: 0, sealedTokens: "", graceMs, revokedTtlMs,
    });
    return settle(ctx, rotation, request.refreshToken, grantId);
  }

  const tokens = await issueAccessToken(ctx, family, scopes, audience === undefined ? {} : { audience });
  // OpenID Connect Core §12.2: a refresh of an openid grant returns a new ID Token
  // with the same sub and auth_time, and no nonce.
  const idToken = scopes.includes(OPENID_SCOPE)
    ? await issueIdToken(ctx, client, { subject: family.subject, authTime: family.authTime, sid: family.sid }, tokens.accessToken)
    : "";
  const next = mintRefreshToken(ctx, grantId, family.familyExpiresAt);
  const issued: TokenSet = Object.assign({}, tokens, { refreshToken: next.refreshToken, idToken });
  const rotation = await store.grants.rotate({
    grantId,
    presentedHash,
    nextHash: next.tokenHash,
    nextTokenExpiresAt: next.tokenExpiresAt,
    sealedTokens: graceMs > 0 ? sealTokenPair(Object.assign({}, issued, { issuedAt: ctx.clock() }), request.refreshToken, grantId) : "",
    graceMs,
    revokedTtlMs,
  });
  if (rotation.kind === "rotated") return issued;
  // Another request rotated this token first.
  return settle(ctx, rotation, request.refreshToken, grantId);
}

async function settle(
  ctx: OAuthContext,
  rotation: Awaited<ReturnType<OAuthContext["store"]["grants"]["rotate"]>>,
  presentedToken: string,
  grantId: string,
): Promise<TokenSet> {
  switch (rotation.kind) {
    case "grace": {
      const pair = openTokenPair(rotation.sealedTokens, presentedToken, grantId);
      if (pair === undefined) throw new OAuthError("invalid_grant", "the refresh token is invalid");
      const elapsed = Math.floor((ctx.clock() - pair.issuedAt) / 1000);
      return {
        accessToken: pair.accessToken,
        tokenType: "Bearer",
        expiresIn: Math.max(0, pair.expiresIn - elapsed),
        refreshToken: pair.refreshToken,
        scope: pair.scope,
        idToken: pair.idToken ?? "",
      };
    }
    case "reused":
      // The store revoked the family in the same step; tell every replica's caches.
      await ctx.store.revocationFeed.announce({ grantId });
      throw new OAuthError("invalid_grant", "the refresh token was already used; the grant is revoked");
    case "rotated":
    case "unknown":
      throw new OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked");
  }
}
