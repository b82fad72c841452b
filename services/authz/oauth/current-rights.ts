import type { OAuthContext } from "./context.js";
import { OAuthError } from "./errors.js";
import type { ScopeDefinition, User } from "./model.js";
import { revokeGrant } from "./revoke.js";
import type { UserState } from "./store.js";

/**
 * The reading side of the resource owner's rights (issue 12): what a user may
 * hold now, checked wherever a decision is made (authorize, code exchange,
 * refresh, introspection, login, sessions). The changing side (block,
 * unblock, groups) is oauth/user-rights.ts, which explains the model and the
 * precedence of the configuration and the store's user state.
 */

/** A user as the rights checks see them: the directory's entry with the run-time state laid over it. */
export interface UserRights {
  readonly user: User;
  readonly disabled: boolean;
  readonly groups: readonly string[];
}

/** The precedence of oauth/user-rights.ts (the entry's `disabled` or the state's; the state's groups, else the entry's), as a pure function. */
export function effectiveRights(user: User, state: UserState | undefined): { disabled: boolean; groups: readonly string[] } {
  return { disabled: user.disabled || state?.disabled === true, groups: state?.groups ?? user.groups };
}

/**
 * May a user in `groups` be granted `scope`? A scope without groups is open
 * to every user; one with groups needs membership in any one of them. A scope
 * the server does not define (any more) restricts nothing here: whether it
 * may be asked for is resolveRequestedScopes' question.
 */
export function mayHoldScope(scope: ScopeDefinition | undefined, groups: readonly string[]): boolean {
  const required = scope?.groups;
  if (required === undefined || required.length === 0) return true;
  return required.some((group) => groups.includes(group));
}

/** The scopes of `scopes` a user in `groups` may not hold, in their order. */
export function scopesBeyondRights(scopes: readonly string[], definitions: ReadonlyMap<string, ScopeDefinition>, groups: readonly string[]): string[] {
  return scopes.filter((name) => !mayHoldScope(definitions.get(name), groups));
}

/** What changed between two sets of groups. */
export function groupChange(before: readonly string[], after: readonly string[]): { lost: string[]; gained: string[] } {
  return { lost: before.filter((g) => !after.includes(g)), gained: after.filter((g) => !before.includes(g)) };
}

/** The directory's user with this subject: the configuration's, or one created at run time. */
export async function lookupUser(ctx: OAuthContext, subject: string): Promise<User | undefined> {
  return ctx.directory.findUserBySubject(subject);
}

/** The user's current rights, or undefined when no user has this subject. */
export async function findUserRights(ctx: OAuthContext, subject: string): Promise<UserRights | undefined> {
  if (subject === "") return undefined;
  // Both reads at once: one round trip to the store, not two, on every code exchange, refresh and introspection.
  const [user, state] = await Promise.all([lookupUser(ctx, subject), ctx.store.userStates.get(subject)]);
  if (user === undefined) return undefined;
  return { user, ...effectiveRights(user, state) };
}

/**
 * Checks that the resource owner may still hold a grant (seed 003): they are
 * not disabled, and may hold every scope of it. Otherwise the grant is
 * revoked (its refresh family and every access token of it) and the request
 * fails invalid_grant (RFC 6749 §5.2: "the provided authorization grant ...
 * is invalid, expired, revoked"). Gaining rights never fails it. A subject
 * the directory does not know has no groups (and is not disabled: removing a
 * user from the directory is not blocking them; block first).
 */
export async function verifyGrantRights(ctx: OAuthContext, grant: { grantId: string; subject: string; scopes: readonly string[] }): Promise<void> {
  const rights = await findUserRights(ctx, grant.subject);
  let problem: string | undefined;
  if (rights?.disabled === true) problem = "the resource owner's account is disabled";
  else {
    const beyond = scopesBeyondRights(grant.scopes, ctx.policy.scopes, rights?.groups ?? []);
    if (beyond.length > 0) problem = `the resource owner no longer has the rights for the scope ${beyond.join(" ")}; the grant is revoked`;
  }
  if (problem === undefined) return;
  await revokeGrant(ctx, grant.grantId);
  throw new OAuthError("invalid_grant", problem);
}

