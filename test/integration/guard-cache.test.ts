import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SECRETS, basic, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { waitFor } from "../support/wait-for.js";
import { bearer, eventually, offsetClock, startGuardGateway, startGuardStack, type GuardGateway, type GuardStack } from "./guard-fixtures.js";

/**
 * The introspection cache: keyed by a hash of the token, no longer than the
 * configured TTL, never past exp (checked on every hit), evicted within a
 * second at every gateway when the token or its grant is revoked, and not
 * trusted at all while the revocation feed is down.
 */

const routes = (upstream: string) => [{ name: "notes", path: "/notes/**", scopes: ["read"], upstream }];
const status = async (gateway: GuardGateway, token: string) => (await fetch(`${gateway.url}/notes/1`, { headers: bearer(token) })).status;
const counters = async (gateway: GuardGateway) => ({
  hits: await gateway.metric("gatehouse_guard_cache_hits_total"),
  absent: await gateway.metric("gatehouse_guard_cache_misses_total", { reason: "absent" }),
  untrusted: await gateway.metric("gatehouse_guard_cache_misses_total", { reason: "untrusted" }),
  disabled: await gateway.metric("gatehouse_guard_cache_misses_total", { reason: "disabled" }),
  introspections: await gateway.metric("gatehouse_guard_introspection_duration_seconds_count", { outcome: "active" }),
});

describe("lifetime of a cached introspection", () => {
  // Tokens that live 12 s; one gateway caches for 5 s, the other for 300 s (longer than any token).
  let s: GuardStack;
  let longCache: GuardGateway;
  const shortClock = offsetClock();
  const longClock = offsetClock();
  beforeAll(async () => {
    s = await startGuardStack({
      redisUrl: inject("redisUrl"),
      clock: shortClock.now,
      patch: (file, upstream) => {
        file.lifetimes = { accessToken: 12 };
        // Heartbeats every 30 s: the clock jumps below (up to ~13 s) stay inside the feed's liveness
        // window (two heartbeats), so what they test is exp and TTL, not a silent feed.
        (file.authz as Record<string, unknown>).revocationHeartbeatSeconds = 30;
        file.routes = routes(upstream);
        file.gateway = { guard: { cacheTtlSeconds: 5 } };
      },
    });
    longCache = await startGuardGateway({
      authzUrl: s.authz.running.url,
      redisUrl: s.redisUrl,
      clock: longClock.now,
      patch: (file) => {
        s.patch(file);
        file.gateway = { guard: { cacheTtlSeconds: 300 } };
      },
    });
    await eventually(async () => (await s.gateway.metric("gatehouse_guard_revocation_feed_up")) === 1);
    await eventually(async () => (await longCache.metric("gatehouse_guard_revocation_feed_up")) === 1);
  });
  afterAll(async () => {
    await longCache.close();
    await s.close();
  });

  it("a second request with the same token is served from the cache (no introspection)", async () => {
    const { accessToken } = await s.tokens("read");
    const before = await counters(s.gateway);
    expect(await status(s.gateway, accessToken)).toBe(200);
    expect(await status(s.gateway, accessToken)).toBe(200);
    const after = await counters(s.gateway);
    expect(after.introspections - before.introspections).toBe(1);
    expect(after.hits - before.hits).toBe(1);
  });

  it("an entry lives no longer than cacheTtlSeconds", async () => {
    const { accessToken } = await s.tokens("read");
    expect(await status(s.gateway, accessToken)).toBe(200);
    shortClock.advance(4_000);
    const before = await counters(s.gateway);
    expect(await status(s.gateway, accessToken)).toBe(200);
    expect((await counters(s.gateway)).hits - before.hits).toBe(1);
    shortClock.advance(1_500); // 5.5 s after it was cached
    expect(await status(s.gateway, accessToken)).toBe(200);
    const after = await counters(s.gateway);
    expect(after.absent - before.absent).toBe(1);
    expect(after.introspections - before.introspections).toBe(1);
    shortClock.reset();
  });

  it("an entry never outlives the token's exp, whatever the TTL: checked again on every hit", async () => {
    const { accessToken } = await s.tokens("read");
    const exp = decodeJwt(accessToken).exp! * 1000;
    expect(await status(longCache, accessToken)).toBe(200);
    const before = await counters(longCache);
    expect(await status(longCache, accessToken)).toBe(200);
    expect((await counters(longCache)).hits - before.hits).toBe(1);
    // The gateway's clock passes exp (the authz service's has not): the entry is not used, the token is introspected again.
    longClock.advance(exp - Date.now() + 500);
    expect(await status(longCache, accessToken)).toBe(200);
    const after = await counters(longCache);
    expect(after.hits - before.hits).toBe(1);
    expect(after.absent - before.absent).toBe(1);
    longClock.reset();
  });
});

