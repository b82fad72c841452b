import type { OAuthContext } from "../context.js";
import { findUserRights } from "../current-rights.js";
import { OAuthError } from "../errors.js";
import { issueAccessToken, type TokenSet } from "../issue-tokens.js";
import { TOKEN_EXCHANGE_GRANT, type Client } from "../model.js";
import { allowedTarget, checkResourceIndicator } from "../resource.js";
import { isSubsetOf, parseScope } from "../scope.js";
import { limitTokenRate } from "../token-rate.js";
import { looksLikeJwt, parseRefreshToken, type AccessTokenClaims, type Actor } from "../tokens.js";

/** RFC 8693 §3 token type identifiers. */
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
export const REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token";
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";

/** A token exchange request (RFC 8693 §2.1); "" for an absent parameter. */
export interface TokenExchangeRequest {
  subjectToken: string;
  subjectTokenType: string;
  actorToken: string;
  actorTokenType: string;
  requestedTokenType: string;
  resource: string;
  audience: string;
  scope: string;
}

/**
 * RFC 8693 token exchange: a service that received a user's access token
 * trades it for one to call the next service. The new token keeps the
 * user's `sub` (and auth_time), is addressed to the target the client may
 * name (invalid_target otherwise), carries scopes the subject token had and
 * the client may carry over (invalid_scope otherwise), and records who acts
 * in `act` (§4.1), the earlier actors nested inside; a client whose policy
 * allows impersonation and presents no actor token gets no new `act`. It
 * belongs to the subject token's grant and lives no longer than the subject
 * token, so revoking the user's grant kills it too. No refresh token is
 * issued (§2.2.1: the exchange is repeated instead).
 *
 * RFC 8693 §2.2.2: "If the request itself is not valid or if either the
 * subject_token or actor_token are invalid for any reason, or are
 * unacceptable based on policy ... The value of the error parameter MUST be
 * the invalid_request error code."
 */
export async function exchangeToken(ctx: OAuthContext, client: Client, request: TokenExchangeRequest): Promise<TokenSet> {
  const policy = client.service?.tokenExchange;
  if (client.type !== "confidential" || !client.grantTypes.has(TOKEN_EXCHANGE_GRANT) || policy === undefined) {
    throw new OAuthError("unauthorized_client", "this client may not exchange tokens");
  }
  // §2.1: subject_token and subject_token_type are REQUIRED.
  if (request.subjectToken === "") throw new OAuthError("invalid_request", "subject_token is required");
  if (request.subjectTokenType === "") throw new OAuthError("invalid_request", "subject_token_type is required");
  checkTokenType(request.subjectTokenType, "subject_token_type");
  // §2.1: only access tokens are issued here; asking for anything else is a request this server cannot satisfy.
  if (request.requestedTokenType !== "" && request.requestedTokenType !== ACCESS_TOKEN_TYPE && request.requestedTokenType !== JWT_TOKEN_TYPE) {
    throw new OAuthError("invalid_request", `requested_token_type ${JSON.stringify(request.requestedTokenType)} is not issued here; ask for ${ACCESS_TOKEN_TYPE}`);
  }
  // §2.1: actor_token_type "is REQUIRED when the actor_token parameter is present ... and MUST NOT be included otherwise".
  if (request.actorToken !== "" && request.actorTokenType === "") throw new OAuthError("invalid_request", "actor_token_type is required with actor_token");
  if (request.actorToken === "" && request.actorTokenType !== "") throw new OAuthError("invalid_request", "actor_token_type without actor_token");
  if (request.actorToken !== "") checkTokenType(request.actorTokenType, "actor_token_type");

  // Targets: the RFC 8707 resource and the RFC 8693 audience; each must be one the client may exchange for.
  const targets: string[] = [];
  if (request.resource !== "") {
    checkResourceIndicator(request.resource);
    targets.push(allowedTarget(request.resource, policy.audiences));
  }
  if (request.audience !== "" && !targets.includes(request.audience)) targets.push(allowedTarget(request.audience, policy.audiences));
  if (targets.length === 0) throw new OAuthError("invalid_target", "name the service the token is for with resource or audience");

  const subject = await verifyPresentedToken(ctx, request.subjectToken, "subject_token");
  const subjectAudiences = [subject.aud].flat();
  if (!subjectAudiences.some((aud) => policy.subjectAudiences.includes(aud))) {
    throw new OAuthError("invalid_request", "subject_token is not addressed to this client (aud)");
  }

  // Scope: what the subject token carries and this client may carry over; narrowing only (§2.1 scope).
  const subjectScopes = parseScope(subject.scope);
  const requested = parseScope(request.scope);
  const carried = subjectScopes.filter((scope) => policy.scopes.includes(scope));
  let scopes: string[];
  if (requested.length === 0) {
    scopes = carried;
  } else {
    if (!isSubsetOf(requested, subjectScopes)) throw new OAuthError("invalid_scope", "scope exceeds the subject token's");
    if (!isSubsetOf(requested, policy.scopes)) throw new OAuthError("invalid_scope", "this client may not carry over that scope");
    scopes = requested;
  }
  if (scopes.length === 0) throw new OAuthError("invalid_scope", "no scope of the subject token may be carried over by this client");

  let act: Actor | undefined;
  if (request.actorToken !== "") {
    const actor = await verifyPresentedToken(ctx, request.actorToken, "actor_token");
    // The actor token proves the acting party; it must have been issued to the client presenting it.
    if (actor.client_id !== client.id) throw new OAuthError("invalid_request", "actor_token was not issued to this client");
    act = nestActor(actor.sub, subject.act);
  } else if (policy.impersonate) {
    // §1.1 impersonation: the new token is indistinguishable from one issued to the subject; the chain so far stays.
    act = subject.act;
  } else {
    act = nestActor(client.id, subject.act);
  }

  await limitTokenRate(ctx, client);
  const now = ctx.clock();
  const lifetime = client.service?.accessTokenLifetime ?? ctx.policy.lifetimes.accessToken;
  // Never outlives the token it was exchanged for.
  const ttlSeconds = Math.max(1, Math.min(lifetime, subject.exp - Math.floor(now / 1000)));
  const tokens = await issueAccessToken(
    ctx,
    { grantId: subject.gid, clientId: client.id, subject: subject.sub, scopes, authTime: subject.auth_time ?? 0 },
    scopes,
    { audience: targets, ttlSeconds, act },
  );
  // §2.2.1: issued_token_type is REQUIRED.
  return Object.assign({}, tokens, { issuedTokenType: ACCESS_TOKEN_TYPE });
}

