import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OAuthError } from "../../services/authz/oauth/errors.js";
import {
  formatScope,
  isSubsetOf,
  parseScope,
  resolveRefreshScope,
  resolveRequestedScopes,
  type ScopePolicy,
} from "../../services/authz/oauth/scope.js";

const invalidScope = expect.objectContaining({ name: "OAuthError", code: "invalid_scope" });

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), spelled out here rather than imported. */
const SCOPE_CHARS = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).filter(
  (c) => c !== '"' && c !== "\\",
);
const scopeTokenArb = fc.string({ unit: fc.constantFrom(...SCOPE_CHARS), minLength: 1, maxLength: 16 });

describe("parseScope", () => {
  it("RFC 6749 §3.3: the scope-token alphabet is the 92 characters %x21 / %x23-5B / %x5D-7E", () => {
    expect(SCOPE_CHARS).toHaveLength(92);
    expect(parseScope(SCOPE_CHARS.join(""))).toEqual([SCOPE_CHARS.join("")]);
  });

  it.each<[string, string, string[]]>([
    ["RFC 6749 §3.1: an empty scope is an omitted parameter", "", []],
    ["RFC 6749 §3.3: one token", "read", ["read"]],
    ["RFC 6749 §3.3: space-delimited tokens, in request order", "write read", ["write", "read"]],
    ["RFC 6749 §3.3: tokens with URI characters", "notes:read https://api.example/notes", ["notes:read", "https://api.example/notes"]],
    ["RFC 6749 §3.3: the edge characters ! # [ ] ~ are allowed", "! # [ ] ~", ["!", "#", "[", "]", "~"]],
    ["RFC 6749 §3.3: a repeated token collapses, first appearance kept", "read write read", ["read", "write"]],
    ["RFC 6749 §3.3: tokens are case-sensitive", "Read read READ", ["Read", "read", "READ"]],
  ])("%s", (_name, scope, expected) => {
    expect(parseScope(scope)).toEqual(expected);
  });

  it.each<[string, string]>([
    ["RFC 6749 §3.3: two spaces in a row are invalid_scope", "read  write"],
    ["RFC 6749 §3.3: a leading space is invalid_scope", " read"],
    ["RFC 6749 §3.3: a trailing space is invalid_scope", "read "],
    ["RFC 6749 §3.3: a lone space is invalid_scope", " "],
    ["RFC 6749 §3.3: a double quote (%x22) is invalid_scope", 'read "write"'],
    ["RFC 6749 §3.3: a backslash (%x5C) is invalid_scope", "read\\write"],
    ["RFC 6749 §3.3: a tab is not a delimiter", "read\twrite"],
    ["RFC 6749 §3.3: a newline is not a delimiter", "read\nwrite"],
    ["RFC 6749 §3.3: a NUL is invalid_scope", "read\u0000"],
    ["RFC 6749 §3.3: DEL (%x7F) is invalid_scope", "read\u007f"],
    ["RFC 6749 §3.3: a non-ASCII letter is invalid_scope", "réad"],
    ["RFC 6749 §3.3: a non-breaking space is not a delimiter", "read\u00a0write"],
    ["RFC 6749 §3.3: an emoji is invalid_scope", "read 🔑"],
  ])("%s", (_name, scope) => {
    expect(() => parseScope(scope)).toThrow(invalidScope);
  });

  it("RFC 6749 §3.3: any string either parses to unique scope-tokens or is invalid_scope", () => {
    const tokenPattern = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(" ", "a", "b", '"', "\\", "é") })), (scope) => {
        let tokens: string[];
        try {
          tokens = parseScope(scope);
        } catch (error) {
          expect(error).toBeInstanceOf(OAuthError);
          expect(error).toEqual(invalidScope);
          return;
        }
        expect(new Set(tokens).size).toBe(tokens.length);
        for (const token of tokens) expect(token).toMatch(tokenPattern);
        // Nothing but duplicates is dropped.
        expect(new Set(scope === "" ? [] : scope.split(" "))).toEqual(new Set(tokens));
      }),
    );
  });
});

describe("formatScope", () => {
  it("RFC 6749 §3.3: scopes are joined by single spaces", () => {
    expect(formatScope(["read", "write"])).toBe("read write");
    expect(formatScope([])).toBe("");
  });

  it("RFC 6749 §3.3: parseScope and formatScope round-trip any list of unique scope-tokens", () => {
    fc.assert(
      fc.property(fc.uniqueArray(scopeTokenArb, { maxLength: 8 }), (scopes) => {
        const wire = formatScope(scopes);
        expect(parseScope(wire)).toEqual(scopes);
        expect(formatScope(parseScope(wire))).toBe(wire);
      }),
    );
  });
});

