import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { failureOf, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { startRedisServer, type RedisServer } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";

let redis: RedisServer;
let t: TestAuthz;
beforeAll(async () => {
  redis = await startRedisServer();
  t = await startTestAuthz({ redisUrl: redis.url });
});
afterAll(async () => {
  await t.close();
  await redis.stop();
});

const health = () => createClient(Health, createGrpcTransport({ baseUrl: t.running.url }));

describe("authz health for Kubernetes probes", () => {
  it("GET /healthz and /readyz answer over HTTP/1.1 on the RPC port", async () => {
    const live = await fetch(`${t.running.url}/healthz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: "ok" });
    const ready = await fetch(`${t.running.url}/readyz`);
    expect(ready.status).toBe(200);
    expect((await fetch(`${t.running.url}/nothing`)).status).toBe(404);
  });

  it("the gRPC health checking protocol answers Check for the server and its services, NOT_FOUND for others", async () => {
    expect((await health().check({})).status).toBe(Status.SERVING);
    expect((await health().check({ service: "gatehouse.v1.AuthorizationService" })).status).toBe(Status.SERVING);
    expect((await failureOf(health().check({ service: "nope.v1.Nothing" }))).code).toBe(Code.NotFound);
  });

  it("with Redis down, readiness fails and liveness holds; both recover", async () => {
    const watch = health().watch({})[Symbol.asyncIterator]();
    expect((await watch.next()).value?.status).toBe(Status.SERVING);
    await redis.stop();
    expect((await fetch(`${t.running.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${t.running.url}/healthz`)).status).toBe(200);
    expect((await health().check({})).status).toBe(Status.NOT_SERVING);
    // Watch reports the change without being asked again.
    expect((await watch.next()).value?.status).toBe(Status.NOT_SERVING);
    await redis.start();
    await expect.poll(async () => (await fetch(`${t.running.url}/readyz`)).status, { timeout: scaledBudget(10_000) }).toBe(200);
    expect((await watch.next()).value?.status).toBe(Status.SERVING);
    await watch.return?.();
  });

  it("draining: readiness goes false before the server closes", async () => {
    t.running.deps.health.startDraining();
    const ready = await fetch(`${t.running.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: "draining" });
    expect((await health().check({})).status).toBe(Status.NOT_SERVING);
  });
});
