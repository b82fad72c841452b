import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestAuthz, type TestAuthz } from "../support/authz.js";
import { freePort, startRedisServer, type RedisServer } from "../support/redis-server.js";
import { bearer, eventually, startGuardStack, type GuardGateway, type GuardStack } from "./guard-fixtures.js";

/**
 * Fail closed: when a token cannot be checked (the authz service is down, or
 * its Redis is) the guard answers 503, even for a token it had cached, because
 * the revocation feed is down too and a cached answer may be stale. When they
 * come back, it recovers by itself.
 */

let redis: RedisServer;
let s: GuardStack;
let authzPort: number;
let restarted: TestAuthz | undefined;

beforeAll(async () => {
  // A Redis of this file's own, to stop and start; the authz service on a fixed port, to restart.
  redis = await startRedisServer();
  authzPort = await freePort();
  s = await startGuardStack({
    redisUrl: redis.url,
    authzPort,
    patch: (file, upstream) => {
      file.routes = [{ name: "notes", path: "/notes/**", scopes: ["read"], upstream }];
      file.gateway = { guard: { cacheTtlSeconds: 300 } };
    },
  });
  await eventually(async () => (await s.gateway.metric("gatehouse_guard_revocation_feed_up")) === 1);
});
afterAll(async () => {
  await s.gateway.close();
  await restarted?.close();
  await s.authz.close();
  await s.upstream.close();
  await redis.stop();
});

const call = (gateway: GuardGateway, token: string) => fetch(`${gateway.url}/notes/1`, { headers: bearer(token) });

async function expectUnavailable(token: string): Promise<void> {
  const response = await call(s.gateway, token);
  expect(response.status).toBe(503);
  expect(response.headers.get("retry-after")).toBe("1");
  // A 5xx does not challenge the client (RFC 6750 §3 is about the token, which may be fine).
  expect(response.headers.get("www-authenticate")).toBeNull();
}

describe("fail closed", () => {
  it("authz service stopped: 503 for cached and uncached tokens, never a pass; back to 200 once it returns", async () => {
    const cached = (await s.tokens("read")).accessToken;
    const uncached = (await s.tokens("read")).accessToken;
    expect((await call(s.gateway, cached)).status).toBe(200);
    expect((await call(s.gateway, cached)).status).toBe(200);
    const seen = s.upstream.received.length;

    await s.authz.close();
    // The stream's end is noticed at once (the connection closes); allow for a slow machine.
    await eventually(async () => (await s.gateway.metric("gatehouse_guard_revocation_feed_up")) === 0, 5_000);
    for (let i = 0; i < 5; i++) await expectUnavailable(cached);
    await expectUnavailable(uncached);
    expect(s.upstream.received.length).toBe(seen);

    restarted = await startTestAuthz({ redisUrl: redis.url, keyPrefix: s.authz.running.deps.config.keyPrefix, patch: s.patch });
    expect(restarted.running.address.port).toBe(authzPort);
    await eventually(async () => (await call(s.gateway, uncached)).status === 200, 15_000);
    await eventually(async () => (await s.gateway.metric("gatehouse_guard_revocation_feed_up")) === 1, 15_000);
    expect((await call(s.gateway, cached)).status).toBe(200);
  });

  it("Redis stopped: the revocation feed breaks, cached tokens stop passing (503); Redis back: 200 again", async () => {
    const cached = (await s.tokens("read")).accessToken;
    expect((await call(s.gateway, cached)).status).toBe(200);
    expect((await call(s.gateway, cached)).status).toBe(200);
    const seen = s.upstream.received.length;

    await redis.stop();
    await eventually(async () => (await s.gateway.metric("gatehouse_guard_revocation_feed_up")) === 0, 5_000);
    for (let i = 0; i < 3; i++) await expectUnavailable(cached);
    expect(s.upstream.received.length).toBe(seen);

    await redis.start();
    // The restarted Redis is empty: the token is a valid JWT with no revocation recorded, so it is live again.
    await eventually(async () => (await call(s.gateway, cached)).status === 200, 15_000);
    await eventually(async () => (await s.gateway.metric("gatehouse_guard_revocation_feed_up")) === 1, 15_000);
  });
});