describe("revocation", () => {
  /** How long the revocation tests' gateways would keep a cache entry (cacheTtlSeconds: 300). */
  const CACHED_FOR_MS = 300_000;
  // Two authz replicas on one Redis, a gateway on each; the cache would keep an entry for 300 s.
  let s: GuardStack;
  let replica: TestAuthz;
  let second: GuardGateway;
  let silentCache: GuardGateway;
  let noCache: GuardGateway;
  const silentClock = offsetClock();
  beforeAll(async () => {
    s = await startGuardStack({
      redisUrl: inject("redisUrl"),
      patch: (file, upstream) => {
        file.routes = routes(upstream);
        file.gateway = { guard: { cacheTtlSeconds: 300 } };
      },
    });
    replica = await startTestAuthz({ redisUrl: s.redisUrl, keyPrefix: s.authz.running.deps.config.keyPrefix, patch: s.patch });
    second = await startGuardGateway({ authzUrl: replica.running.url, redisUrl: s.redisUrl, patch: s.patch });
    silentCache = await startGuardGateway({ authzUrl: s.authz.running.url, redisUrl: s.redisUrl, patch: s.patch, clock: silentClock.now });
    noCache = await startGuardGateway({
      authzUrl: s.authz.running.url,
      redisUrl: s.redisUrl,
      patch: (file) => {
        s.patch(file);
        file.gateway = { guard: { cacheTtlSeconds: 0 } };
      },
    });
    for (const gateway of [s.gateway, second, silentCache]) {
      await eventually(async () => (await gateway.metric("gatehouse_guard_revocation_feed_up")) === 1);
    }
  });
  afterAll(async () => {
    await Promise.all([second.close(), silentCache.close(), noCache.close()]);
    await replica.close();
    await s.close();
  });

  /**
   * Polls both gateways until each refuses the token; returns how long each
   * took, from just before the revocation. The cache would keep the entry for
   * 300 s (CACHED_FOR_MS): a refusal before that can only come from the
   * revocation feed's eviction, which is what these tests prove. How fast it
   * is (a few ms on an idle loopback, issue 10 asks for < 1 s) is a speed, so
   * it is not asserted: a loaded machine may take longer without being wrong.
   */
  const timeToRefusal = async (revoke: () => Promise<unknown>, token: string) => {
    const started = performance.now();
    const watch = (gateway: GuardGateway) =>
      waitFor(async () => (await status(gateway, token)) === 401, { budgetMs: 10_000, what: `${gateway.url} refusing the revoked token` }).then(
        () => performance.now() - started,
      );
    const [, first, other] = await Promise.all([revoke(), watch(s.gateway), watch(second)]);
    return [first, other];
  };

  it("RFC 7009: a revoked access token is refused at every gateway at once (evicted by the feed), although its entry would live 300 s", async () => {
    const { accessToken } = await s.tokens("read");
    for (const gateway of [s.gateway, second]) {
      expect(await status(gateway, accessToken)).toBe(200);
      const hits = await gateway.metric("gatehouse_guard_cache_hits_total");
      expect(await status(gateway, accessToken)).toBe(200);
      expect(await gateway.metric("gatehouse_guard_cache_hits_total")).toBe(hits + 1);
    }
    // Revoked through the other replica than the first gateway's: the announcement crosses Redis pub/sub.
    const elapsed = await timeToRefusal(() => replica.authz.revoke({ token: accessToken }, basic("web", SECRETS.web)), accessToken);
    // The entries were cached for 300 s and the feed stayed up, so a 401 before then can only come from the eviction.
    for (const ms of elapsed) expect(ms).toBeLessThan(CACHED_FOR_MS);
    for (const gateway of [s.gateway, second]) {
      expect(await gateway.metric("gatehouse_guard_revocation_feed_up")).toBe(1);
      expect(await gateway.metric("gatehouse_guard_revocations_total", { kind: "jti" })).toBeGreaterThanOrEqual(1);
    }
  });

  it("revoking the refresh token revokes its grant: the grant's access tokens are evicted everywhere", async () => {
    const { accessToken, refreshToken } = await s.tokens("read");
    for (const gateway of [s.gateway, second]) {
      expect(await status(gateway, accessToken)).toBe(200);
      expect(await status(gateway, accessToken)).toBe(200);
    }
    const elapsed = await timeToRefusal(() => s.authz.authz.revoke({ token: refreshToken }, basic("web", SECRETS.web)), accessToken);
    for (const ms of elapsed) expect(ms).toBeLessThan(CACHED_FOR_MS);
    expect(await second.metric("gatehouse_guard_revocations_total", { kind: "grant_id" })).toBeGreaterThanOrEqual(1);
  });

  it("a stream silent for two heartbeat intervals is not trusted: every request is introspected, then it resubscribes and the cache starts empty", async () => {
    const { accessToken } = await s.tokens("read");
    expect(await status(silentCache, accessToken)).toBe(200);
    const before = await counters(silentCache);
    expect(await status(silentCache, accessToken)).toBe(200);
    expect((await counters(silentCache)).hits).toBe(before.hits + 1);
    const reconnects = await silentCache.metric("gatehouse_guard_revocation_feed_reconnects_total");

    // 21 s without an event or heartbeat (interval 10 s), as far as this gateway's clock can tell.
    silentClock.advance(21_000);
    expect(await status(silentCache, accessToken)).toBe(200);
    const untrusted = await counters(silentCache);
    expect(untrusted.untrusted).toBe(before.untrusted + 1);
    expect(untrusted.hits).toBe(before.hits + 1);

    // The watchdog drops the stream and subscribes again; the new subscription flushes the cache.
    await eventually(async () => (await silentCache.metric("gatehouse_guard_revocation_feed_reconnects_total")) > reconnects);
    await eventually(async () => (await silentCache.metric("gatehouse_guard_revocation_feed_up")) === 1);
    const resubscribed = await counters(silentCache);
    expect(await status(silentCache, accessToken)).toBe(200);
    expect((await counters(silentCache)).absent).toBe(resubscribed.absent + 1);
    expect(await status(silentCache, accessToken)).toBe(200);
    expect((await counters(silentCache)).hits).toBe(resubscribed.hits + 1);
  });

  it("cacheTtlSeconds 0 turns the cache off: every request is introspected", async () => {
    const { accessToken } = await s.tokens("read");
    const before = await counters(noCache);
    for (let i = 0; i < 3; i++) expect(await status(noCache, accessToken)).toBe(200);
    const after = await counters(noCache);
    expect(after.introspections - before.introspections).toBe(3);
    expect(after.disabled - before.disabled).toBe(3);
    expect(after.hits).toBe(before.hits);
  });
});
