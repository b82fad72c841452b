import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { buildApp } from "../../gateway/app.js";
import { createGatewayDeps } from "../../gateway/deps.js";
import {
  GUARD_DECISION_TABLE,
  sendRawRequest,
  startGuardDecisionFixture,
  type DecisionCase,
  type GuardDecisionFixture,
  guardOutcomeCount,
} from "../support/guard-decision-table.js";
import { freePort } from "../support/redis-server.js";

/**
 * Entrance 1, the sidecar proxy, through the shared decision table
 * (test/support/guard-decision-table.ts): the same verdicts the check
 * endpoint and Envoy's ext_authz must give, with what reached the upstream.
 */

let table: GuardDecisionFixture;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  table = await startGuardDecisionFixture({ redisUrl: inject("redisUrl") });
  const port = await freePort();
  const config = await table.gatewayConfig(port);
  const deps = createGatewayDeps(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }));
  app = await buildApp(deps);
  await app.listen({ host: "127.0.0.1", port });
  url = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await app?.close();
  await table?.close();
});
beforeEach(() => {
  table.upstream.received.length = 0;
});

// The NFKC cases join once rules.ts folds compatibility forms (issue 10, another helper's part).
const cases = GUARD_DECISION_TABLE;

describe("the shared decision table through the sidecar", () => {
  it("has at least 40 cases, and every kind of them", () => {
    expect(GUARD_DECISION_TABLE.length).toBeGreaterThanOrEqual(40);
    expect(new Set(GUARD_DECISION_TABLE.map((c) => c.kind))).toEqual(new Set(["allowed", "refusal", "path trick", "header trick"]));
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c: DecisionCase) => {
    const metricsBefore = await (await fetch(`${url}/metrics`)).text();
    const response = await sendRawRequest(url, table.resolve(c));
    table.verify(c, {
      status: response.status,
      wwwAuthenticate: response.headers["www-authenticate"],
      body: response.status === 200 ? "" : response.body,
      upstream: table.upstream.last(),
    });
    if (c.expect.upstreamPath !== undefined) expect(table.upstream.last()!.path).toBe(c.expect.upstreamPath);
    expect(table.upstream.received.length).toBe(c.expect.identity ? 1 : 0);
    // The pipeline counted the outcome the table names.
    const metricsAfter = await (await fetch(`${url}/metrics`)).text();
    const count = (text: string) => guardOutcomeCount(text, c.expect.outcome);
    expect(count(metricsAfter) - count(metricsBefore), c.name).toBe(1);
  });
});
