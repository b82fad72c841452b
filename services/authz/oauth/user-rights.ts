import type { OAuthContext } from "./context.js";
import { effectiveRights, groupChange, lookupUser } from "./current-rights.js";
import { endSessionOf, endSessionsOf } from "./end-session.js";
import { sessionIdOf } from "./login.js";
import { OAuthError } from "./errors.js";
import { revokeGrant } from "./revoke.js";
import type { UserState } from "./store.js";
import { isGroupName } from "../../../startup/group-name.js";

export {
  effectiveRights,
  findUserRights,
  groupChange,
  mayHoldScope,
  scopesBeyondRights,
  verifyGrantRights,
  type UserRights,
} from "./current-rights.js";

/**
 * The resource owner's rights (issue 12; seed 001 stage 8, "the resource
 * owner is authorized to access the requested resource"; seed 003, a refresh
 * works "as long as ... the user is not blocked or its rights were changed").
 *
 * A user's rights are their groups; a scope may be limited to groups
 * (ScopeDefinition.groups) and a gateway route may require groups. What
 * counts is always the user's CURRENT state, read at the moment of the
 * decision: authorization (what the consent page offers), code exchange,
 * refresh, introspection (what the guard gets) and login.
 *
 * Precedence (README, "Users' rights: groups and blocking"): the directory's entry
 * (the configuration's users, then users created at run time) says who the
 * user is, their groups and whether the configuration disables them; the
 * store's user state (UserStateStore, written by blockUser / unblockUser /
 * setUserGroups) lies over it:
 *   - disabled = the entry's `disabled` OR the state's. A user the
 *     configuration disables stays disabled whatever the state says (the file
 *     is the source of truth for what it declares); any user can be blocked
 *     at run time, configured or not.
 *   - groups = the state's `groups` when it has them, else the entry's.
 */

export type BlockOutcome =
  | { readonly kind: "unknown_user" }
  | {
      readonly kind: "blocked";
      /** The user was blocked already (the call ended what it found all the same). */
      readonly alreadyBlocked: boolean;
      /** Login sessions ended now. */
      readonly sessionsEnded: number;
      /** Grants (refresh families) revoked now. */
      readonly grantsRevoked: number;
    };

/**
 * Blocks a user (issue 12, seed 003): from the moment the state is written
 * every check refuses them (login answers account_disabled, refresh
 * invalid_grant, introspection `active: false`); every gateway is told at
 * once (a `subject` revocation) and evicts what it cached of them; then
 * every login session of theirs ends (with what each session's participants
 * asked for at logout: revokeOnLogout, Back-Channel Logout tokens), and
 * every grant is revoked, refresh families and with them their access
 * tokens. Unblocking (unblockUser) restores logins, not these grants.
 */
export async function blockUser(ctx: OAuthContext, subject: string): Promise<BlockOutcome> {
  const user = await lookupUser(ctx, subject);
  if (user === undefined) return { kind: "unknown_user" };
  const state = await ctx.store.userStates.get(subject);
  const alreadyBlocked = state?.disabled === true;
  await ctx.store.userStates.put(subject, Object.assign({}, state, { disabled: true }));
  // Written first, announced second: an introspection the announcement evicts can only be answered inactive again.
  await ctx.store.revocationFeed.announce({ subject });
  const sessionsEnded = await endSessionsOf(ctx, subject);
  let grantsRevoked = 0;
  for (const family of await ctx.store.grants.listOfSubject(subject)) {
    await revokeGrant(ctx, family.grantId);
    grantsRevoked++;
  }
  return { kind: "blocked", alreadyBlocked, sessionsEnded, grantsRevoked };
}

export type UnblockOutcome =
  | { readonly kind: "unknown_user" }
  /** The run-time block is lifted (or there was none): the user may sign in again. */
  | { readonly kind: "unblocked" }
  /** The run-time block is lifted, but the configuration itself disables the user: they stay disabled. */
  | { readonly kind: "disabled_by_configuration" };

/**
 * Lifts a run-time block: the user may sign in again and get new grants. The
 * grants revoked by the block stay revoked (their tokens are gone for good).
 * A user the configuration disables stays disabled (see the precedence above).
 */
export async function unblockUser(ctx: OAuthContext, subject: string): Promise<UnblockOutcome> {
  const user = await lookupUser(ctx, subject);
  if (user === undefined) return { kind: "unknown_user" };
  const state = await ctx.store.userStates.get(subject);
  if (state?.disabled === true) {
    if (state.groups === undefined) await ctx.store.userStates.delete(subject);
    else await ctx.store.userStates.put(subject, { disabled: false, groups: state.groups });
    await ctx.store.revocationFeed.announce({ subject });
  }
  return user.disabled ? { kind: "disabled_by_configuration" } : { kind: "unblocked" };
}

