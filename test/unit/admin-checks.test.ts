import { describe, expect, it } from "vitest";
import { AdminError } from "../../services/authz/admin/admin-error.js";
import { decodePageToken, encodePageToken, pageSizeOf } from "../../services/authz/admin/page-token.js";
import { checkClientId, checkGroup, checkPassword, checkRedirectUri, checkScopeToken, checkSubject, checkUsername } from "../../services/authz/admin/validate.js";

describe("the admin API's field checks (issue 12, Bad input)", () => {
  it.each<[string, string | undefined]>([
    ["web-app_1.v2~x", undefined],
    ["", "must be 1-128 of A-Z a-z 0-9 . _ ~ -"],
    ["a b", "must be 1-128 of A-Z a-z 0-9 . _ ~ -"],
    ["x".repeat(129), "must be 1-128 of A-Z a-z 0-9 . _ ~ -"],
  ])("client id %j", (id, problem) => expect(checkClientId(id)).toBe(problem));

  it.each<[string, boolean, string | undefined]>([
    ["https://app.example/cb?x=1", true, undefined],
    ["http://127.0.0.1:8080/cb", true, undefined],
    ["http://app.example/cb", false, undefined],
    ["com.example.app:/cb", true, undefined],
    ["http://app.example/cb", true, "must use https (requireHttps is on); http is allowed only for loopback hosts (RFC 8252 §7.3)"],
    ["/cb", true, "must be an absolute URI (RFC 6749 §3.1.2)"],
    ["https://app.example/cb#x", true, "must not include a fragment (RFC 6749 §3.1.2)"],
    ["javascript:alert(1)", false, "the javascript: scheme cannot be a redirect URI"],
  ])("redirect URI %j (requireHttps %s)", (uri, requireHttps, problem) => expect(checkRedirectUri(uri, requireHttps)).toBe(problem));

  it.each<[string, boolean]>([
    ["notes:read", true],
    ["openid", true],
    ["has space", false],
    ['quote"', false],
    ["back\\slash", false],
    ["", false],
  ])("scope-token %j is valid: %s (RFC 6749 §3.3)", (scope, valid) => expect(checkScopeToken(scope) === undefined).toBe(valid));

  it.each<[string, boolean]>([
    ["staff", true],
    ["on-call-2", true],
    ["Staff", false],
    ["a--b", false],
    ["-a", false],
    ["a_b", false],
    ["x".repeat(64), false],
  ])("group %j is a slug: %s", (group, valid) => expect(checkGroup(group) === undefined).toBe(valid));

  it("usernames, subjects and passwords", () => {
    expect(checkUsername("carol@example.com")).toBeUndefined();
    expect(checkUsername("car ol")).toBeDefined();
    expect(checkUsername("a/b")).toBeDefined();
    expect(checkSubject("user-123")).toBeUndefined();
    expect(checkSubject("ü")).toBeDefined();
    expect(checkPassword("eleven char")).toBe("must be at least 12 characters");
    expect(checkPassword("twelve chars")).toBeUndefined();
  });
});

describe("page tokens (AIP-158)", () => {
  const refused = (call: () => unknown) => {
    try {
      call();
    } catch (error) {
      expect(error).toBeInstanceOf(AdminError);
      return (error as AdminError).violations;
    }
    throw new Error("expected a refusal");
  };

  it("round-trips where a list resumes, for the same list, tenant and filter only", () => {
    const token = encodePageToken("clients", "acme", "", "web");
    expect(decodePageToken(token, "clients", "acme", "")).toBe("web");
    expect(decodePageToken("", "clients", "acme", "")).toBeUndefined();
    expect(refused(() => decodePageToken(token, "scopes", "acme", ""))).toEqual([{ field: "page_token", description: expect.stringContaining("another list") }]);
    expect(refused(() => decodePageToken(token, "clients", "globex", ""))).toEqual([{ field: "page_token", description: expect.stringContaining("another list") }]);
    expect(refused(() => decodePageToken(encodePageToken("auditEvents", "acme", "users/a", "1-0"), "auditEvents", "acme", "users/b"))).toEqual([
      { field: "page_token", description: expect.stringContaining("the filter changed") },
    ]);
    for (const garbage of ["%%%", Buffer.from("[]").toString("base64url"), Buffer.from('{"v":2,"a":"x","l":"clients"}').toString("base64url")]) {
      expect(refused(() => decodePageToken(garbage, "clients", "acme", ""))).toEqual([{ field: "page_token", description: expect.stringContaining("not a page token") }]);
    }
  });

  it.each<[number, number]>([
    [0, 50],
    [1, 1],
    [1_000, 1_000],
    [1_001, 1_000],
  ])("page_size %i serves %i", (requested, size) => expect(pageSizeOf(requested)).toBe(size));

  it("a negative page_size is InvalidArgument on page_size", () => {
    expect(refused(() => pageSizeOf(-1))).toEqual([{ field: "page_size", description: "must not be negative" }]);
  });
});
