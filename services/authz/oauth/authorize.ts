import { buildAuthorizationResponseUrl } from "./authorization-response.js";
import type { OAuthContext } from "./context.js";
import { OAuthError, StoreUnavailableError } from "./errors.js";
import { ID_BYTES, SECRET_BYTES, issueAccessToken } from "./issue-tokens.js";
import type { Client, ProtectedResource, ScopeDefinition } from "./model.js";
import { knownResources, resolveResourceIndicators } from "./resource.js";
import { parseCodeChallenge } from "./pkce.js";
import { matchesLoopbackAnyPort, matchRedirectUri } from "./redirect-uri.js";
import { isSubsetOf, resolveRequestedScopes } from "./scope.js";
import { hashSecret } from "./secrets.js";
import type { ParkedRequest } from "./store.js";
import {
  checkDisplay,
  decideInteraction,
  parseMaxAge,
  parseNonce,
  parsePrompt,
  refuseRequestObjects,
  type Interaction,
} from "./authentication-request.js";
import { toSeconds } from "./clock.js";
import { subjectFor } from "./subject-identifier.js";
import { findUserRights, scopesBeyondRights } from "./current-rights.js";

/** The parameters of an authorization request (RFC 6749 §4.1.1, §4.2.1; RFC 7636 §4.3). "" is omitted. */
export interface AuthorizationRequest {
  responseType: string;
  clientId: string;
  redirectUri: string;
  scope: string;
  state: string;
  codeChallenge: string;
  codeChallengeMethod: string;
  /** The already authenticated resource owner, if any. */
  subject: string;
  /** When `subject` signed in, seconds since the epoch (for max_age); 0 when unknown. */
  authTime?: number;
  // OpenID Connect Core §3.1.2.1; "" or absent is omitted.
  nonce?: string;
  prompt?: string;
  maxAge?: string;
  loginHint?: string;
  idTokenHint?: string;
  display?: string;
  uiLocales?: string;
  claimsLocales?: string;
  /** §6.1/§6.2: refused (request_not_supported, request_uri_not_supported). */
  request?: string;
  requestUri?: string;
  /** RFC 8707 §2 `resource`, each occurrence in order; absent or empty: none. */
  resources?: readonly string[];
}

/** A validated, parked request: what the consent page needs. */
export interface PendingAuthorization {
  requestId: string;
  client: Client;
  scopes: ScopeDefinition[];
  redirectUri: string;
  consentRemembered: boolean;
  expiresIn: number;
  /** OpenID Connect: the login page must be shown even over the existing session (prompt=login, max_age, id_token_hint). */
  loginRequired: boolean;
  /** OpenID Connect prompt=consent: the consent page must be shown even when consent is remembered. */
  consentRequired: boolean;
  /** The signed-in user's name (standard claim `name`), for the consent page's greeting; "" when unknown. */
  userName: string;
  /** RFC 8707: the resources the grant's tokens will be for, for the consent page; empty: the server's default audience. */
  resources: ProtectedResource[];
  /** Issue 12: requested scopes the signed-in user's groups do not allow (left out of `scopes` and of the grant). */
  withheldScopes: ScopeDefinition[];
}

/**
 * Validates an authorization request and parks it until the resource owner
 * decides (seed 001 stage 2: the PKCE cache).
 *
 * The order of checks is the RFC's: client and redirect URI first, whose
 * errors are shown to the resource owner and never redirected (RFC 6749
 * §4.1.2.1); every later error is redirected to the verified redirect URI
 * with `state` and `iss` (RFC 9207).
 */