/** §4.1: "the current actor ... nested act claims ... the prior actors". */
function nestActor(sub: string, prior: Actor | undefined): Actor {
  return prior === undefined ? { sub } : { sub, act: prior };
}

function checkTokenType(type: string, parameter: string): void {
  if (type === REFRESH_TOKEN_TYPE) throw new OAuthError("invalid_request", `${parameter}: refresh tokens cannot be exchanged; present an access token`);
  if (type !== ACCESS_TOKEN_TYPE && type !== JWT_TOKEN_TYPE) {
    throw new OAuthError("invalid_request", `${parameter} ${JSON.stringify(type)} is not accepted; use ${ACCESS_TOKEN_TYPE}`);
  }
}

/**
 * A live gatehouse access token of this issuer: signature, `typ`, `iss` and
 * `exp` (the key ring), and neither it nor its grant revoked. A refresh token,
 * an expired, revoked or foreign (another issuer's, another tenant's) token is
 * invalid_request (§2.2.2).
 */
async function verifyPresentedToken(ctx: OAuthContext, token: string, parameter: string): Promise<AccessTokenClaims> {
  if (parseRefreshToken(token) !== undefined) throw new OAuthError("invalid_request", `${parameter} is a refresh token; present an access token`);
  if (!looksLikeJwt(token)) throw new OAuthError("invalid_request", `${parameter} is not an access token of this server`);
  let claims: AccessTokenClaims;
  try {
    claims = await ctx.keys.verify(token, ctx.clock());
  } catch {
    throw new OAuthError("invalid_request", `${parameter} is invalid or expired, or was not issued by this server`);
  }
  if (await ctx.store.grants.isRevoked(claims.gid, claims.jti)) throw new OAuthError("invalid_request", `${parameter} has been revoked`);
  // Issue 12: a blocked user's token is dead everywhere, exchanges included.
  if ((await findUserRights(ctx, claims.sub))?.disabled === true) throw new OAuthError("invalid_request", `${parameter} has been revoked`);
  return claims;
}
