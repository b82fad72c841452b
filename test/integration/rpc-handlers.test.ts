import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECRETS, WEB_REDIRECT, basic, failureOf, issueTokens, obtainCode, pkcePair } from "../support/authz.js";
import { createInProcessAuthz, type InProcessAuthz } from "../support/in-process-authz.js";

// The handlers and their error mapping, in process (connect's router transport, the memory store):
// no socket, so each case takes milliseconds. The wire is the protocol suite's (rpc-protocol-suite.ts).
let t: InProcessAuthz;
beforeAll(async () => {
  t = await createInProcessAuthz();
});
afterAll(() => t.close());

describe("ExchangeCode", () => {
  it("RFC 6749 §2.3.1, §5.2: a wrong client secret is invalid_client (Unauthenticated)", async () => {
    const failure = await failureOf(t.authz.exchangeCode({ code: "x".repeat(43), redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier }, basic("web", "wrong")));
    expect(failure.code).toBe(Code.Unauthenticated);
    expect(failure.oauth?.error).toBe("invalid_client");
  });

  it("RFC 6749 §5.2: an unknown code is invalid_grant", async () => {
    const failure = await failureOf(t.authz.exchangeCode({ code: "x".repeat(43), redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier }, basic("web", SECRETS.web)));
    expect(failure.oauth?.error).toBe("invalid_grant");
  });

  it("RFC 7636 §4.6: a code_verifier that does not match the challenge is invalid_grant", async () => {
    const pkce = pkcePair();
    const { code } = await obtainCode(t, { clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: pkce.challenge });
    const failure = await failureOf(t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier }, basic("web", SECRETS.web)));
    expect(failure.oauth?.error).toBe("invalid_grant");
  });

  it("RFC 6749 §4.1.3: a code is redeemed once; the second use is invalid_grant", async () => {
    const pkce = pkcePair();
    const { code } = await obtainCode(t, { clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: pkce.challenge });
    const request = { code, redirectUri: WEB_REDIRECT, codeVerifier: pkce.verifier };
    expect((await t.authz.exchangeCode(request, basic("web", SECRETS.web))).token?.accessToken).toBeTruthy();
    expect((await failureOf(t.authz.exchangeCode(request, basic("web", SECRETS.web)))).oauth?.error).toBe("invalid_grant");
  });
});

describe("Introspect", () => {
  it("RFC 7662 §2.1: a caller that does not authenticate is invalid_client", async () => {
    const failure = await failureOf(t.authz.introspect({ token: "x" }));
    expect(failure.code).toBe(Code.Unauthenticated);
    expect(failure.oauth?.error).toBe("invalid_client");
  });

  it("RFC 7662 §2.2: an unknown token is inactive, not an error", async () => {
    expect((await t.authz.introspect({ token: "not-a-token" }, basic("resource-server", SECRETS.resourceServer))).active).toBe(false);
  });
});

describe("Revoke", () => {
  it("RFC 7009 §2.2: revoking an unknown token succeeds", async () => {
    await expect(t.authz.revoke({ token: "not-a-token" }, basic("web", SECRETS.web))).resolves.toBeDefined();
  });

  it("RFC 7009 §2.1: a caller with a wrong secret is invalid_client", async () => {
    expect((await failureOf(t.authz.revoke({ token: "x" }, basic("web", "wrong")))).oauth?.error).toBe("invalid_client");
  });

  it("RFC 7009 §2.1: a revoked access token introspects as inactive", async () => {
    const tokens = await issueTokens(t);
    const introspect = () => t.authz.introspect({ token: tokens.accessToken }, basic("resource-server", SECRETS.resourceServer));
    expect((await introspect()).active).toBe(true);
    await t.authz.revoke({ token: tokens.accessToken }, basic("web", SECRETS.web));
    expect((await introspect()).active).toBe(false);
  });
});

describe("gateway-only RPCs", () => {
  it("Authorize without the gateway's service credential is refused (unauthenticated_caller)", async () => {
    const failure = await failureOf(t.authz.authorize({ responseType: "code", clientId: "spa", scope: "read", codeChallenge: pkcePair().challenge, codeChallengeMethod: "S256" }));
    expect(failure.code).toBe(Code.Unauthenticated);
    expect(failure.oauth?.error).toBe("unauthenticated_caller");
  });
});