export async function authorize(ctx: OAuthContext, request: AuthorizationRequest): Promise<PendingAuthorization> {
  const { policy } = ctx;
  if (request.clientId === "") throw new OAuthError("invalid_request", "client_id is required");
  const client = await ctx.directory.findClient(request.clientId);
  if (client === undefined) throw new OAuthError("invalid_request", "unknown client_id");
  const redirectUri = matchRedirectUri(client.redirectUris, request.redirectUri, { loopbackAnyPort: client.loopbackRedirectAnyPort });

  // From here on the redirect URI is verified: errors go back to the client.
  const responseMode = request.responseType === "token" ? "fragment" : "query";
  const redirectError = (error: OAuthError): OAuthError =>
    new OAuthError(error.code, error.description, {
      redirectUrl: buildAuthorizationResponseUrl(redirectUri, responseMode, {
        error: error.code,
        error_description: error.description,
        state: request.state,
        iss: policy.issuer,
      }),
    });

  const knownScopes = await ctx.directory.scopes();
  let parked: ParkedRequest;
  let consentRemembered: boolean;
  let interaction: Interaction;
  let withheld: string[] = [];
  try {
    refuseRequestObjects(request.request ?? "", request.requestUri ?? "");
    parked = validate(ctx, client, redirectUri, request, knownScopes);
    // Issue 12: a signed-in user is offered only the scopes their groups allow (before login nobody is known yet).
    if (request.subject !== "") {
      const requested = parked.scopes;
      parked = Object.assign({}, parked, { scopes: await scopesWithinRights(ctx, request.subject, requested, knownScopes) });
      withheld = requested.filter((scope) => !parked.scopes.includes(scope));
    }
    const prompt = parsePrompt(request.prompt ?? "");
    const maxAge = parseMaxAge(request.maxAge ?? "");
    checkDisplay(request.display ?? "");
    // ui_locales, claims_locales and login_hint are hints (§3.1.2.1): accepted; the pages are in English.
    const hintMismatch = await idTokenHintNamesAnother(ctx, client, request.idTokenHint ?? "", request.subject);
    consentRemembered = await rememberedConsent(ctx, request.subject, client.id, consentEntries(parked));
    interaction = decideInteraction({
      prompt,
      maxAge,
      session: { subject: request.subject, authTime: request.authTime ?? 0 },
      now: toSeconds(ctx.clock()),
      hintMismatch,
      consentKnown: client.firstParty || consentRemembered,
    });
  } catch (error) {
    // A store that cannot answer is the server's failure (503), not one to send to the client.
    throw error instanceof OAuthError && !(error instanceof StoreUnavailableError) ? redirectError(error) : error;
  }

  const requestId = ctx.random(SECRET_BYTES);
  await ctx.store.requests.park(hashSecret(requestId), parked, policy.lifetimes.request);
  return {
    loginRequired: interaction.login,
    consentRequired: interaction.consent,
    userName: request.subject === "" ? "" : ((await ctx.directory.findUserBySubject(request.subject))?.claims?.name ?? ""),
    requestId,
    client,
    scopes: parked.scopes.map((name) => knownScopes.get(name)!),
    redirectUri,
    consentRemembered,
    expiresIn: policy.lifetimes.request,
    resources: (parked.resources ?? []).map((uri) => policy.resources?.get(uri) ?? { uri, name: "" }),
    withheldScopes: withheld.map((name) => knownScopes.get(name)!),
  };
}

function validate(ctx: OAuthContext, client: Client, redirectUri: string, request: AuthorizationRequest, knownScopes: ReadonlyMap<string, unknown>): ParkedRequest {
  // RFC 6749 §3.1.1: response_type is required; §4.1.2.1 names the errors.
  if (request.responseType === "") throw new OAuthError("invalid_request", "response_type is required");
  if (request.responseType !== "code" && request.responseType !== "token") {
    throw new OAuthError("unsupported_response_type", "response_type must be code");
  }
  if (!client.responseTypes.has(request.responseType)) {
    throw new OAuthError("unauthorized_client", `this client may not use response_type ${request.responseType}`);
  }
  const scopes = resolveRequestedScopes(request.scope, {
    known: knownScopes,
    allowed: client.scopes,
    defaults: client.defaultScopes,
  });
  const nonce = parseNonce(request.nonce ?? "");
  // RFC 8707 §2: each resource absolute, without a fragment, and one this server knows; else invalid_target.
  const resources = resolveResourceIndicators(request.resources ?? [], knownResources(ctx.policy, client));
  // PKCE binds the code to the client instance (RFC 7636 §4.4); the implicit grant has no code.
  const codeChallenge =
    request.responseType === "code"
      ? parseCodeChallenge(request.codeChallenge, request.codeChallengeMethod, client.pkce)
      : undefined;
  return {
    clientId: client.id,
    responseType: request.responseType,
    redirectUri,
    redirectUriGiven: request.redirectUri !== "",
    scopes,
    state: request.state,
    codeChallenge,
    ...(nonce === undefined ? {} : { nonce }),
    ...(resources.length === 0 ? {} : { resources }),
  };
}

