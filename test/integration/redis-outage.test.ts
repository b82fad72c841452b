import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECRETS, basic, failureOf, issueTokens, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { startRedisServer, type RedisServer } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";

let redis: RedisServer;
let t: TestAuthz;
beforeAll(async () => {
  // A Redis of this test's own, to stop and start.
  redis = await startRedisServer();
  t = await startTestAuthz({ redisUrl: redis.url });
});
afterAll(async () => {
  await t.close();
  await redis.stop();
});

const asResourceServer = () => basic("resource-server", SECRETS.resourceServer);

describe("Redis unreachable", () => {
  it("every stateful RPC answers Unavailable promptly, never a pass, and recovers by itself when Redis returns", async () => {
    const tokens = await issueTokens(t);
    const stream = t.authz.watchRevocations({}, t.asGateway)[Symbol.asyncIterator]();
    expect((await stream.next()).value?.event.case).toBe("subscribed");

    await redis.stop();

    // The revocation stream ends: its subscribers can no longer trust their caches.
    const ended = await Promise.race([
      (async () => {
        for (;;) {
          const next = await stream.next();
          if (next.done) return "done";
        }
      })().catch((error: unknown) => error),
      // A budget, not a wait: the race ends as soon as the stream does.
      new Promise((resolve) => setTimeout(() => resolve("still open"), scaledBudget(5_000))),
    ]);
    expect(ended).not.toBe("still open");

    const calls = {
      introspect: () => t.authz.introspect({ token: tokens.accessToken }, asResourceServer()),
      refresh: () => t.authz.refresh({ refreshToken: tokens.refreshToken }, basic("web", SECRETS.web)),
      exchangeCode: () => t.authz.exchangeCode({ code: "c".repeat(43), codeVerifier: "v".repeat(43) }, basic("web", SECRETS.web)),
      authorize: () =>
        t.authz.authorize(
          { responseType: "code", clientId: "spa", scope: "read", codeChallenge: "c".repeat(43), codeChallengeMethod: "S256" },
          t.asGateway,
        ),
      login: () => t.sessions.login({ username: "alice", password: "correct horse" }, t.asGateway),
    };
    for (const [name, call] of Object.entries(calls)) {
      const started = performance.now();
      const failure = await failureOf(call());
      const elapsed = performance.now() - started;
      expect(failure.code, name).toBe(Code.Unavailable);
      expect(failure.oauth?.error, name).toBe("temporarily_unavailable");
      // Without the offline queue a call fails at once, or at the command timeout (2 s) at
      // worst; the bound (3 s quiet, scaled) tells that from a call that waits for Redis to return.
      expect(elapsed, `${name} took ${elapsed} ms`).toBeLessThan(scaledBudget(3_000));
    }

    await redis.start();
    // The access token is a signed JWT that was never revoked: once its revocation state can be
    // read again, it is active again. A fresh flow works end to end.
    await expect
      .poll(async () => (await t.authz.introspect({ token: tokens.accessToken }, asResourceServer()).catch(() => undefined))?.active, {
        timeout: scaledBudget(10_000),
        interval: 200,
      })
      .toBe(true);
    const fresh = await issueTokens(t);
    expect((await t.authz.introspect({ token: fresh.accessToken }, asResourceServer())).active).toBe(true);
  });
});
