import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { authorizeGroups } from "../../gateway/guard/authorize.js";
import { createIntrospectionCache, type Principal } from "../../gateway/guard/introspection-cache.js";
import type { ScopeDefinition, User } from "../../services/authz/oauth/model.js";
import { effectiveRights, groupChange, mayHoldScope, scopesBeyondRights } from "../../services/authz/oauth/user-rights.js";
import { isGroupName } from "../../startup/group-name.js";
import { DEFAULT_TENANT } from "../../startup/tenant-name.js";

/** Issue 12: the pure rules of the resource owner's rights, on both sides of the contract. */

const user = (over: Partial<User> = {}): User => ({ username: "alice", subject: "user-alice", passwordHash: "x", groups: ["staff"], disabled: false, ...over });
const scope = (name: string, groups?: string[]): ScopeDefinition => ({ name, description: name, ...(groups === undefined ? {} : { groups }) });

describe("effectiveRights: the directory's entry with the store's state over it", () => {
  it.each([
    ["no state: the entry as it is", user(), undefined, { disabled: false, groups: ["staff"] }],
    ["blocked at run time", user(), { disabled: true }, { disabled: true, groups: ["staff"] }],
    ["the configuration disables, the state does not: disabled (the file wins for what it declares)", user({ disabled: true }), { disabled: false }, { disabled: true, groups: ["staff"] }],
    ["groups overridden", user(), { disabled: false, groups: ["ops"] }, { disabled: false, groups: ["ops"] }],
    ["groups overridden to none", user(), { disabled: false, groups: [] }, { disabled: false, groups: [] }],
  ] as const)("%s", (_name, entry, state, expected) => {
    expect(effectiveRights(entry, state)).toEqual(expected);
  });
});

describe("mayHoldScope / scopesBeyondRights: a scope limited to groups needs any one of them", () => {
  const definitions = new Map([
    ["read", scope("read")],
    ["admin", scope("admin", ["admins", "ops"])],
    ["audit", scope("audit", ["auditors"])],
  ]);
  it.each([
    ["an open scope, no groups", "read", [], true],
    ["a limited scope, one of its groups", "admin", ["ops"], true],
    ["a limited scope, another group", "admin", ["staff"], false],
    ["a limited scope, no groups", "audit", [], false],
    ["an unknown scope restricts nothing here", "nope", [], true],
  ] as const)("%s", (_name, name, groups, expected) => {
    expect(mayHoldScope(definitions.get(name), groups)).toBe(expected);
  });
  it("lists what is beyond the rights, in the request's order", () => {
    expect(scopesBeyondRights(["audit", "read", "admin"], definitions, ["staff"])).toEqual(["audit", "admin"]);
    expect(scopesBeyondRights(["audit", "read", "admin"], definitions, ["auditors", "admins"])).toEqual([]);
  });
  it("gaining a group never takes a scope away (monotone)", () => {
    fc.assert(
      fc.property(fc.subarray(["admins", "ops", "auditors", "staff"]), fc.constantFrom("admins", "ops", "auditors", "staff"), (groups, gained) => {
        const before = scopesBeyondRights(["read", "admin", "audit"], definitions, groups);
        const after = scopesBeyondRights(["read", "admin", "audit"], definitions, [...groups, gained]);
        return after.every((s) => before.includes(s));
      }),
    );
  });
});

describe("groupChange", () => {
  it.each([
    [["a", "b"], ["b", "c"], { lost: ["a"], gained: ["c"] }],
    [["a"], ["a"], { lost: [], gained: [] }],
    [[], ["a"], { lost: [], gained: ["a"] }],
  ])("%j → %j", (before, after, expected) => {
    expect(groupChange(before, after)).toEqual(expected);
  });
});

describe("authorizeGroups: the route's groups against the resource owner's current ones", () => {
  it.each([
    ["no groups required", {}, [], true],
    ["an empty list requires none", { groups: [] }, [], true],
    ["any (default): one suffices", { groups: ["ops", "staff"] }, ["staff"], true],
    ["any: none held", { groups: ["ops", "staff"] }, ["dev"], false],
    ["all: every one held", { groups: ["ops", "staff"], groupMode: "all" as const }, ["staff", "ops", "dev"], true],
    ["all: one missing", { groups: ["ops", "staff"], groupMode: "all" as const }, ["staff"], false],
    ["names are compared exactly", { groups: ["staff"] }, ["Staff", "staff "], false],
  ])("%s", (_name, rule, held, expected) => {
    expect(authorizeGroups(rule, new Set(held))).toBe(expected);
  });
  it("all implies any; any with one group equals all with it", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.constantFrom("a", "b", "c", "d"), { minLength: 1 }), fc.subarray(["a", "b", "c", "d"]), (groups, held) => {
        const set = new Set(held);
        if (authorizeGroups({ groups, groupMode: "all" }, set)) expect(authorizeGroups({ groups, groupMode: "any" }, set)).toBe(true);
        if (groups.length === 1) expect(authorizeGroups({ groups, groupMode: "all" }, set)).toBe(authorizeGroups({ groups }, set));
      }),
    );
  });
});

describe("isGroupName: slugs only", () => {
  it.each([
    ["staff", true],
    ["team-42", true],
    ["Staff", false],
    ["a--b", false],
    ["-a", false],
    ["a b", false],
    ["", false],
    ["x".repeat(64), false],
  ])("%j → %s", (name, expected) => {
    expect(isGroupName(name)).toBe(expected);
  });
});

describe("the introspection cache evicts a resource owner's entries, in one tenant only", () => {
  const principal = (over: Partial<Principal>): Principal => ({
    active: true,
    subject: "user-alice",
    clientId: "web",
    scope: "read",
    scopes: new Set(["read"]),
    expiresAt: 1_000_000,
    jti: "j",
    grantId: "g",
    audience: [],
    headerValues: { subject: "user-alice", client: "web", scope: "read" },
    ...over,
  });
  it("every token of the subject goes, other subjects and the same subject of another tenant stay", () => {
    const cache = createIntrospectionCache({ ttlMs: 60_000, maxEntries: 100 });
    cache.set("t1", principal({ jti: "j1", grantId: "g1" }), 0);
    cache.set("t2", principal({ jti: "j2", grantId: "g2", tenant: DEFAULT_TENANT }), 0);
    cache.set("t3", principal({ jti: "j3", grantId: "g3", subject: "user-bob" }), 0);
    cache.set("t4", principal({ jti: "j4", grantId: "g4", tenant: "acme" }), 0);
    expect(cache.evictSubject(DEFAULT_TENANT, "user-alice")).toBe(2);
    expect(cache.get("t1", 1)).toBeUndefined();
    expect(cache.get("t2", 1)).toBeUndefined();
    expect(cache.get("t3", 1)).toBeDefined();
    expect(cache.get("t4", 1)).toBeDefined();
    expect(cache.evictSubject("acme", "user-alice")).toBe(1);
    expect(cache.evictSubject("acme", "user-alice")).toBe(0);
    // An entry evicted by its grant leaves no stale index behind.
    cache.set("t5", principal({ jti: "j5", grantId: "g5" }), 0);
    expect(cache.evictGrant("g5")).toBe(1);
    expect(cache.evictSubject(DEFAULT_TENANT, "user-alice")).toBe(0);
    expect(cache.size).toBe(1);
  });
});
