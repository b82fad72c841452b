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