export type GroupsOutcome =
  | { readonly kind: "unknown_user" }
  | { readonly kind: "changed"; readonly lost: readonly string[]; readonly gained: readonly string[] };

/**
 * Sets a user's groups at run time (the state's override), or with
 * `undefined` returns them to the directory's; then userRightsChanged.
 * Group names must be slugs (startup/group-name.ts): invalid_request otherwise.
 */
export async function setUserGroups(ctx: OAuthContext, subject: string, groups: readonly string[] | undefined): Promise<GroupsOutcome> {
  const bad = (groups ?? []).filter((group) => !isGroupName(group));
  if (bad.length > 0) throw new OAuthError("invalid_request", `not a group name (a slug: lower-case letters and digits joined by hyphens): ${bad.join(", ")}`);
  const user = await lookupUser(ctx, subject);
  if (user === undefined) return { kind: "unknown_user" };
  const state = await ctx.store.userStates.get(subject);
  const before = effectiveRights(user, state).groups;
  const next: UserState = { disabled: state?.disabled === true, ...(groups === undefined ? {} : { groups: [...new Set(groups)] }) };
  if (!next.disabled && next.groups === undefined) await ctx.store.userStates.delete(subject);
  else await ctx.store.userStates.put(subject, next);
  const after = effectiveRights(user, next).groups;
  return { kind: "changed", ...(await userRightsChanged(ctx, subject, before, after)) };
}

/**
 * To be called after anything changed a user's groups, whoever stored the
 * change (setUserGroups, or an administrator's update of a user created at
 * run time). Every gateway is told (a `subject` revocation) and evicts what
 * it cached of the user's tokens, so the next request is decided on the new
 * groups. Nothing is revoked here: a refresh whose grant holds a scope the
 * user may no longer hold is refused when it comes (verifyGrantRights), which
 * covers every path a change can take; gaining rights never breaks one.
 * Returns what changed; an unchanged set announces nothing.
 */
export async function userRightsChanged(
  ctx: OAuthContext,
  subject: string,
  before: readonly string[],
  after: readonly string[],
): Promise<{ lost: string[]; gained: string[] }> {
  const change = groupChange(before, after);
  if (change.lost.length > 0 || change.gained.length > 0) await ctx.store.revocationFeed.announce({ subject });
  return change;
}

/** A login session as an administrator sees it: its public id (OpenID Connect `sid`), never its token. */
export interface UserSession {
  readonly sid: string;
  /** Seconds since the epoch. */
  readonly authTime: number;
}

/** The user's live login sessions (the store's per-subject index). */
export async function listUserSessions(ctx: OAuthContext, subject: string): Promise<UserSession[]> {
  const sessions = await ctx.store.sessions.listOfSubject(subject);
  return sessions.map(({ sessionHash, session }) => ({ sid: sessionIdOf(sessionHash), authTime: session.authTime }));
}

/** Ends one of the user's sessions by its sid, as a logout would; false when no live session of theirs has it. */
export function endUserSession(ctx: OAuthContext, subject: string, sid: string): Promise<boolean> {
  return endSessionOf(ctx, subject, sid);
}

/** A grant (refresh family) as an administrator sees it: no token hash. */
export interface UserGrant {
  readonly grantId: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** Seconds since the epoch. */
  readonly authTime: number;
  /** ms since the epoch: when the family ends whatever the rotations. */
  readonly familyExpiresAt: number;
}

/** The user's live grants (the store's per-subject index of refresh families). */
export async function listUserGrants(ctx: OAuthContext, subject: string): Promise<UserGrant[]> {
  const families = await ctx.store.grants.listOfSubject(subject);
  return families.map((f) => ({ grantId: f.grantId, clientId: f.clientId, scopes: f.scopes, authTime: f.authTime, familyExpiresAt: f.familyExpiresAt }));
}

/** Revokes one grant of the user (its refresh family and access tokens, announced); false when it is not a live grant of theirs. */
export async function revokeUserGrant(ctx: OAuthContext, subject: string, grantId: string): Promise<boolean> {
  const family = await ctx.store.grants.get(grantId);
  if (family === undefined || family.subject !== subject) return false;
  await revokeGrant(ctx, grantId);
  return true;
}
