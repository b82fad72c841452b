import { Code } from "@connectrpc/connect";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  ISSUER,
  SECRETS,
  SPA_REDIRECT,
  WEB_REDIRECT,
  basic,
  failureOf,
  obtainCode,
  pkcePair,
  startTestAuthz,
  type TestAuthz,
} from "../support/authz.js";

let t: TestAuthz;
beforeAll(async () => {
  t = await startTestAuthz({ redisUrl: inject("redisUrl") });
});
afterAll(() => t.close());

const web = () => basic("web", SECRETS.web);
const asResourceServer = () => basic("resource-server", SECRETS.resourceServer);

async function webCode(scope = "read write") {
  const pkce = pkcePair();
  const { code } = await obtainCode(t, { clientId: "web", redirectUri: WEB_REDIRECT, scope, codeChallenge: pkce.challenge });
  return { code, verifier: pkce.verifier };
}

describe("ExchangeCode: RFC 6749 §4.1.3, RFC 7636 §4.6", () => {
  it("returns an RFC 9068 access token, a refresh token, expires_in and scope (RFC 6749 §5.1)", async () => {
    const { code, verifier } = await webCode();
    const { token } = await t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier }, web());
    expect(token!.tokenType).toBe("Bearer");
    expect(token!.expiresIn).toBe(600n);
    expect(token!.scope).toBe("read write");
    expect(token!.refreshToken).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);

    const header = decodeProtectedHeader(token!.accessToken);
    expect(header).toMatchObject({ typ: "at+jwt", alg: "ES256", kid: "test-1" });
    const { jwksJson } = await t.authz.getJwks({});
    const { payload } = await jwtVerify(token!.accessToken, createLocalJWKSet(JSON.parse(jwksJson)), {
      issuer: ISSUER,
      audience: ISSUER,
      typ: "at+jwt",
    });
    expect(payload).toMatchObject({ sub: "user-alice", client_id: "web", scope: "read write", auth_time: 1_700_000_000 });
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(typeof payload.jti).toBe("string");
  });

  it("authenticates with client_secret_post as well as Basic", async () => {
    const { code, verifier } = await webCode();
    const { token } = await t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier, clientId: "web", clientSecret: SECRETS.web });
    expect(token!.accessToken).not.toBe("");
  });

  it("a public client sends only client_id and must pass PKCE", async () => {
    const pkce = pkcePair();
    const { code } = await obtainCode(t, { clientId: "spa", scope: "read", codeChallenge: pkce.challenge });
    const { token } = await t.authz.exchangeCode({ code, codeVerifier: pkce.verifier, clientId: "spa" });
    expect(token!.scope).toBe("read");
  });

  describe("client authentication failures are invalid_client (RFC 6749 §5.2), Unauthenticated", () => {
    it.each([
      ["wrong secret by Basic", () => basic("web", "wrong"), {}],
      ["wrong secret in the body", () => ({}), { clientId: "web", clientSecret: "wrong" }],
      ["unknown client", () => basic("nobody", "x"), {}],
      ["no client at all", () => ({}), {}],
      ["confidential client without its secret", () => ({}), { clientId: "web" }],
      ["public client presenting a secret", () => ({}), { clientId: "spa", clientSecret: "anything" }],
    ])("%s", async (_name, options, fields) => {
      const { code, verifier } = await webCode();
      const failure = await failureOf(t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier, ...fields }, options()));
      expect(failure.code).toBe(Code.Unauthenticated);
      expect(failure.oauth?.error).toBe("invalid_client");
    });

    it("two authentication methods at once are invalid_request (RFC 6749 §2.3)", async () => {
      const { code, verifier } = await webCode();
      const failure = await failureOf(
        t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier, clientSecret: SECRETS.web }, web()),
      );
      expect(failure.oauth?.error).toBe("invalid_request");
    });
  });

  describe("code problems are invalid_grant (RFC 6749 §5.2)", () => {
    it("a wrong code_verifier (RFC 7636 §4.6)", async () => {
      const { code } = await webCode();
      const failure = await failureOf(t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier }, web()));
      expect(failure.oauth?.error).toBe("invalid_grant");
    });

    it("a missing code_verifier", async () => {
      const { code } = await webCode();
      const failure = await failureOf(t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT }, web()));
      expect(failure.oauth?.error).toBe("invalid_grant");
    });

    it("a mismatched redirect_uri", async () => {
      const { code, verifier } = await webCode();
      const failure = await failureOf(
        t.authz.exchangeCode({ code, redirectUri: "https://web.test/other?keep=1", codeVerifier: verifier }, web()),
      );
      expect(failure.oauth?.error).toBe("invalid_grant");
    });

    it("an omitted redirect_uri when the authorization request had one (RFC 6749 §4.1.3)", async () => {
      const { code, verifier } = await webCode();
      const failure = await failureOf(t.authz.exchangeCode({ code, codeVerifier: verifier }, web()));
      expect(failure.oauth?.error).toBe("invalid_grant");
    });

    it("a code issued to another client", async () => {
      const pkce = pkcePair();
      const { code } = await obtainCode(t, { clientId: "spa", scope: "read", codeChallenge: pkce.challenge });
      const failure = await failureOf(t.authz.exchangeCode({ code, redirectUri: SPA_REDIRECT, codeVerifier: pkce.verifier }, web()));
      expect(failure.oauth?.error).toBe("invalid_grant");
    });

    it("an unknown code", async () => {
      const failure = await failureOf(t.authz.exchangeCode({ code: "n".repeat(43), redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier }, web()));
      expect(failure.oauth?.error).toBe("invalid_grant");
    });

    it("a code_verifier for a code issued without a challenge: PKCE downgrade (RFC 9700 §2.1.1)", async () => {
      const { code } = await obtainCode(t, { clientId: "legacy", scope: "read" });
      const failure = await failureOf(
        t.authz.exchangeCode({ code, codeVerifier: pkcePair().verifier }, basic("legacy", SECRETS.legacy)),
      );
      expect(failure.oauth?.error).toBe("invalid_grant");
    });

    it("a code that failed a check is spent: the right verifier afterwards fails too", async () => {
      const { code, verifier } = await webCode();
      await failureOf(t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier }, web()));
      const failure = await failureOf(t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier }, web()));
      expect(failure.oauth?.error).toBe("invalid_grant");
    });
  });

  it("a missing code is invalid_request", async () => {
    const failure = await failureOf(t.authz.exchangeCode({ redirectUri: WEB_REDIRECT }, web()));
    expect(failure.oauth?.error).toBe("invalid_request");
  });

  it("a client without the refresh_token grant gets no refresh token", async () => {
    const pkce = pkcePair();
    const { code } = await obtainCode(t, { clientId: "legacy", scope: "read", codeChallenge: pkce.challenge });
    const { token } = await t.authz.exchangeCode({ code, codeVerifier: pkce.verifier }, basic("legacy", SECRETS.legacy));
    expect(token!.refreshToken).toBe("");
  });

  it("RFC 6749 §4.1.2: a replayed code fails invalid_grant and revokes the tokens issued from it", async () => {
    const { code, verifier } = await webCode();
    const { token } = await t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier }, web());
    expect((await t.authz.introspect({ token: token!.accessToken }, asResourceServer())).active).toBe(true);

    const replay = await failureOf(t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier }, web()));
    expect(replay.oauth?.error).toBe("invalid_grant");

    expect((await t.authz.introspect({ token: token!.accessToken }, asResourceServer())).active).toBe(false);
    expect((await t.authz.introspect({ token: token!.refreshToken }, asResourceServer())).active).toBe(false);
    const refresh = await failureOf(t.authz.refresh({ refreshToken: token!.refreshToken }, web()));
    expect(refresh.oauth?.error).toBe("invalid_grant");
  });

  it("of 50 concurrent redemptions of one code exactly one succeeds", async () => {
    const { code, verifier } = await webCode();
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier }, web())),
    );
    const winners = results.filter((r) => r.status === "fulfilled");
    expect(winners).toHaveLength(1);
    for (const loser of results.filter((r) => r.status === "rejected")) {
      expect((await failureOf(Promise.reject((loser as PromiseRejectedResult).reason))).oauth?.error).toBe("invalid_grant");
    }
    // The losers were replays: the winner's tokens are revoked too (RFC 6749 §4.1.2).
    const winner = (winners[0] as PromiseFulfilledResult<{ token?: { accessToken: string } }>).value;
    expect((await t.authz.introspect({ token: winner.token!.accessToken }, asResourceServer())).active).toBe(false);
  });
});
