import type { OAuthContext } from "../context.js";
import { OAuthError } from "../errors.js";
import { ID_BYTES, issueAccessToken, type TokenSet } from "../issue-tokens.js";
import type { Client } from "../model.js";
import { allowedTarget, checkResourceIndicator } from "../resource.js";
import { resolveRequestedScopes } from "../scope.js";
import { limitTokenRate } from "../token-rate.js";

/** An access token request with grant_type=client_credentials (RFC 6749 §4.4.2), from an authenticated client. */
export interface ClientCredentialsGrant {
  scope: string;
  /** RFC 8707 resource indicator; "" when absent. */
  resource: string;
}

/**
 * RFC 6749 §4.4: a service asks for a token of its own. The token's subject
 * is the client (RFC 9068 §2.2: "In cases of access tokens obtained through
 * grants where no resource owner is involved, such as the client credentials
 * grant, the value of sub SHOULD correspond to an identifier the
 * authorization server uses to indicate the client application"), its scope
 * is within the client's, its audience is the RFC 8707 resource the client
 * named (and may name) or its configured default, and no refresh token is
 * issued (RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included").
 *
 * Each issuance is a grant of its own (a fresh grant id, no store write), so
 * that revoking the token (RFC 7009, by jti) and the revocation feed work as
 * for any other token; a token exchanged from it (RFC 8693) hangs off the
 * same grant.
 */
export async function clientCredentials(ctx: OAuthContext, client: Client, request: ClientCredentialsGrant): Promise<TokenSet> {
  // RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential clients."
  if (client.type !== "confidential" || !client.grantTypes.has("client_credentials")) {
    throw new OAuthError("unauthorized_client", "this client may not use the client_credentials grant");
  }
  const service = client.service;
  // RFC 6749 §3.3: an omitted scope takes the client's defaults, or else everything it may ask for.
  const scopes = resolveRequestedScopes(request.scope, {
    known: await ctx.directory.scopes(),
    allowed: client.scopes,
    defaults: client.defaultScopes.length > 0 ? client.defaultScopes : client.scopes,
  });
  let audience: string;
  if (request.resource !== "") {
    checkResourceIndicator(request.resource);
    audience = allowedTarget(request.resource, service?.audiences ?? []);
  } else {
    audience = service?.defaultAudience ?? ctx.policy.audience;
  }
  await limitTokenRate(ctx, client);
  return issueAccessToken(
    ctx,
    { grantId: ctx.random(ID_BYTES), clientId: client.id, subject: client.id, scopes, authTime: 0 },
    scopes,
    { audience, ttlSeconds: service?.accessTokenLifetime },
  );
}
