import { afterAll, describe, expect, it } from "vitest";
import { startTestAuthz, type TestAuthz } from "../support/authz.js";
import { replayEverything, startFlowLoad, type FlowLoadResult } from "../support/flow-load.js";
import { startRedisCluster, startRedisSentinel } from "../support/redis-topologies.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { waitFor } from "../support/wait-for.js";

/**
 * Each test's budget: a Redis topology starts (six servers and a cluster
 * create, or two servers and three sentinels: a few seconds), gatehouse
 * starts, flows run, a master dies, Redis promotes its replica (node or
 * down-after timeout of 1 s, then an election), and flows run until they
 * succeed again; then every code and refresh token is replayed. About 13 s
 * on a quiet two-core machine; 45 s quiet, scaled by TEST_TIME_SCALE.
 */
const FAILOVER_BUDGET_MS = scaledBudget(45_000);

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) {
    const started = Date.now();
    await cleanup();
    if (process.env.DEBUG_FAILOVER) console.log("cleanup took", Date.now() - started, cleanup.toString());
  }
}, scaledBudget(30_000));

/** Flows completed after the last failed call (or after `since`, when none failed after it). */
function completionsAfterLastFailure(result: FlowLoadResult, since: number): number {
  const lastFailure = Math.max(since, ...result.failures.filter((f) => f.at >= since).map((f) => f.at));
  return result.completions.filter((at) => at > lastFailure).length;
}

/**
 * Waits for the service to recover on its own (flows complete again, with no
 * failure since), however long the machine takes to get there, then stops the
 * load. How much work fits in a window is the machine's business; recovery is
 * the test's.
 */
async function recover(load: ReturnType<typeof startFlowLoad>, killedAt: number, name: string): Promise<FlowLoadResult> {
  await waitFor(() => completionsAfterLastFailure(load.result, killedAt) >= 5, {
    budgetMs: 20_000,
    what: `${name}: five flows completed after the last failed call, without restarting gatehouse`,
  });
  return load.stop();
}

/**
 * What every failover must show, on outcomes rather than amounts: every flow
 * begun either completed or failed cleanly (Unavailable, or DeadlineExceeded when
 * the service's own budget ran out first, both with temporarily_unavailable:
 * the client may retry), only after the kill; the service recovered by itself
 * (a flow completed after the last failure); and no code or refresh token was
 * accepted twice.
 */
async function checkFailover(t: TestAuthz, result: FlowLoadResult, warmAt: number, killedAt: number, name: string) {
  if (process.env.DEBUG_FAILOVER) {
    const rel = (at: number) => at - killedAt;
    console.log(name, "failures", result.failures.map((f) => `${rel(f.at)}:${f.step}:${f.code}:${f.oauthError}`).join(" "));
    console.log(name, "completions after kill", result.completions.filter((c) => c > killedAt).map(rel).join(" "));
  }
  // No flow lost: each one begun ended in a completion or a recorded failure.
  expect(result.flows + result.failures.length).toBe(result.started);
  expect(result.failures.map((f) => `${f.step}: ${f.code} ${f.oauthError ?? ""}`.trim()).filter((f) => !/^\w+: (Unavailable|DeadlineExceeded) temporarily_unavailable$/.test(f))).toEqual([]);
  // Nothing failed between warm-up and the kill (a fresh cluster's replicas may still be settling before).
  expect(result.failures.filter((f) => f.at >= warmAt && f.at < killedAt)).toEqual([]);
  // Recovered, and stayed so until the load stopped.
  expect(completionsAfterLastFailure(result, killedAt)).toBeGreaterThanOrEqual(1);
  // The longest unavailability window: a figure to report, not to assert on a shared, noisy machine.
  const lastFailure = Math.max(killedAt, ...result.failures.filter((f) => f.at >= killedAt).map((f) => f.at));
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
    await waitFor(() => load.result.flows >= 30, { budgetMs: 10_000, what: "30 flows to warm up" });
    const warmAt = Date.now();
    await waitFor(() => load.result.flows >= 60, { budgetMs: 10_000, what: "30 more flows before the kill" });
    // Kill the master that serves some of the keys the flows write (grants spread over every slot).
    const victim = await cluster.masterFor("{g:victim}:family");
    const killedAt = Date.now();
    await victim.server.stop();
    // Wait for the replica to take the slot over, then for the flows to succeed again.
    await waitFor(async () => (await cluster.masterFor("{g:victim}:family")).port !== victim.port, {
      budgetMs: 15_000,
      what: "the cluster to promote the killed master's replica",
      intervalMs: 100,
    });
    await checkFailover(t, await recover(load, killedAt, "cluster master failover"), warmAt, killedAt, "cluster master failover");
  }, FAILOVER_BUDGET_MS);

  it("Redis Sentinel: the master dies, Sentinel promotes the replica; requests fail only meanwhile, nothing is accepted twice", async () => {
    const sentinel = await startRedisSentinel({ downAfterMs: 1_000 });
    cleanups.push(() => sentinel.stop());
    const t = await startTestAuthz({
      patch: (file) => void ((file.authz as Record<string, unknown>).redis = { sentinels: sentinel.sentinels, name: sentinel.masterName }),
    });
    cleanups.push(() => t.close());

    const load = startFlowLoad([t], { concurrency: 8 });
    await waitFor(() => load.result.flows >= 30, { budgetMs: 10_000, what: "30 flows to warm up" });
    const warmAt = Date.now();
    await waitFor(() => load.result.flows >= 60, { budgetMs: 10_000, what: "30 more flows before the kill" });
    const killedAt = Date.now();
    await sentinel.master.stop();
    await waitFor(async () => (await sentinel.currentMasterPort()) === sentinel.replica.port, {
      budgetMs: 15_000,
      what: "Sentinel's promotion of the replica",
      intervalMs: 100,
    });
    await checkFailover(t, await recover(load, killedAt, "sentinel failover"), warmAt, killedAt, "sentinel failover");
  }, FAILOVER_BUDGET_MS);
});
