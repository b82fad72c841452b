import { OAuthError } from "./errors.js";

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Parses a scope parameter (RFC 6749 §3.3): space-delimited, case-sensitive
 * tokens. Duplicates collapse; order of first appearance is kept. An empty
 * string is an omitted parameter (RFC 6749 §3.1).
 */
export function parseScope(scope: string): string[] {
  if (scope === "") return [];
  const tokens = scope.split(" ");
  const seen = new Set<string>();
  for (const token of tokens) {
    // Two spaces in a row, or leading/trailing space, yield "" here.
    if (!SCOPE_TOKEN.test(token)) throw new OAuthError("invalid_scope", "scope is malformed (RFC 6749 §3.3)");
    seen.add(token);
  }
  return [...seen];
}

/** Serialises scopes for the wire (RFC 6749 §3.3). */
export function formatScope(scopes: readonly string[]): string {
  return scopes.join(" ");
}

/** True when every scope in `requested` is in `granted`. */
export function isSubsetOf(requested: readonly string[], granted: readonly string[]): boolean {
  const grantedSet = new Set(granted);
  return requested.every((s) => grantedSet.has(s));
}

export interface ScopePolicy {
  /** Scopes that exist on the server (seed 002: "must already exist"). */
  known: { has(scope: string): boolean };
  /** Scopes this client may request. */
  allowed: readonly string[];
  /** Used when the request omits scope (RFC 6749 §3.3). */
  defaults: readonly string[];
}

/**
 * Resolves the scopes of an authorization request: each must exist and be
 * allowed for the client; an omitted scope takes the client's defaults, and a
 * client with none must ask explicitly (RFC 6749 §3.3: "MUST either process
 * the request using a pre-defined default value or fail").
 */
export function resolveRequestedScopes(scope: string, policy: ScopePolicy): string[] {
  const requested = parseScope(scope);
  if (requested.length === 0) {
    if (policy.defaults.length === 0) throw new OAuthError("invalid_scope", "scope is required for this client");
    return [...policy.defaults];
  }
  const unknown = requested.filter((s) => !policy.known.has(s));
  if (unknown.length > 0) throw new OAuthError("invalid_scope", `unknown scope: ${unknown.join(" ")}`);
  const notAllowed = requested.filter((s) => !policy.allowed.includes(s));
  if (notAllowed.length > 0) {
    throw new OAuthError("invalid_scope", `scope not allowed for this client: ${notAllowed.join(" ")}`);
  }
  return requested;
}

/**
 * Resolves the scope of a refresh request (RFC 6749 §6): it "MUST NOT include
 * any scope not originally granted", and when omitted equals the original.
 */
export function resolveRefreshScope(scope: string, granted: readonly string[]): string[] {
  const requested = parseScope(scope);
  if (requested.length === 0) return [...granted];
  if (!isSubsetOf(requested, granted)) {
    throw new OAuthError("invalid_scope", "scope exceeds what the resource owner granted");
  }
  return requested;
}