/**
 * What a remembered consent covers: the scopes, and the RFC 8707 resources the
 * client reaches with them, so that consent to one MCP server is not taken for
 * another. A resource is remembered as "resource {uri}": a scope token cannot
 * contain a space (RFC 6749 §3.3), so the two never collide in one set.
 */
function consentEntries(parked: ParkedRequest): string[] {
  return [...parked.scopes, ...(parked.resources ?? []).map((uri) => `resource ${uri}`)];
}

/**
 * The requested scopes the resource owner may hold now (issue 12). When
 * nothing is left the request ends: RFC 6749 §4.1.2.1 access_denied, "the
 * resource owner or authorization server denied the request" (the gateway
 * shows the user why before the client hears it).
 */
async function scopesWithinRights(ctx: OAuthContext, subject: string, scopes: readonly string[], knownScopes: ReadonlyMap<string, ScopeDefinition>): Promise<string[]> {
  const rights = await findUserRights(ctx, subject);
  if (rights?.disabled === true) throw new OAuthError("access_denied", "the resource owner's account is disabled");
  // A subject the directory does not know has no groups.
  const beyond = scopesBeyondRights(scopes, knownScopes, rights?.groups ?? []);
  if (beyond.length === scopes.length) {
    throw new OAuthError("access_denied", `the resource owner's account lacks the rights for what the client asked: ${beyond.join(" ")}`);
  }
  return scopes.filter((scope) => !beyond.includes(scope));
}

async function rememberedConsent(ctx: OAuthContext, subject: string, clientId: string, scopes: readonly string[]): Promise<boolean> {
  return subject !== "" && isSubsetOf(scopes, await ctx.store.consents.get(subject, clientId));
}

/**
 * Core §3.1.2.1 id_token_hint: an ID Token this server issued to this client
 * (expired ones too). Returns whether it names a user other than the signed-in
 * one; a hint that is malformed, foreign, or another client's is
 * invalid_request.
 */
async function idTokenHintNamesAnother(ctx: OAuthContext, client: Client, hint: string, subject: string): Promise<boolean> {
  if (hint === "") return false;
  let claims;
  try {
    claims = await ctx.keys.verifyIdTokenHint(hint);
  } catch {
    throw new OAuthError("invalid_request", "id_token_hint is not an ID Token this server issued");
  }
  if (claims.aud !== client.id && !(Array.isArray(claims.aud) && (claims.aud as string[]).includes(client.id))) {
    throw new OAuthError("invalid_request", "id_token_hint was issued to another client");
  }
  return subject === "" || claims.sub !== subjectFor(ctx.policy, client, subject);
}

/** The resource owner's decision on a parked request. */
export interface Decision {
  requestId: string;
  subject: string;
  /** Seconds since the epoch. */
  authTime: number;
  approved: boolean;
  rememberConsent: boolean;
  /** The login session's id (the ID Token's sid); absent or "": none. */
  sid?: string;
}

/**
 * Turns the resource owner's decision into the authorization response
 * (RFC 6749 §4.1.2 / §4.2.2, with `iss` per RFC 9207): on approval a code
 * bound to client, redirect URI, PKCE challenge, scope and subject (or, for
 * the implicit grant, an access token); on denial `access_denied`.
 * The parked request is consumed atomically, so a decision is made once.
 */
