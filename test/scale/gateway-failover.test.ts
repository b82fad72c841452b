import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { baseConfigFile, issueTokens, startTestAuthz, testEnvironment } from "../support/authz.js";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { runTs, type RunningProcess } from "../support/process.js";
import { freePort } from "../support/redis-server.js";
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

describe("a gateway with two authz endpoints when one replica dies under load", () => {
  it("fails no request but those in flight at the kill: Introspect is retried on the other replica", async () => {
    // An access token is a JWT every replica verifies with the shared signing key.
    const issuer = await startTestAuthz({ redisUrl: inject("redisUrl") });
    const token = (await issueTokens(issuer, { scope: "read" })).accessToken;
    await issuer.close();

    const outcomes: Array<{ started: number; ended: number; status: number | string }> = [];
    let running = true;
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running) {
          const started = Date.now();
          const status = await fetch(`${gateway.url}/api/notes`, { headers: { authorization: `Bearer ${token}` } })
            .then(async (r) => (await r.arrayBuffer(), r.status))
            .catch((e: unknown) => String(e));
          outcomes.push({ started, ended: Date.now(), status });
        }
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const killedAt = Date.now();
    await replicas[0]!.stop("SIGKILL");
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    running = false;
    await load;

    const afterKill = outcomes.filter((o) => o.started > killedAt);
    expect(afterKill.length).toBeGreaterThan(50);
    const failed = outcomes.filter((o) => o.status !== 200);
    // Only requests already in flight when the replica died may fail.
    expect(failed.filter((o) => o.started > killedAt)).toEqual([]);
    expect(failed.every((o) => o.ended >= killedAt)).toBe(true);
    console.log(`gateway failover: ${outcomes.length} requests, ${failed.length} failed (in flight at the kill), ${afterKill.length} after it`);
  });
});
