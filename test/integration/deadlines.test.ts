import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ISSUER, failureOf, startTestAuthz, type TestAuthz } from "../support/authz.js";

let t: TestAuthz;
beforeAll(async () => {
  t = await startTestAuthz({
    redisUrl: inject("redisUrl"),
    // A failed login is slowed down by 400 ms here: a call that can outlive its deadline.
    patch: (file) => void (file.attempts = { windowSeconds: 60, maxFailuresPerUser: 100, maxFailuresPerAddress: 100, delayPerFailureMs: 400, maxDelayMs: 400 }),
  });
});
afterAll(() => t.close());

describe("client deadlines (connect-timeout-ms)", () => {
  it("a call with a deadline it meets is answered normally", async () => {
    expect((await t.authz.getMetadata({}, { timeoutMs: 2_000 })).issuer).toBe(ISSUER);
  });

  it("the server answers deadline_exceeded when a call outlives the deadline its client sent", async () => {
    await failureOf(t.sessions.login({ username: "alice", password: "wrong", clientAddress: "10.9.0.1" }, t.asGateway));
    // A raw Connect call: no client-side timer, only the header, so the answer can only be the server's.
    const response = await fetch(`${t.running.url}/gatehouse.v1.SessionService/Login`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": "150", ...t.asGateway.headers },
      body: JSON.stringify({ username: "alice", password: "wrong", clientAddress: "10.9.0.1" }),
    });
    expect(response.status).toBe(504);
    expect(await response.json()).toMatchObject({ code: "deadline_exceeded" });
  });

  it("a malformed deadline is refused as the Connect protocol says", async () => {
    const response = await fetch(`${t.running.url}/gatehouse.v1.AuthorizationService/GetMetadata`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": "soon" },
      body: "{}",
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_argument" });
  });
});
