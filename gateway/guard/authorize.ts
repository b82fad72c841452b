/**
 * The fourth step of the guard: does the token's scope cover the route?
 * A route needs one of its scopes (`any`, the default: seed 000's "the
 * requested resource is within its scope") or every one of them (`all`).
 */
export interface ScopeRule {
  readonly scopes: readonly string[];
  readonly scopeMode: "any" | "all";
}

/** True when the granted scopes satisfy the rule. RFC 6749 §3.3: scope values are case-sensitive. */
export function authorizeScopes(rule: ScopeRule, granted: ReadonlySet<string>): boolean {
  if (rule.scopes.length === 0) return false;
  if (rule.scopeMode === "all") {
    for (const scope of rule.scopes) if (!granted.has(scope)) return false;
    return true;
  }
  for (const scope of rule.scopes) if (granted.has(scope)) return true;
  return false;
}

/**
 * RFC 6750 §3: the `scope` attribute of an insufficient_scope challenge, the
 * scopes the route asks for, space-delimited.
 */
export function requiredScope(rule: ScopeRule): string {
  return rule.scopes.join(" ");
}

/** A human description of what is missing, for error_description. */
export function describeRequirement(rule: ScopeRule): string {
  if (rule.scopes.length === 1) return `the access token lacks the scope ${rule.scopes[0]}`;
  return rule.scopeMode === "all"
    ? `the access token needs every one of the scopes ${rule.scopes.join(", ")}`
    : `the access token needs one of the scopes ${rule.scopes.join(", ")}`;
}

/**
 * Issue 12 (seed 001 stage 8: "the resource owner is authorized to access the
 * requested resource"): the groups a route requires of the token's resource
 * owner, besides its scopes. A scope says what the client may do for the
 * user; a group says what the user may do at all.
 */
export interface GroupRule {
  /** Empty or absent: the route requires no group. */
  readonly groups?: readonly string[] | undefined;
  /** any (default): one of the groups suffices; all: every one is needed. */
  readonly groupMode?: "any" | "all" | undefined;
}

/**
 * True when the resource owner's current groups (introspected now, not from
 * the token) satisfy the rule. Group names are slugs, compared exactly.
 */
export function authorizeGroups(rule: GroupRule, held: ReadonlySet<string>): boolean {
  const required = rule.groups;
  if (required === undefined || required.length === 0) return true;
  if (rule.groupMode === "all") {
    for (const group of required) if (!held.has(group)) return false;
    return true;
  }
  for (const group of required) if (held.has(group)) return true;
  return false;
}

/**
 * The error_description of the refusal for missing rights. The groups are
 * not named: unlike a scope, which the client can ask for, a group is the
 * organisation's business, and telling every token holder which groups open
 * a route helps nobody but someone mapping the organisation.
 */
export const INSUFFICIENT_RIGHTS_DESCRIPTION = "the resource owner lacks the rights this resource requires";
