import { buildAuthorizationResponseUrl } from "./authorization-response.js";
import { toSeconds } from "./clock.js";
import type { OAuthContext } from "./context.js";
import { OAuthError } from "./errors.js";
import { ID_BYTES } from "./issue-tokens.js";
import { sessionIdOf } from "./login.js";
import type { Client } from "./model.js";
import { revokeGrant } from "./revoke.js";
import { hashSecret } from "./secrets.js";
import { subjectFor } from "./subject-identifier.js";
import type { IdTokenClaims } from "./tokens.js";

export type { BackChannelLogout, LogoutTokenDelivery } from "./back-channel-logout.js";

/** Back-Channel Logout 1.0 §2.4: the event a Logout Token carries. */
export const BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout";
/** §2.4 RECOMMENDED: "a short lifetime ... e.g. two minutes". */
const LOGOUT_TOKEN_LIFETIME_SECONDS = 120;

/** An RP-Initiated Logout 1.0 §2 request, as the end_session_endpoint received it. "" is omitted. */
export interface LogoutRequest {
  idTokenHint: string;
  logoutHint: string;
  clientId: string;
  postLogoutRedirectUri: string;
  state: string;
  /** The browser's session token, if it has one; "" when not signed in. */
  sessionToken: string;
}

/** What the end_session_endpoint does with a request. */
export interface LogoutPlan {
  /** post_logout_redirect_uri with state (§3), verified; "" when there is none to go to. */
  redirectUrl: string;
  /** The client that asked, when known. */
  clientName: string;
  /** True when the browser has a live session. */
  sessionActive: boolean;
  /**
   * §2: the request cannot be tied to this session (no id_token_hint, or one
   * naming another session or user, or a logout_hint for someone else), so
   * the user is asked before the session ends.
   */
  confirmationRequired: boolean;
}

/**
 * Validates an RP-Initiated Logout 1.0 request (§2, §3). The client is the
 * id_token_hint's audience or client_id (both: they must agree); a
 * post_logout_redirect_uri must be one that client registered, exactly, or
 * the request is refused (never redirected: an open redirector otherwise).
 * An expired id_token_hint is accepted (§4: it still names the session).
 */
export async function planLogout(ctx: OAuthContext, request: LogoutRequest): Promise<LogoutPlan> {
  const { policy } = ctx;
  let hint: IdTokenClaims | undefined;
  if (request.idTokenHint !== "") {
    try {
      hint = await ctx.keys.verifyIdTokenHint(request.idTokenHint);
    } catch {
      throw new OAuthError("invalid_request", "id_token_hint is not an ID Token this server issued");
    }
  }
  const hintAudience = hint === undefined ? undefined : [hint.aud].flat()[0];
  if (hintAudience !== undefined && request.clientId !== "" && request.clientId !== hintAudience) {
    throw new OAuthError("invalid_request", "client_id does not match the id_token_hint");
  }
  const clientId = request.clientId !== "" ? request.clientId : hintAudience;
  let client: Client | undefined;
  if (clientId !== undefined) {
    client = await ctx.directory.findClient(clientId);
    if (client === undefined) throw new OAuthError("invalid_request", "unknown client_id");
  }

  let redirectUrl = "";
  if (request.postLogoutRedirectUri !== "") {
    // §3: "The OP MUST NOT perform post-logout redirection if ... not ... registered"; matched exactly (§3, RFC 9700 §4.1.3).
    if (client === undefined) throw new OAuthError("invalid_request", "post_logout_redirect_uri needs id_token_hint or client_id");
    if (!(client.postLogoutRedirectUris ?? []).includes(request.postLogoutRedirectUri)) {
      throw new OAuthError("invalid_request", "post_logout_redirect_uri is not registered for this client");
    }
    // §3: state, when given, is passed back; the URI is otherwise used exactly as registered.
    redirectUrl = request.state === "" ? request.postLogoutRedirectUri : buildAuthorizationResponseUrl(request.postLogoutRedirectUri, "query", { state: request.state });
  }

  const sessionHash = request.sessionToken === "" ? undefined : hashSecret(request.sessionToken);
  const session = sessionHash === undefined ? undefined : await ctx.store.sessions.get(sessionHash);
  let tied = false;
  if (session !== undefined && hint !== undefined && client !== undefined) {
    const sameSession = hint.sid === undefined || hint.sid === sessionIdOf(sessionHash!);
    tied = sameSession && hint.sub === subjectFor(policy, client, session.subject);
  }
  if (tied && request.logoutHint !== "" && session !== undefined) {
    // §2 logout_hint: a hint naming someone other than the signed-in user unties the request.
    const user = await ctx.directory.findUserBySubject(session.subject);
    tied = request.logoutHint === session.subject || request.logoutHint === user?.username;
  }
  return {
    redirectUrl,
    clientName: client?.name ?? "",
    sessionActive: session !== undefined,
    confirmationRequired: session !== undefined && !tied,
  };
}

