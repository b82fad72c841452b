import type { OAuthContext } from "../context.js";
import { OAuthError } from "../errors.js";
import { issueIdToken, OPENID_SCOPE } from "../id-token.js";
import { issueAccessToken, mintRefreshToken, type TokenSet } from "../issue-tokens.js";
import type { Client } from "../model.js";
import { verifyCodeVerifier } from "../pkce.js";
import { narrowResources } from "../resource.js";
import { revokeGrant } from "../revoke.js";
import { hashSecret } from "../secrets.js";
import { verifyGrantRights } from "../current-rights.js";

/** An access token request with grant_type=authorization_code (RFC 6749 §4.1.3), from an authenticated client. */
export interface CodeExchange {
  code: string;
  redirectUri: string;
  codeVerifier: string;
  /** RFC 8707 §2.2 `resource` of the token request, each occurrence; absent or empty: all of the grant's. */
  resources?: readonly string[];
}

/**
 * RFC 6749 §4.1.3 and RFC 7636 §4.6. The code is consumed atomically before
 * anything else is checked, so that of concurrent redemptions exactly one can
 * succeed, and a code that failed a check cannot be tried again. Every
 * failure about the code is invalid_grant (RFC 6749 §5.2).
 */
export async function exchangeCode(ctx: OAuthContext, client: Client, exchange: CodeExchange): Promise<TokenSet> {
  const { policy, store } = ctx;
  if (!client.grantTypes.has("authorization_code")) {
    throw new OAuthError("unauthorized_client", "this client may not use the authorization_code grant");
  }
  if (exchange.code === "") throw new OAuthError("invalid_request", "code is required");

  const redemption = await store.codes.redeem(hashSecret(exchange.code), policy.lifetimes.accessToken);
  if (redemption.kind === "unknown") throw new OAuthError("invalid_grant", "the authorization code is invalid or expired");
  if (redemption.kind === "replayed") {
    // RFC 6749 §4.1.2: "If an authorization code is used more than once, the
    // authorization server MUST deny the request and SHOULD revoke (when
    // possible) all tokens previously issued based on that authorization code."
    await revokeGrant(ctx, redemption.grantId);
    throw new OAuthError("invalid_grant", "the authorization code was already used");
  }
  const grant = redemption.grant;

  // RFC 6749 §4.1.3: "ensure that the authorization code was issued to the authenticated confidential client,
  // or if the client is public, ensure that the code was issued to client_id in the request".
  if (grant.clientId !== client.id) throw new OAuthError("invalid_grant", "the authorization code was issued to another client");
  // RFC 6749 §4.1.3: redirect_uri is required when the authorization request had it, "and their values MUST be identical".
  if (grant.redirectUriGiven ? exchange.redirectUri !== grant.redirectUri : exchange.redirectUri !== "" && exchange.redirectUri !== grant.redirectUri) {
    throw new OAuthError("invalid_grant", "redirect_uri does not match the authorization request");
  }
  verifyCodeVerifier(exchange.codeVerifier, grant.codeChallenge);
  // RFC 8707 §2.2: the token is for the grant's resources, or the ones of them the request names.
  const audience = narrowResources(exchange.resources ?? [], grant.resources);
  // Issue 12: a user blocked (or stripped of a scope's groups) since the code was issued gets no tokens from it.
  await verifyGrantRights(ctx, grant);

  const accessTokens = await issueAccessToken(ctx, grant, grant.scopes, audience === undefined ? {} : { audience });
  // OpenID Connect Core §3.1.3.3: the openid scope makes the response carry an ID Token.
  const tokens: TokenSet = grant.scopes.includes(OPENID_SCOPE)
    ? Object.assign({}, accessTokens, {
        idToken: await issueIdToken(ctx, client, { subject: grant.subject, authTime: grant.authTime, nonce: grant.nonce, sid: grant.sid }, accessTokens.accessToken),
      })
    : accessTokens;
  if (!client.grantTypes.has("refresh_token")) return tokens;

  const now = ctx.clock();
  const familyExpiresAt = now + policy.lifetimes.refreshFamily * 1000;
  const refresh = mintRefreshToken(ctx, grant.grantId, familyExpiresAt);
  // When a replay of the code revoked the grant while this exchange ran, the
  // family is not created (the store refuses to resurrect a revoked grant) and
  // the access token's grant is already revoked: this redemption still won,
  // but what it issued is dead (RFC 6749 §4.1.2).
  await store.grants.create({
    grantId: grant.grantId,
    tokenHash: refresh.tokenHash,
    clientId: client.id,
    subject: grant.subject,
    scopes: grant.scopes,
    authTime: grant.authTime,
    tokenExpiresAt: refresh.tokenExpiresAt,
    familyExpiresAt,
    ...(grant.sid === undefined ? {} : { sid: grant.sid }),
    ...(grant.resources === undefined || grant.resources.length === 0 ? {} : { resources: grant.resources }),
  });
  return Object.assign({}, tokens, { refreshToken: refresh.refreshToken });
}
