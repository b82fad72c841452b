import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import {
  ISSUER,
  SPA_REDIRECT,
  WEB_REDIRECT,
  failureOf,
  pkcePair,
  startTestAuthz,
  type TestAuthz,
} from "../support/authz.js";

let t: TestAuthz;
beforeAll(async () => {
  t = await startTestAuthz({ redisUrl: inject("redisUrl") });
});
afterAll(() => t.close());

const { challenge } = pkcePair();
const request = (overrides: Record<string, string> = {}) => ({
  responseType: "code",
  clientId: "web",
  redirectUri: WEB_REDIRECT,
  scope: "read",
  state: "xyz",
  codeChallenge: challenge,
  codeChallengeMethod: "S256",
  ...overrides,
});

describe("Authorize: RFC 6749 §4.1.1 and RFC 7636 §4.3", () => {
  it("parks a valid request and returns what the consent page shows", async () => {
    const pending = await t.authz.authorize(request({ scope: "read write" }), t.asGateway);
    expect(pending.requestId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(pending.clientId).toBe("web");
    expect(pending.clientName).toBe("Web App");
    expect(pending.scopes.map((s) => [s.name, s.description])).toEqual([
      ["read", "Read your things"],
      ["write", "Change your things"],
    ]);
    expect(pending.redirectUri).toBe(WEB_REDIRECT);
    expect(pending.firstParty).toBe(false);
    expect(pending.consentRemembered).toBe(false);
    expect(pending.expiresIn).toBe(600n);
  });

  it("only the gateway may call it: a caller without the service credential is Unauthenticated", async () => {
    const failure = await failureOf(t.authz.authorize(request()));
    expect(failure.code).toBe(Code.Unauthenticated);
    const wrong = await failureOf(t.authz.authorize(request(), { headers: { "gatehouse-service-credential": "guess" } }));
    expect(wrong.code).toBe(Code.Unauthenticated);
  });

  it("defaults the redirect URI when exactly one is registered (RFC 6749 §3.1.2.3)", async () => {
    const pending = await t.authz.authorize(request({ clientId: "spa", redirectUri: "" }), t.asGateway);
    expect(pending.redirectUri).toBe(SPA_REDIRECT);
  });

  it("takes the client's default scopes when scope is omitted (RFC 6749 §3.3)", async () => {
    const pending = await t.authz.authorize(request({ scope: "" }), t.asGateway);
    expect(pending.scopes.map((s) => s.name)).toEqual(["read"]);
  });

  describe("errors that must never redirect (RFC 6749 §4.1.2.1, open redirector)", () => {
    it.each([
      ["missing client_id", { clientId: "" }],
      ["unknown client", { clientId: "nobody" }],
      ["unregistered redirect_uri", { redirectUri: "https://evil.test/callback" }],
      ["redirect_uri differing by a trailing slash", { redirectUri: `${WEB_REDIRECT}/` }],
      ["redirect_uri differing in case", { redirectUri: WEB_REDIRECT.toUpperCase() }],
      ["redirect_uri with an extra query", { redirectUri: `${WEB_REDIRECT}?next=https://evil.test` }],
      ["redirect_uri omitted with several registered", { redirectUri: "" }],
    ])("%s: invalid_request, no redirect URL", async (_name, overrides) => {
      const failure = await failureOf(t.authz.authorize(request(overrides), t.asGateway));
      expect(failure.code).toBe(Code.InvalidArgument);
      expect(failure.oauth?.error).toBe("invalid_request");
      expect(failure.oauth?.redirectUrl).toBe("");
    });
  });

  describe("errors redirected to the client with state and iss (RFC 6749 §4.1.2.1, RFC 9207)", () => {
    it.each([
      ["missing response_type", { responseType: "" }, "invalid_request"],
      ["unknown response_type", { responseType: "id_token" }, "unsupported_response_type"],
      ["response_type the client may not use (answered in the fragment, RFC 6749 §4.2.2.1)", { responseType: "token" }, "unauthorized_client"],
      ["unknown scope (seed 002: scopes must exist)", { scope: "read nonexistent" }, "invalid_scope"],
      ["scope not allowed for the client", { scope: "admin" }, "invalid_scope"],
      ["malformed scope", { scope: "read  write" }, "invalid_scope"],
      ["missing code_challenge", { codeChallenge: "", codeChallengeMethod: "" }, "invalid_request"],
      ["plain for a client that did not opt in", { codeChallengeMethod: "plain", codeChallenge: "a".repeat(43) }, "invalid_request"],
      ["method defaulting to plain", { codeChallengeMethod: "" }, "invalid_request"],
      ["unknown method", { codeChallengeMethod: "S512" }, "invalid_request"],
      ["S256 challenge of the wrong length", { codeChallenge: "abc" }, "invalid_request"],
      ["S256 challenge with characters outside base64url", { codeChallenge: `${"a".repeat(42)}=` }, "invalid_request"],
      ["method without challenge", { codeChallenge: "" }, "invalid_request"],
    ])("%s: %s", async (_name, overrides, error) => {
      const failure = await failureOf(t.authz.authorize(request(overrides), t.asGateway));
      expect(failure.oauth?.error).toBe(error);
      const redirect = new URL(failure.oauth!.redirectUrl);
      expect(`${redirect.origin}${redirect.pathname}`).toBe(WEB_REDIRECT);
      const params = (overrides as { responseType?: string }).responseType === "token" ? new URLSearchParams(redirect.hash.slice(1)) : redirect.searchParams;
      expect(params.get("error")).toBe(error);
      expect(params.get("state")).toBe("xyz");
      expect(params.get("iss")).toBe(ISSUER);
      expect(params.get("error_description")).not.toBe("");
    });

    it("keeps the registered redirect URI's own query (RFC 6749 §3.1.2)", async () => {
      const failure = await failureOf(
        t.authz.authorize(request({ redirectUri: "https://web.test/other?keep=1", scope: "admin" }), t.asGateway),
      );
      const redirect = new URL(failure.oauth!.redirectUrl);
      expect(redirect.searchParams.get("keep")).toBe("1");
      expect(redirect.searchParams.get("error")).toBe("invalid_scope");
    });
  });

  it("requires S256 for public clients (RFC 9700 §2.1.1)", async () => {
    const failure = await failureOf(
      t.authz.authorize(request({ clientId: "spa", redirectUri: SPA_REDIRECT, codeChallenge: "", codeChallengeMethod: "" }), t.asGateway),
    );
    expect(failure.oauth?.error).toBe("invalid_request");
    expect(new URL(failure.oauth!.redirectUrl).searchParams.get("error_description")).toContain("code_challenge");
  });

  it("lets a client that opted in use plain, or skip PKCE", async () => {
    const plain = await t.authz.authorize(
      request({ clientId: "legacy", redirectUri: "", codeChallenge: "p".repeat(43), codeChallengeMethod: "plain" }),
      t.asGateway,
    );
    expect(plain.requestId).not.toBe("");
    const none = await t.authz.authorize(request({ clientId: "legacy", redirectUri: "", codeChallenge: "", codeChallengeMethod: "" }), t.asGateway);
    expect(none.firstParty).toBe(true);
  });
});

describe("Decide: RFC 6749 §4.1.2", () => {
  it("approval redirects with a code, state and iss (RFC 9207)", async () => {
    const pending = await t.authz.authorize(request(), t.asGateway);
    const { redirectUrl } = await t.authz.decide(
      { requestId: pending.requestId, subject: "user-alice", authTime: 1_700_000_000n, approved: true },
      t.asGateway,
    );
    const redirect = new URL(redirectUrl);
    expect(`${redirect.origin}${redirect.pathname}`).toBe(WEB_REDIRECT);
    expect(redirect.searchParams.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits
    expect(redirect.searchParams.get("state")).toBe("xyz");
    expect(redirect.searchParams.get("iss")).toBe(ISSUER);
  });

  it("denial redirects with access_denied", async () => {
    const pending = await t.authz.authorize(request(), t.asGateway);
    const { redirectUrl } = await t.authz.decide(
      { requestId: pending.requestId, subject: "user-alice", authTime: 1n, approved: false },
      t.asGateway,
    );
    const redirect = new URL(redirectUrl);
    expect(redirect.searchParams.get("error")).toBe("access_denied");
    expect(redirect.searchParams.get("state")).toBe("xyz");
    expect(redirect.searchParams.get("iss")).toBe(ISSUER);
    expect(redirect.searchParams.has("code")).toBe(false);
  });

  it("a parked request is decided once: the second decision fails without a redirect", async () => {
    const pending = await t.authz.authorize(request(), t.asGateway);
    const decision = { requestId: pending.requestId, subject: "user-alice", authTime: 1n, approved: true };
    const results = await Promise.allSettled([t.authz.decide(decision, t.asGateway), t.authz.decide(decision, t.asGateway)]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const failure = await failureOf(t.authz.decide(decision, t.asGateway));
    expect(failure.oauth?.error).toBe("invalid_request");
    expect(failure.oauth?.redirectUrl).toBe("");
  });

  it("an unknown request id fails without a redirect", async () => {
    const failure = await failureOf(
      t.authz.decide({ requestId: "x".repeat(43), subject: "user-alice", authTime: 1n, approved: true }, t.asGateway),
    );
    expect(failure.oauth?.error).toBe("invalid_request");
  });

  it("only the gateway may call it", async () => {
    const pending = await t.authz.authorize(request(), t.asGateway);
    const failure = await failureOf(t.authz.decide({ requestId: pending.requestId, subject: "mallory", authTime: 1n, approved: true }));
    expect(failure.code).toBe(Code.Unauthenticated);
  });

  it("remembered consent is reported on the next request for the same scopes, and not for more", async () => {
    const pending = await t.authz.authorize(request({ subject: "user-remember" }), t.asGateway);
    expect(pending.consentRemembered).toBe(false);
    await t.authz.decide(
      { requestId: pending.requestId, subject: "user-remember", authTime: 1n, approved: true, rememberConsent: true },
      t.asGateway,
    );
    const again = await t.authz.authorize(request({ subject: "user-remember" }), t.asGateway);
    expect(again.consentRemembered).toBe(true);
    const wider = await t.authz.authorize(request({ subject: "user-remember", scope: "read write" }), t.asGateway);
    expect(wider.consentRemembered).toBe(false);
    const someoneElse = await t.authz.authorize(request({ subject: "user-other" }), t.asGateway);
    expect(someoneElse.consentRemembered).toBe(false);
  });

  it("the implicit grant, for a client that opted in, returns the token in the fragment and no refresh token (RFC 6749 §4.2.2)", async () => {
    const pending = await t.authz.authorize(
      request({ clientId: "legacy", responseType: "token", redirectUri: "", codeChallenge: "", codeChallengeMethod: "" }),
      t.asGateway,
    );
    const { redirectUrl } = await t.authz.decide(
      { requestId: pending.requestId, subject: "user-alice", authTime: 1n, approved: true },
      t.asGateway,
    );
    const url = new URL(redirectUrl);
    expect(url.search).toBe("");
    const fragment = new URLSearchParams(url.hash.slice(1));
    expect(fragment.get("access_token")).toMatch(/^ey/);
    expect(fragment.get("token_type")).toBe("Bearer");
    expect(fragment.get("expires_in")).toBe("600");
    expect(fragment.get("state")).toBe("xyz");
    expect(fragment.has("refresh_token")).toBe(false);
  });
});
