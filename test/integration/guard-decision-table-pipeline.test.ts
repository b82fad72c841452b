import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createGatewayDeps, type GatewayDeps } from "../../gateway/deps.js";
import type { GuardDecision, GuardRequest } from "../../gateway/guard/pipeline.js";
import {
  GUARD_DECISION_TABLE,
  IDENTITY_HEADERS,
  TABLE_CLIENT,
  TABLE_SUBJECT,
  startGuardDecisionFixture,
  type DecisionCase,
  type DecisionRequest,
  type GuardDecisionFixture,
} from "../support/guard-decision-table.js";
import { issueTokens } from "../support/authz.js";
import { freePort } from "../support/redis-server.js";
import { eventually } from "./guard-fixtures.js";

/**
 * The pipeline itself, called directly (no HTTP in front of it), through the
 * shared decision table: a real authz service introspects, the real
 * revocation feed keeps the cache honest. What the entrances add is tested
 * through them; here is what every entrance gets.
 */

let table: GuardDecisionFixture;
let deps: GatewayDeps;

beforeAll(async () => {
  table = await startGuardDecisionFixture({ redisUrl: inject("redisUrl") });
  const config = await table.gatewayConfig(await freePort());
  deps = createGatewayDeps(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }));
  deps.guard.start();
  await eventually(() => deps.revocations.isLive(Date.now()));
});
afterAll(async () => {
  await deps?.guard.close();
  await table?.close();
});

/** A request as Node would describe it: lower-case names, the first Authorization kept, the raw fields in order. */
function guardRequest(request: DecisionRequest): GuardRequest {
  const headers: Record<string, string | string[]> = {};
  const rawHeaders: string[] = [];
  for (const [name, value] of request.headers) {
    rawHeaders.push(name, value);
    const key = name.toLowerCase();
    const existing = headers[key];
    if (existing === undefined) headers[key] = value;
    else if (key !== "authorization") headers[key] = [existing, value].flat();
  }
  headers.host = "gateway.test";
  return { method: request.method, target: request.target, headers, rawHeaders, peer: "127.0.0.1", websocket: false, requestId: "req-1" };
}

const decide = async (c: DecisionCase): Promise<GuardDecision> => deps.guard.decide(guardRequest(table.resolve(c)));

describe("the shared decision table through the pipeline", () => {
  const cases = GUARD_DECISION_TABLE;

  it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const decision = await decide(c);
    const e = c.expect;
    if (decision.kind === "refuse") {
      expect({ status: decision.status, error: decision.error, outcome: decision.outcome }, c.name).toEqual({ status: e.status, error: e.error, outcome: e.outcome });
      expect(decision.headers["www-authenticate"] !== undefined, c.name).toBe(e.challenge);
      if (e.error !== undefined) expect(JSON.parse(decision.body)).toMatchObject({ error: e.error });
      expect(e.identity).toBe(false);
      return;
    }
    expect(e.status, `${c.name}: allowed`).toBe(200);
    expect(decision.outcome).toBe(e.outcome);
    expect(decision.setHeaders).toMatchObject({ [IDENTITY_HEADERS.subject]: TABLE_SUBJECT, [IDENTITY_HEADERS.client]: TABLE_CLIENT });
    if (e.upstreamPath !== undefined) expect(decision.path).toBe(e.upstreamPath);
    expect(decision.expiresAt).toBe(decision.principal!.expiresAt);
    const sent = guardRequest(table.resolve(c)).headers;
    for (const name of e.notForwarded ?? []) expect(decision.removeHeaders, name).toContain(name);
    // The caller's identity headers go in every spelling; Authorization unless the route forwards it.
    for (const name of Object.keys(sent)) {
      if (name.replace(/_/g, "-").startsWith("x-gatehouse-")) expect(decision.removeHeaders.includes(name) || name in decision.setHeaders, name).toBe(true);
    }
    expect(decision.removeHeaders.includes("authorization")).toBe(!(e.forwarded ?? []).includes("authorization"));
  });
});

describe("the pipeline's contract", () => {
  const readCase = GUARD_DECISION_TABLE.find((c) => c.name === "a live token with the route's one scope")!;

  it("a token's first check is a promise; once cached the decision is synchronous (no promise on the hot path)", async () => {
    const { accessToken } = await issueTokens(table.authz, { scope: "admin" });
    const request = guardRequest({ method: "GET", target: "/api/admin/x", headers: [["Authorization", `Bearer ${accessToken}`]] });
    const first = deps.guard.decide(request);
    expect(first).toBeInstanceOf(Promise);
    expect((await first).kind).toBe("allow");
    const cached = deps.guard.decide(request);
    expect(cached).not.toBeInstanceOf(Promise);
    expect((cached as GuardDecision).kind).toBe("allow");
    expect(deps.guard.decide(guardRequest(table.resolve(readCase)))).not.toBeInstanceOf(Promise);
  });

  it("decides on the gateway's own paths: the canonical spelling is not the guard's (404), another spelling is refused", async () => {
    expect(deps.guard.isOwnPath("/oauth2/token")).toBe(true);
    expect(deps.guard.isOwnPath("/api/notes/1")).toBe(false);
    const own = await deps.guard.decide(guardRequest({ method: "GET", target: "/oauth2/token", headers: [] }));
    expect(own).toMatchObject({ kind: "refuse", status: 404, outcome: "not_found" });
  });

  it("a reloaded route table applies to the next decision; the old one is gone", async () => {
    const request = guardRequest(table.resolve(readCase));
    expect((await deps.guard.decide(request)).kind).toBe("allow");
    const next = { ...deps.config, routes: deps.config.routes.filter((route) => route.name !== "notes-read") };
    deps.reload(next);
    try {
      expect(await deps.guard.decide(request)).toMatchObject({ kind: "refuse", status: 404 });
    } finally {
      deps.reload(deps.config);
    }
    expect((await deps.guard.decide(request)).kind).toBe("allow");
  });
});
