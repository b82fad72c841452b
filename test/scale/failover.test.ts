import { afterAll, describe, expect, it } from "vitest";
import { startTestAuthz, type TestAuthz } from "../support/authz.js";
import { replayEverything, startFlowLoad, until, untilAsync, type FlowLoadResult } from "../support/flow-load.js";
import { startRedisCluster, startRedisSentinel } from "../support/redis-topologies.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) {
    const started = Date.now();
    await cleanup();
    if (process.env.DEBUG_FAILOVER) console.log("cleanup took", Date.now() - started, cleanup.toString());
  }
}, 120_000);

/**
 * What every failover must show: failures only Unavailable, only after the
 * kill and within a bounded window, flows completing again afterwards without
 * restarting gatehouse, and no code or refresh token accepted twice.
 */
async function checkFailover(t: TestAuthz, result: FlowLoadResult, warmAt: number, killedAt: number, name: string) {
  if (process.env.DEBUG_FAILOVER) {
    const rel = (at: number) => at - killedAt;
    console.log(name, "failures", result.failures.map((f) => `${rel(f.at)}:${f.step}:${f.code}:${f.oauthError}`).join(" "));
    console.log(name, "completions after kill", result.completions.filter((c) => c > killedAt).map(rel).join(" "));
  }
  expect(result.failures.map((f) => `${f.step}: ${f.code} ${f.oauthError ?? ""}`.trim()).filter((f) => !/Unavailable temporarily_unavailable$/.test(f))).toEqual([]);
  // Nothing failed between warm-up and the kill (a fresh cluster's replicas may still be settling before).
  expect(result.failures.filter((f) => f.at >= warmAt && f.at < killedAt)).toEqual([]);
  const lastFailure = Math.max(killedAt, ...result.failures.filter((f) => f.at >= killedAt).map((f) => f.at));
  expect(result.completions.filter((at) => at > lastFailure).length).toBeGreaterThan(5);
  // The longest unavailability window: a figure to report, not to assert on a shared, noisy machine.
  console.log(`${name}: ${result.flows} flows, ${result.failures.length} failed calls, unavailability window ${lastFailure - killedAt} ms`);

  const replay = await replayEverything(t, result);
  expect(replay.presented).toBe(result.redeemedCodes.length + result.rotatedOut.length);
  expect(replay.accepted).toBe(0);
}

describe("failover under load", () => {
  it("Redis Cluster: a master dies, its replica takes over; requests fail only meanwhile, nothing is accepted twice", async () => {
    const cluster = await startRedisCluster({ nodeTimeoutMs: 1_000 });
    cleanups.push(() => cluster.stop());
    const t = await startTestAuthz({
      patch: (file) => void ((file.authz as Record<string, unknown>).redis = { cluster: [{ host: "127.0.0.1", port: cluster.nodes[0]!.port }] }),
    });
    cleanups.push(() => t.close());

    const load = startFlowLoad([t], { concurrency: 8 });
    await until(() => load.result.flows >= 30, 20_000, "flows before the kill");
    const warmAt = Date.now();
    await until(() => load.result.flows >= 60, 20_000, "flows before the kill");
    // Kill the master that serves some of the keys the flows write (grants spread over every slot).
    const victim = await cluster.masterFor("{g:victim}:family");
    const killedAt = Date.now();
    await victim.server.stop();
    // Wait for the replica to take the slot over, then for flows to run well past it.
    await untilAsync(async () => (await cluster.masterFor("{g:victim}:family").catch(() => victim)).port !== victim.port, 30_000, "the replica's promotion");
    const flowsAfterPromotion = load.result.flows;
    await until(() => load.result.flows >= flowsAfterPromotion + 60, 30_000, "flows after the failover");
    await checkFailover(t, await load.stop(), warmAt, killedAt, "cluster master failover");
  }, 90_000);

  it("Redis Sentinel: the master dies, Sentinel promotes the replica; requests fail only meanwhile, nothing is accepted twice", async () => {
    const sentinel = await startRedisSentinel({ downAfterMs: 1_000 });
    cleanups.push(() => sentinel.stop());
    const t = await startTestAuthz({
      patch: (file) => void ((file.authz as Record<string, unknown>).redis = { sentinels: sentinel.sentinels, name: sentinel.masterName }),
    });
    cleanups.push(() => t.close());

    const load = startFlowLoad([t], { concurrency: 8 });
    await until(() => load.result.flows >= 30, 20_000, "flows before the kill");
    const warmAt = Date.now();
    await until(() => load.result.flows >= 60, 20_000, "flows before the kill");
    const killedAt = Date.now();
    await sentinel.master.stop();
    await untilAsync(async () => (await sentinel.currentMasterPort()) === sentinel.replica.port, 30_000, "Sentinel's promotion of the replica");
    const flowsAfterPromotion = load.result.flows;
    await until(() => load.result.flows >= flowsAfterPromotion + 60, 30_000, "flows after the failover");
    await checkFailover(t, await load.stop(), warmAt, killedAt, "sentinel failover");
  }, 90_000);
});
