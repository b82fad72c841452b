import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { baseConfigFile, issueTokens, startTestAuthz, testEnvironment } from "../support/authz.js";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { runTs, type RunningProcess } from "../support/process.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { waitFor } from "../support/wait-for.js";
import { startGuardGateway, type GuardGateway } from "../integration/guard-fixtures.js";

/**
 * Two authz replicas, each its own process, and a gateway that knows both.
 * Killing one replica (SIGKILL: no draining) under load may fail only the
 * requests that were in flight at the kill.
 */
const dir = mkdtempSync(join(tmpdir(), "gatehouse-gateway-failover-"));
const ports: number[] = [];
const replicas: RunningProcess[] = [];
let upstream: EchoUpstream;
let gateway: GuardGateway;

beforeAll(async () => {
  upstream = await startEchoUpstream();
  ports.push(await freePort(), await freePort());
  const file = baseConfigFile();
  (file.authz as Record<string, unknown>).keyPrefix = `gateway-failover-${Date.now()}:`;
  file.routes = [{ name: "api", methods: ["GET"], path: "/api/**", scopes: ["read"], upstream: upstream.url }];
  writeFileSync(join(dir, "config.yaml"), stringify(file));
  const env = { ...(await testEnvironment(inject("redisUrl"))), GATEHOUSE_CONFIG: join(dir, "config.yaml") };
  for (const port of ports) replicas.push(runTs("services/authz/main.ts", { env: { ...env, GATEHOUSE_AUTHZ_PORT: String(port) } }));
  await Promise.all(replicas.map((r) => r.waitFor(/listening/)));
  gateway = await startGuardGateway({
    authzUrl: `http://127.0.0.1:${ports[0]}`,
    redisUrl: inject("redisUrl"),
    patch: (f) => {
      f.routes = [{ name: "api", methods: ["GET"], path: "/api/**", scopes: ["read"], upstream: upstream.url }];
      // Every request introspects: the replicas are exercised on each one.
      f.gateway = { guard: { cacheTtlSeconds: 0 } };
    },
    endpoints: ports.map((p) => `http://127.0.0.1:${p}`),
  });
});
afterAll(async () => {
  await gateway?.close();
  await Promise.all(replicas.map((r) => r.stop()));
  await upstream?.close();
});

/**
 * The test's budget: a token is issued, requests run before the kill and
 * until enough have been answered after it. About 3 s on a quiet two-core
 * machine (the replicas start in beforeAll, under the hook budget); 15 s
 * quiet, scaled by TEST_TIME_SCALE.
 */
const GATEWAY_FAILOVER_BUDGET_MS = scaledBudget(15_000);

describe("a gateway with two authz endpoints when one replica dies under load", () => {
  it("fails no request but those in flight at the kill: Introspect is retried on the other replica", { timeout: GATEWAY_FAILOVER_BUDGET_MS }, async () => {
    // An access token is a JWT every replica verifies with the shared signing key.
    const issuer = await startTestAuthz({ redisUrl: inject("redisUrl") });
    const token = (await issueTokens(issuer, { scope: "read" })).accessToken;
    await issuer.close();

    const outcomes: Array<{ started: number; ended: number; status: number | string }> = [];
    let begun = 0;
    let running = true;
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running) {
          begun++;
          const started = Date.now();
          const status = await fetch(`${gateway.url}/api/notes`, { headers: { authorization: `Bearer ${token}` } })
            .then(async (r) => (await r.arrayBuffer(), r.status))
            .catch((e: unknown) => String(e));
          outcomes.push({ started, ended: Date.now(), status });
        }
      }),
    );
    // Both replicas serve before the kill (the gateway spreads calls over them in turn).
    await waitFor(() => outcomes.filter((o) => o.status === 200).length >= 20, { budgetMs: 5_000, what: "20 requests answered before the kill" });
    // The kill lands between these two instants: a request begun in between was
    // in flight at it (on a busy machine that can be a few hundred ms).
    const killedAt = Date.now();
    await replicas[0]!.stop("SIGKILL");
    const deadAt = Date.now();
    // Requests begun once the replica is dead: every one must pass through the surviving replica.
    const afterKill = () => outcomes.filter((o) => o.started > deadAt);
    await waitFor(() => afterKill().length >= 50 || afterKill().some((o) => o.status !== 200), {
      budgetMs: 10_000,
      what: "50 requests begun after the kill to be answered",
    });
    running = false;
    await load;

    // No request lost: each one begun has an outcome.
    expect(outcomes).toHaveLength(begun);
    const failed = outcomes.filter((o) => o.status !== 200);
    // Only requests already in flight when the replica died may fail.
    expect(failed.filter((o) => o.started > deadAt)).toEqual([]);
    expect(failed.every((o) => o.ended >= killedAt)).toBe(true);
    console.log(`gateway failover: ${outcomes.length} requests, ${failed.length} failed (in flight at the kill), ${afterKill().length} after it`);
  });
});
