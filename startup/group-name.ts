/**
 * Group names (issue 12), shared by both processes: a user's groups
 * (authz `users[].groups`), the groups a scope is limited to (`scopes[].groups`)
 * and those a guarded route requires (gateway `routes[].groups`) must be
 * spelled the same everywhere, so a group is a slug: lower-case ASCII letters
 * and digits in groups joined by single hyphens. One spelling only: no case
 * folding or normalisation can make two names meet or part.
 */
export const GROUP_NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Long enough for a team's name, short enough for headers and logs. */
export const GROUP_NAME_MAX_LENGTH = 63;

export const GROUP_NAME_RULE = "must be a group slug: lower-case letters and digits, groups joined by single hyphens";

/** True for a well-formed group name. */
export function isGroupName(name: string): boolean {
  return name.length <= GROUP_NAME_MAX_LENGTH && GROUP_NAME.test(name);
}