describe("isSubsetOf", () => {
  it.each<[string, string[], string[], boolean]>([
    ["the empty set is a subset of anything", [], ["read"], true],
    ["the empty set is a subset of the empty set", [], [], true],
    ["equal sets", ["read", "write"], ["write", "read"], true],
    ["a proper subset", ["read"], ["read", "write"], true],
    ["one scope more than granted", ["read", "admin"], ["read", "write"], false],
    ["anything non-empty is not a subset of nothing", ["read"], [], false],
    ["comparison is case-sensitive", ["READ"], ["read"], false],
    ["a prefix of a granted scope is not granted", ["rea"], ["read"], false],
  ])("%s", (_name, requested, granted, expected) => {
    expect(isSubsetOf(requested, granted)).toBe(expected);
  });
});

describe("resolveRequestedScopes", () => {
  const policy: ScopePolicy = {
    known: new Set(["read", "write", "admin"]),
    allowed: ["read", "write"],
    defaults: ["read"],
  };

  it.each<[string, string, ScopePolicy, string[]]>([
    ["RFC 6749 §3.3: an omitted scope takes the client's defaults", "", policy, ["read"]],
    ["RFC 6749 §3.3: several default scopes are all used", "", { ...policy, defaults: ["read", "write"] }, ["read", "write"]],
    ["RFC 6749 §3.3: an allowed scope is granted as requested", "write", policy, ["write"]],
    ["RFC 6749 §3.3: allowed scopes keep the request's order and lose duplicates", "write read write", policy, ["write", "read"]],
  ])("%s", (_name, scope, scopePolicy, expected) => {
    expect(resolveRequestedScopes(scope, scopePolicy)).toEqual(expected);
  });

  it("RFC 6749 §3.3: the defaults are returned as a copy, not the policy's own array", () => {
    const resolved = resolveRequestedScopes("", policy);
    resolved.push("admin");
    expect(policy.defaults).toEqual(["read"]);
  });

  it.each<[string, string, ScopePolicy]>([
    ["RFC 6749 §3.3: a client without defaults that omits scope is invalid_scope", "", { ...policy, defaults: [] }],
    ["RFC 6749 §4.1.2.1: an unknown scope is invalid_scope", "read unknown", policy],
    ["RFC 6749 §4.1.2.1: a known scope the client may not request is invalid_scope", "read admin", policy],
    ["RFC 6749 §4.1.2.1: an allowed scope that the server does not know is invalid_scope", "read", { ...policy, known: new Set(["write"]) }],
    ["RFC 6749 §4.1.2.1: scopes are case-sensitive", "READ", policy],
    ["RFC 6749 §3.3: a malformed scope is invalid_scope", "read  write", policy],
  ])("%s", (_name, scope, scopePolicy) => {
    expect(() => resolveRequestedScopes(scope, scopePolicy)).toThrow(invalidScope);
  });
});

describe("resolveRefreshScope", () => {
  const granted = ["read", "write"];

  it.each<[string, string, string[]]>([
    ["RFC 6749 §6: an omitted scope is treated as equal to the scope originally granted", "", ["read", "write"]],
    ["RFC 6749 §6: the scope may be narrowed", "read", ["read"]],
    ["RFC 6749 §6: the full original scope may be requested again, in any order", "write read", ["write", "read"]],
    ["RFC 6749 §6: a repeated scope collapses", "read read", ["read"]],
  ])("%s", (_name, scope, expected) => {
    expect(resolveRefreshScope(scope, granted)).toEqual(expected);
  });

  it.each<[string, string]>([
    ["RFC 6749 §6: a scope not originally granted is invalid_scope", "read admin"],
    ["RFC 6749 §6: only a scope not originally granted is invalid_scope", "admin"],
    ["RFC 6749 §6: scope comparison is case-sensitive", "READ"],
    ["RFC 6749 §3.3: a malformed scope is invalid_scope", "read "],
  ])("%s", (_name, scope) => {
    expect(() => resolveRefreshScope(scope, granted)).toThrow(invalidScope);
  });

  it("RFC 6749 §6: an omitted scope returns a copy of the grant, not the grant's own array", () => {
    const resolved = resolveRefreshScope("", granted);
    resolved.push("admin");
    expect(granted).toEqual(["read", "write"]);
  });

  it("RFC 6749 §6: any subset of the grant is accepted and any superset is invalid_scope", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(scopeTokenArb, { minLength: 1, maxLength: 6 }),
        fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        scopeTokenArb,
        (grant, keep, extra) => {
          const subset = grant.filter((_, i) => keep[i]);
          const expected = subset.length === 0 ? grant : subset;
          expect(resolveRefreshScope(formatScope(subset), grant)).toEqual(expected);
          fc.pre(!grant.includes(extra));
          expect(() => resolveRefreshScope(formatScope([...subset, extra]), grant)).toThrow(invalidScope);
        },
      ),
    );
  });
});