export async function decide(ctx: OAuthContext, decision: Decision): Promise<string> {
  const { policy, store } = ctx;
  if (decision.requestId === "") throw new OAuthError("invalid_request", "request_id is required");
  if (decision.subject === "") throw new OAuthError("invalid_request", "subject is required");
  const parked = await store.requests.take(hashSecret(decision.requestId));
  if (parked === undefined) throw new OAuthError("invalid_request", "the authorization request expired or was already decided");
  const client = await ctx.directory.findClient(parked.clientId);
  if (client === undefined || !isRegisteredRedirectUri(client, parked.redirectUri)) {
    // The configuration changed under the parked request: the redirect is no longer verified.
    throw new OAuthError("invalid_request", "the client or its redirect URI is no longer registered");
  }
  const mode = parked.responseType === "token" ? "fragment" : "query";
  const respond = (params: Record<string, string | number | undefined>) =>
    buildAuthorizationResponseUrl(parked.redirectUri, mode, Object.assign({}, params, { state: parked.state, iss: policy.issuer }));

  if (!decision.approved) {
    return respond({ error: "access_denied", error_description: "the resource owner denied the request" });
  }
  // Issue 12: decided on the user's rights now (they may have changed since the request was parked).
  let scopes: string[];
  try {
    scopes = await scopesWithinRights(ctx, decision.subject, parked.scopes, await ctx.directory.scopes());
  } catch (error) {
    if (error instanceof OAuthError && error.code === "access_denied") return respond({ error: error.code, error_description: error.description });
    throw error;
  }
  parked.scopes = scopes;
  if (decision.rememberConsent) {
    await store.consents.remember(decision.subject, client.id, consentEntries(parked), policy.lifetimes.consent);
  }
  const grantId = ctx.random(ID_BYTES);

  if (parked.responseType === "token") {
    // RFC 6749 §4.2.2: the implicit grant returns the token itself and never a refresh token.
    const token = await issueAccessToken(
      ctx,
      { grantId, clientId: client.id, subject: decision.subject, scopes: parked.scopes, authTime: decision.authTime },
      parked.scopes,
      parked.resources === undefined || parked.resources.length === 0 ? {} : { audience: parked.resources },
    );
    return respond({ access_token: token.accessToken, token_type: token.tokenType, expires_in: token.expiresIn, scope: token.scope });
  }

  if (decision.sid !== undefined && decision.sid !== "") {
    // Back-Channel Logout and revokeOnLogout: the session remembers who got a grant in it.
    await store.sessions.addParticipant(decision.sid, { clientId: client.id, grantId }, policy.lifetimes.session);
  }

  const code = ctx.random(SECRET_BYTES);
  await store.codes.save(
    hashSecret(code),
    {
      grantId,
      clientId: client.id,
      redirectUri: parked.redirectUri,
      redirectUriGiven: parked.redirectUriGiven,
      scopes: parked.scopes,
      subject: decision.subject,
      authTime: decision.authTime,
      codeChallenge: parked.codeChallenge,
      ...(parked.nonce === undefined ? {} : { nonce: parked.nonce }),
      ...(decision.sid === undefined || decision.sid === "" ? {} : { sid: decision.sid }),
      // RFC 8707: the code is bound to the resources of the authorization request.
      ...(parked.resources === undefined || parked.resources.length === 0 ? {} : { resources: parked.resources }),
    },
    policy.lifetimes.code,
  );
  return respond({ code });
}

/** The redirect URI is still the client's: exactly, or (RFC 8252 §7.3) a loopback one with another port. */
function isRegisteredRedirectUri(client: Client, redirectUri: string): boolean {
  if (client.redirectUris.includes(redirectUri)) return true;
  return client.loopbackRedirectAnyPort === true && client.redirectUris.some((uri) => matchesLoopbackAnyPort(uri, redirectUri));
}
