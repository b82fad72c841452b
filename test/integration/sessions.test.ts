import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SECRETS, WEB_REDIRECT, basic, failureOf, pkcePair, startTestAuthz, type TestAuthz } from "../support/authz.js";

let t: TestAuthz;
const slept: number[] = [];
beforeAll(async () => {
  t = await startTestAuthz({
    redisUrl: inject("redisUrl"),
    // Small limits and a visible slow-down; `sleep` records instead of waiting.
    patch: (file) => {
      file.attempts = { windowSeconds: 60, maxFailuresPerUser: 3, maxFailuresPerAddress: 6, delayPerFailureMs: 100, maxDelayMs: 250 };
    },
    overrides: { sleep: async (ms) => void slept.push(ms) },
  });
});
afterAll(() => t.close());

const login = (username: string, password: string, clientAddress: string) =>
  t.sessions.login({ username, password, clientAddress }, t.asGateway);

describe("SessionService: the login page's sessions", () => {
  it("a correct password opens a session that GetSession resolves and Logout ends", async () => {
    const session = await login("alice", "correct horse", "10.0.0.1");
    expect(session.subject).toBe("user-alice");
    expect(session.sessionToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(session.expiresIn).toBe(28_800n);
    const found = await t.sessions.getSession({ sessionToken: session.sessionToken }, t.asGateway);
    expect(found).toMatchObject({ active: true, subject: "user-alice", authTime: session.authTime });
    await t.sessions.logout({ sessionToken: session.sessionToken }, t.asGateway);
    expect((await t.sessions.getSession({ sessionToken: session.sessionToken }, t.asGateway)).active).toBe(false);
  });

  it("a wrong password and an unknown user fail alike: invalid_credentials, Unauthenticated", async () => {
    const wrong = await failureOf(login("alice", "wrong", "10.0.0.2"));
    const unknown = await failureOf(login("nobody", "wrong", "10.0.0.2"));
    for (const failure of [wrong, unknown]) {
      expect(failure.code).toBe(Code.Unauthenticated);
      expect(failure.oauth?.error).toBe("invalid_credentials");
      expect(failure.oauth?.errorDescription).toBe("the username or password is wrong");
    }
  });

  it("repeated failures for one user are slowed down, then refused with a retry time, even with the right password", async () => {
    slept.length = 0;
    for (let i = 0; i < 3; i++) await failureOf(login("alice", `guess-${i}`, `10.1.0.${i}`));
    expect(slept).toEqual([100, 200]);
    const refused = await failureOf(login("alice", "correct horse", "10.1.0.9"));
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.oauth?.error).toBe("too_many_attempts");
    expect(Number(refused.oauth?.retryAfter)).toBeGreaterThan(0);
    expect(Number(refused.metadata.get("retry-after"))).toBeGreaterThan(0);
  });

  it("repeated failures from one address are refused whatever the username", async () => {
    for (let i = 0; i < 6; i++) await failureOf(login(`user-${i}`, "x", "10.2.0.1"));
    const refused = await failureOf(login("someone-new", "x", "10.2.0.1"));
    expect(refused.oauth?.error).toBe("too_many_attempts");
  });

  it("only the gateway may call it", async () => {
    expect((await failureOf(t.sessions.login({ username: "alice", password: "correct horse" }))).code).toBe(Code.Unauthenticated);
    expect((await failureOf(t.sessions.getSession({ sessionToken: "x" }))).code).toBe(Code.Unauthenticated);
  });

  it("an unknown session is inactive, not an error", async () => {
    expect((await t.sessions.getSession({ sessionToken: "n".repeat(43) }, t.asGateway)).active).toBe(false);
    expect((await t.sessions.getSession({ sessionToken: "" }, t.asGateway)).active).toBe(false);
  });
});

describe("client authentication failures at the token endpoint are limited per address", () => {
  it("past the limit, further failures from that address answer too_many_attempts; a correct secret still works", async () => {
    const request = { code: "c".repeat(43), redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier };
    const fromAddress = (authorization: { headers: Record<string, string> }) => ({
      headers: { ...authorization.headers, ...t.asGateway.headers, "gatehouse-client-address": "10.3.0.1" },
    });
    for (let i = 0; i < 6; i++) {
      expect((await failureOf(t.authz.exchangeCode(request, fromAddress(basic("web", "wrong"))))).oauth?.error).toBe("invalid_client");
    }
    expect((await failureOf(t.authz.exchangeCode(request, fromAddress(basic("web", "wrong"))))).oauth?.error).toBe("too_many_attempts");
    // The right secret is never a guess: it is not held back (and here fails only on the made-up code).
    expect((await failureOf(t.authz.exchangeCode(request, fromAddress(basic("web", SECRETS.web))))).oauth?.error).toBe("invalid_grant");
  });

  it("the reported address is believed only from the gateway", async () => {
    const request = { code: "c".repeat(43), redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier };
    // Without the service credential the header is ignored and the peer address counts, which is not limited yet.
    const spoofed = { headers: { ...basic("web", "wrong").headers, "gatehouse-client-address": "10.3.0.1" } };
    expect((await failureOf(t.authz.exchangeCode(request, spoofed))).oauth?.error).toBe("invalid_client");
  });
});
