import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SECRETS, WEB_REDIRECT, basic, failureOf, issueTokens, obtainCode, pkcePair, startTestAuthz, type TestAuthz } from "../support/authz.js";

/** Two authz replicas sharing one Redis and one key prefix: one deployment. */
let replicas: TestAuthz[];
beforeAll(async () => {
  const keyPrefix = `replicas-${Date.now()}:`;
  replicas = await Promise.all([0, 1].map(() => startTestAuthz({ redisUrl: inject("redisUrl"), keyPrefix })));
});
afterAll(() => Promise.all(replicas.map((r) => r.close())));

const [A, B] = [0, 1];
const web = () => basic("web", SECRETS.web);
const grace = () => basic("grace", SECRETS.grace);
/** Spreads calls over both replicas. */
const replica = (i: number) => replicas[i % 2]!;

describe("two authz replicas on one Redis", () => {
  it("a code issued through one replica is redeemed through the other, and its tokens work at both", async () => {
    const pkce = pkcePair();
    const { code } = await obtainCode(replicas[A]!, { clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: pkce.challenge });
    const { token } = await replicas[B]!.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: pkce.verifier }, web());
    expect((await replicas[A]!.authz.introspect({ token: token!.accessToken }, web())).active).toBe(true);
    const { token: next } = await replicas[A]!.authz.refresh({ refreshToken: token!.refreshToken }, web());
    expect((await replicas[B]!.authz.introspect({ token: next!.refreshToken }, web())).active).toBe(true);
  });

  it("100 concurrent redemptions of one code over both replicas: exactly one succeeds", async () => {
    const pkce = pkcePair();
    const { code } = await obtainCode(replicas[A]!, { clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: pkce.challenge });
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) => replica(i).authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: pkce.verifier }, web())),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const loser of results.filter((r) => r.status === "rejected")) {
      expect((await failureOf(Promise.reject((loser as PromiseRejectedResult).reason))).oauth?.error).toBe("invalid_grant");
    }
  });

  it("100 concurrent refreshes of one token over both replicas, no grace window: one rotation, every loser invalid_grant, family revoked (RFC 9700 §4.14.2)", async () => {
    const tokens = await issueTokens(replicas[A]!);
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => replica(i).authz.refresh({ refreshToken: tokens.refreshToken }, web())));
    const winners = results.filter((r) => r.status === "fulfilled") as Array<PromiseFulfilledResult<Awaited<ReturnType<TestAuthz["authz"]["refresh"]>>>>;
    expect(winners).toHaveLength(1);
    for (const loser of results.filter((r) => r.status === "rejected")) {
      expect((await failureOf(Promise.reject((loser as PromiseRejectedResult).reason))).oauth?.error).toBe("invalid_grant");
    }
    // The reuse revoked the family, the winner's new token included.
    expect((await replicas[B]!.authz.introspect({ token: winners[0]!.value.token!.refreshToken }, web())).active).toBe(false);
  });

  it("100 concurrent refreshes of one token over both replicas, with a grace window: one rotation, and every caller gets the same new pair", async () => {
    const tokens = await issueTokens(replicas[A]!, { clientId: "grace" });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => replica(i).authz.refresh({ refreshToken: tokens.refreshToken }, grace())));
    expect(new Set(results.map((r) => r.token!.refreshToken)).size).toBe(1);
    expect(new Set(results.map((r) => r.token!.accessToken)).size).toBe(1);
    expect((await replicas[B]!.authz.introspect({ token: results[0]!.token!.refreshToken }, grace())).active).toBe(true);
  });

  it("a revocation through one replica is announced on the other's stream", async () => {
    const stream = replicas[B]!.authz.watchRevocations({}, replicas[B]!.asGateway)[Symbol.asyncIterator]();
    expect((await stream.next()).value?.event.case).toBe("subscribed");
    const tokens = await issueTokens(replicas[A]!);
    await replicas[A]!.authz.revoke({ token: tokens.refreshToken }, web());
    const event = await stream.next();
    expect(event.value?.event.case).toBe("revocation");
    await stream.return?.();
  });
});
