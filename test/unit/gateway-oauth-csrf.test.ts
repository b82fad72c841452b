import { describe, expect, it } from "vitest";
import { createCsrf } from "../../gateway/csrf.js";

describe("CSRF tokens (HMAC keyed by HKDF from the service credential)", () => {
  const csrf = createCsrf("service-credential-one");

  it("a token verifies for its purpose and binding", () => {
    expect(csrf.verify(csrf.token("consent", "session", "request"), "consent", "session", "request")).toBe(true);
  });

  it("every replica with the same credential agrees; another credential does not", () => {
    const token = csrf.token("logout", "session");
    expect(createCsrf("service-credential-one").verify(token, "logout", "session")).toBe(true);
    expect(createCsrf("service-credential-two").verify(token, "logout", "session")).toBe(false);
  });

  it.each([
    ["another purpose", ["login", "session", "request"]],
    ["another session", ["consent", "other-session", "request"]],
    ["another request", ["consent", "session", "other-request"]],
    ["a shifted boundary", ["consent", "sessionr", "equest"]],
    ["a missing part", ["consent", "session"]],
  ] as const)("does not verify with %s", (_name, [purpose, ...binding]) => {
    expect(csrf.verify(csrf.token("consent", "session", "request"), purpose, ...binding)).toBe(false);
  });

  it.each([[undefined], [""], ["short"], ["A".repeat(43)], ["!".repeat(43)], ["A".repeat(44)]])("refuses %j", (presented) => {
    expect(csrf.verify(presented, "consent", "session", "request")).toBe(false);
  });
});