/**
 * Ends a login session: the session itself, then what its participants asked
 * for (endParticipation).
 */
export async function endSession(ctx: OAuthContext, sessionToken: string): Promise<void> {
  if (sessionToken === "") return;
  const sessionHash = hashSecret(sessionToken);
  const session = await ctx.store.sessions.get(sessionHash);
  await ctx.store.sessions.delete(sessionHash);
  if (session === undefined) return;
  await endParticipation(ctx, sessionIdOf(sessionHash), session.subject);
}

/**
 * Ends every login session of a subject (issue 12, blocking a user), each
 * with what a logout of it does (endParticipation). Returns how many were live.
 */
export async function endSessionsOf(ctx: OAuthContext, subject: string): Promise<number> {
  const ended = await ctx.store.sessions.deleteAllOfSubject(subject);
  for (const sessionHash of ended) await endParticipation(ctx, sessionIdOf(sessionHash), subject);
  return ended.length;
}

/**
 * Ends one login session of a subject, named by its sid (an administrator
 * ending a session: the sid names it without opening it), with what a logout
 * does. Returns whether it was live.
 */
export async function endSessionOf(ctx: OAuthContext, subject: string, sid: string): Promise<boolean> {
  for (const { sessionHash } of await ctx.store.sessions.listOfSubject(subject)) {
    if (sessionIdOf(sessionHash) !== sid) continue;
    await ctx.store.sessions.delete(sessionHash);
    await endParticipation(ctx, sid, subject);
    return true;
  }
  return false;
}

/** Sessions ended by expiry are announced in batches of this many per sweep. */
const EXPIRY_BATCH = 100;

/**
 * Announces the end of sessions that expired by `now` (their keys vanish by
 * TTL, so nothing else would): the same revocations and Logout Tokens as a
 * logout. Each expired session is taken by one sweeper, whichever replica
 * runs it. A session already ended by logout has no participants left, so it
 * is announced once. Returns how many sessions were swept.
 */
export async function endExpiredSessions(ctx: OAuthContext): Promise<number> {
  const expired = await ctx.store.sessions.takeExpired(ctx.clock(), EXPIRY_BATCH);
  for (const session of expired) await endParticipation(ctx, session.sid, session.subject);
  return expired.length;
}

/**
 * For each client that got a grant in the session: its grant revoked when it
 * asked for that (`revokeOnLogout`), and one Logout Token to its back-channel
 * logout URI (Back-Channel Logout 1.0 §2.5), handed to the delivery port
 * without waiting for it.
 */
async function endParticipation(ctx: OAuthContext, sid: string, subject: string): Promise<void> {
  const participants = await ctx.store.sessions.takeParticipants(sid);
  const notified = new Set<string>();
  for (const participant of participants) {
    const client = await ctx.directory.findClient(participant.clientId);
    if (client === undefined) continue;
    if (client.revokeOnLogout === true) await revokeGrant(ctx, participant.grantId);
    if (client.backchannelLogoutUri !== undefined && !notified.has(client.id)) {
      notified.add(client.id);
      const logoutToken = await signLogoutToken(ctx, client, subject, sid);
      ctx.backChannelLogout?.deliver({ clientId: client.id, uri: client.backchannelLogoutUri, logoutToken });
    }
  }
}

/** Back-Channel Logout 1.0 §2.4: iss, aud, iat, exp, jti, events, sub and sid; never a nonce. */
async function signLogoutToken(ctx: OAuthContext, client: Client, subject: string, sid: string): Promise<string> {
  const iat = toSeconds(ctx.clock());
  return ctx.keys.signLogoutToken(
    {
      iss: ctx.policy.issuer,
      aud: client.id,
      iat,
      exp: iat + LOGOUT_TOKEN_LIFETIME_SECONDS,
      jti: ctx.random(ID_BYTES),
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
      sub: subjectFor(ctx.policy, client, subject),
      sid,
    },
    client.idTokenSignedResponseAlg ?? ctx.keys.activeAlg,
  );
}
