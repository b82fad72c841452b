import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import type { CheckResponse } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { buildApp } from "../../gateway/app.js";
import { createGatewayDeps } from "../../gateway/deps.js";
import { createExtAuthzClient, envoyCheckRequest, type ExtAuthzClient } from "../support/ext-authz-client.js";
import {
  TABLE_MCP_RESOURCE,
  GUARD_DECISION_TABLE,
  sendRawRequest,
  startGuardDecisionFixture,
  type DecisionCase,
  type DecisionRequest,
  type GuardDecisionFixture,
  guardOutcomeCount,
} from "../support/guard-decision-table.js";
import { freePort } from "../support/redis-server.js";

/**
 * Entrance 3, Envoy's ext_authz `Check` over gRPC, through the shared
 * decision table (test/support/guard-decision-table.ts): the same verdicts as
 * the sidecar. Each case is sent as Envoy's filter describes a request
 * (attributes.request.http: method, the target in `path`, `host`, the header
 * fields with lower-case names, repeated ones joined by ","). What Envoy
 * then does is done here as its documentation says, so that the table can
 * check what reaches the upstream: a denial is the response; an OK response's
 * `headers` are set (append false: replacing), then `headers_to_remove` are
 * removed (the filter's order), `:path` replaced when set, and the request is
 * forwarded to the echo upstream.
 */

let table: GuardDecisionFixture;
let app: FastifyInstance;
let url: string;
let client: ExtAuthzClient;

beforeAll(async () => {
  table = await startGuardDecisionFixture({ redisUrl: inject("redisUrl") });
  const [port, checkPort] = [await freePort(), await freePort()];
  const config = await table.gatewayConfig(port, (file) => {
    const gateway = file.gateway as { guard: Record<string, unknown> };
    gateway.guard.extAuthz = { host: "127.0.0.1", port: checkPort };
  });
  app = await buildApp(createGatewayDeps(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" })));
  await app.listen({ host: "127.0.0.1", port });
  url = `http://127.0.0.1:${port}`;
  client = createExtAuthzClient(`127.0.0.1:${checkPort}`);
});
afterAll(async () => {
  client?.close();
  await app?.close();
  await table?.close();
});
beforeEach(() => {
  table.upstream.received.length = 0;
});

// The NFKC cases join once rules.ts folds compatibility forms (issue 10, another helper's part).
const cases = GUARD_DECISION_TABLE;

/** The CheckRequest Envoy's filter sends for this request: header names lower-cased, repeats joined by ",". */
function asEnvoySends(request: DecisionRequest) {
  const headers: Record<string, string> = {};
  for (const [name, value] of request.headers) {
    const key = name.toLowerCase();
    headers[key] = headers[key] === undefined ? value : `${headers[key]},${value}`;
  }
  return envoyCheckRequest({ method: request.method, path: request.target, host: "api.gatehouse.test", headers, peer: "127.0.0.1" });
}

/** Hop-by-hop fields Envoy never forwards (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade", "host"]);

/** What Envoy forwards for an OK response: the request with the response's header mutations applied, in the filter's order. */
function forwardAsEnvoy(request: DecisionRequest, ok: Extract<CheckResponse["httpResponse"], { case: "okResponse" }>["value"]): DecisionRequest {
  let headers = request.headers.map(([name, value]) => [name.toLowerCase(), value] as const).filter(([name]) => !HOP_BY_HOP.has(name));
  let target = request.target;
  for (const option of ok.headers) {
    const { key, value } = option.header!;
    expect(option.append, `${key}: set, never appended`).toBe(false);
    if (key === ":path") {
      target = value;
      continue;
    }
    headers = [...headers.filter(([name]) => name !== key), [key, value]];
  }
  const removed = new Set(ok.headersToRemove);
  headers = headers.filter(([name]) => !removed.has(name));
  return { method: request.method, target, headers };
}

describe("the shared decision table through Envoy's ext_authz Check", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c: DecisionCase) => {
    const metricsBefore = await (await fetch(`${url}/metrics`)).text();
    const request = table.resolve(c);
    const response = await client.check(asEnvoySends(request));
    if (response.httpResponse.case === "okResponse") {
      expect(response.status?.code ?? 0, c.name).toBe(0);
      const forwarded = await sendRawRequest(table.upstream.url, forwardAsEnvoy(request, response.httpResponse.value));
      table.verify(c, { status: forwarded.status, wwwAuthenticate: undefined, body: "", upstream: table.upstream.last() });
      // The upstream gets the path that was checked, as behind the sidecar.
      if (c.expect.upstreamPath !== undefined) expect(table.upstream.last()!.path, c.name).toBe(c.expect.upstreamPath);
    } else {
      // Envoy denies on any status but OK, and sends the denied response as it is.
      expect(response.status?.code, c.name).not.toBe(0);
      expect(response.httpResponse.case, c.name).toBe("deniedResponse");
      const denied = response.httpResponse.value!;
      const header = (name: string) => denied.headers.find((h) => h.header?.key === name)?.header?.value;
      table.verify(c, { status: denied.status?.code ?? 403, wwwAuthenticate: header("www-authenticate"), body: denied.body, upstream: table.upstream.last() });
    }
    expect(table.upstream.received.length).toBe(c.expect.identity ? 1 : 0);
    // The shared pipeline counted the outcome the table names.
    const metricsAfter = await (await fetch(`${url}/metrics`)).text();
    const count = (text: string) => guardOutcomeCount(text, c.expect.outcome);
    expect(count(metricsAfter) - count(metricsBefore), c.name).toBe(1);
  });
});

describe("RFC 9728 behind Envoy", () => {
  it("RFC 9728 §3: a Check for a protected resource's metadata path is answered with the document itself (status 200, CORS), as the gateway serves it", async () => {
    const response = await client.check(envoyCheckRequest({ method: "GET", path: "/.well-known/oauth-protected-resource/mcp", host: "mcp.gatehouse.test", headers: {}, peer: "127.0.0.1" }));
    expect(response.httpResponse.case).toBe("deniedResponse");
    const denied = response.httpResponse.value as Extract<CheckResponse["httpResponse"], { case: "deniedResponse" }>["value"];
    expect(denied.status?.code).toBe(200);
    expect(denied.headers.find((h) => h.header?.key === "access-control-allow-origin")?.header?.value).toBe("*");
    const document = JSON.parse(denied.body) as Record<string, unknown>;
    expect(document).toEqual(await (await fetch(`${url}/.well-known/oauth-protected-resource/mcp`)).json());
    expect(document).toMatchObject({ resource: TABLE_MCP_RESOURCE, bearer_methods_supported: ["header"] });
    // A metadata path of no resource is the pipeline's 404, as for any path of the gateway's own.
    const unknown = await client.check(envoyCheckRequest({ method: "GET", path: "/.well-known/oauth-protected-resource/nothing", host: "mcp.gatehouse.test", headers: {}, peer: "127.0.0.1" }));
    expect((unknown.httpResponse.value as { status?: { code: number } }).status?.code).toBe(404);
  });
});
