import { describe, expect, it } from "vitest";
import { createCheckEntrance, type CheckRequest } from "../../gateway/entrances/check-endpoint.js";
import type { Allowance, GuardRequest, Refusal } from "../../gateway/guard/pipeline.js";

/**
 * The check endpoint's translation, pure: which check requests describe an
 * original request that can be believed, and how each decision is answered
 * so that nginx, Traefik and Caddy pass it on. The whole path through a real
 * nginx is test/integration/check-endpoint-nginx.test.ts.
 */

const entrance = createCheckEntrance({
  trustedProxies: ["127.0.0.1", "10.0.0.0/8"],
  realm: "notes-api",
  identityHeaders: { subject: "X-Gatehouse-Subject", client: "X-Gatehouse-Client", scope: "X-Gatehouse-Scope" },
});

/** A check request as a proxy sends it: raw header pairs; `headers` as Node folds them. */
function check(pairs: Array<[string, string]>, peer = "127.0.0.1"): CheckRequest {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of pairs) {
    const key = name.toLowerCase();
    const existing = headers[key];
    headers[key] = existing === undefined ? value : `${String(existing)}, ${value}`;
  }
  return { headers, rawHeaders: pairs.flat(), peer, requestId: "req-1" };
}

const asked = (pairs: Array<[string, string]>, peer?: string): GuardRequest => {
  const description = entrance.describe(check(pairs, peer));
  if (description.kind !== "ask") throw new Error(`refused: ${description.answer.body}`);
  return description.request;
};

describe("describe: the original request, believed only from trusted proxies", () => {
  it("nginx: X-Original-Method and X-Original-URI describe the request; the description is not passed on as a field", () => {
    const request = asked([
      ["Host", "127.0.0.1:8080"],
      ["X-Original-Method", "POST"],
      ["X-Original-URI", "/api/notes/%2e%2e/x?y=1"],
      ["X-Forwarded-Host", "notes.example"],
      ["X-Forwarded-For", "198.51.100.7, 10.1.2.3"],
      ["Authorization", "Bearer abc"],
      ["Connection", "close"],
    ]);
    expect(request).toMatchObject({ method: "POST", target: "/api/notes/%2e%2e/x?y=1", peer: "198.51.100.7", requestId: "req-1", websocket: false });
    expect(request.headers).toMatchObject({ host: "notes.example", authorization: "Bearer abc" });
    expect(request.headers["x-original-uri"]).toBeUndefined();
    expect(request.headers["x-original-method"]).toBeUndefined();
    // The proxy's own hop is not the client's.
    expect(request.headers.connection).toBeUndefined();
    expect(request.rawHeaders).toEqual(["Host", "127.0.0.1:8080", "X-Forwarded-Host", "notes.example", "X-Forwarded-For", "198.51.100.7, 10.1.2.3", "Authorization", "Bearer abc"]);
  });

  it("Traefik and Caddy: X-Forwarded-Method, X-Forwarded-Uri and X-Forwarded-Host", () => {
    const request = asked([
      ["X-Forwarded-Method", "GET"],
      ["X-Forwarded-Uri", "/api/notes/1"],
      ["X-Forwarded-Host", "notes.example"],
      ["Upgrade", "websocket"],
    ]);
    expect(request).toMatchObject({ method: "GET", target: "/api/notes/1", websocket: true });
    expect(request.headers.host).toBe("notes.example");
  });

  it("a repeated Authorization field reaches the pipeline as sent (it refuses it)", () => {
    const request = asked([
      ["X-Original-Method", "GET"],
      ["X-Original-URI", "/a"],
      ["Authorization", "Bearer a"],
      ["Authorization", "Bearer b"],
    ]);
    expect(request.rawHeaders).toEqual(["Authorization", "Bearer a", "Authorization", "Bearer b"]);
  });

  it.each([
    ["a peer that is not a trusted proxy", [["X-Original-Method", "GET"], ["X-Original-URI", "/a"]], "192.0.2.1", "trusted proxies"],
    ["no description at all", [["Authorization", "Bearer abc"]], "127.0.0.1", "required"],
    ["a method without a target", [["X-Original-Method", "GET"]], "127.0.0.1", "required"],
    ["a target without a method", [["X-Forwarded-Uri", "/a"]], "127.0.0.1", "required"],
    ["both nginx's and Traefik's description (a client behind one proxy sent the other's)", [["X-Original-Method", "GET"], ["X-Original-URI", "/public"], ["X-Forwarded-Uri", "/admin"]], "127.0.0.1", "described twice"],
    ["a repeated target", [["X-Original-Method", "GET"], ["X-Original-URI", "/public"], ["X-Original-URI", "/admin"]], "127.0.0.1", "repeated"],
    ["a repeated method", [["X-Forwarded-Method", "GET"], ["X-Forwarded-Method", "DELETE"], ["X-Forwarded-Uri", "/a"]], "127.0.0.1", "repeated"],
    ["an empty target", [["X-Original-Method", "GET"], ["X-Original-URI", ""]], "127.0.0.1", "required"],
    ["a method that is not a token", [["X-Original-Method", "GET /x"], ["X-Original-URI", "/a"]], "127.0.0.1", "not a method"],
  ] as Array<[string, Array<[string, string]>, string, string]>)("refuses %s with 403 invalid_request and a challenge", (_name, pairs, peer, reason) => {
    const description = entrance.describe(check(pairs, peer));
    expect(description.kind).toBe("answer");
    if (description.kind !== "answer") return;
    expect(description.answer.status).toBe(403);
    expect(description.answer.headers["www-authenticate"]).toMatch(/^Bearer realm="notes-api", error="invalid_request", error_description="[^"]*"$/);
    expect(JSON.parse(description.answer.body).error_description).toContain(reason);
  });

  it("with no trusted proxies configured, every check request is refused", () => {
    const closed = createCheckEntrance({ trustedProxies: [], realm: "r", identityHeaders: { subject: "S", client: "C", scope: "P" } });
    const description = closed.describe(check([["X-Original-Method", "GET"], ["X-Original-URI", "/a"]]));
    expect(description.kind === "answer" && description.answer.status).toBe(403);
  });
});

describe("answer: what nginx, Traefik and Caddy can pass on", () => {
  const request = asked([["X-Original-Method", "GET"], ["X-Original-URI", "/api/./notes?x=1"], ["Authorization", "Bearer abc"]]);
  const allowance = (overrides: Partial<Allowance> = {}): Allowance => ({
    kind: "allow",
    route: "notes",
    outcome: "allowed",
    principal: undefined,
    expiresAt: undefined,
    path: "/api/notes",
    search: "?x=1",
    upstream: "http://127.0.0.1:1",
    errorStyle: "rfc6750",
    setHeaders: { "x-gatehouse-subject": "alice", "x-gatehouse-client": "web", "x-gatehouse-scope": "read", "x-request-id": "req-1" },
    removeHeaders: ["authorization", "x-gatehouse-subject"],
    ...overrides,
  });
  const refusal = (status: number, outcome: Refusal["outcome"], error: string | undefined, headers: Record<string, string> = {}): Refusal => ({
    kind: "refuse",
    route: "notes",
    outcome,
    status,
    error,
    description: "why",
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
    body: JSON.stringify({ error, error_description: "why" }),
  });

  it("allowed: 200 without a body, the identity headers and the checked target in normal form; Authorization only where the route forwards it", () => {
    const answer = entrance.answer(allowance(), request);
    expect(answer).toEqual({
      status: 200,
      headers: {
        "cache-control": "no-store",
        "x-gatehouse-subject": "alice",
        "x-gatehouse-client": "web",
        "x-gatehouse-scope": "read",
        "x-gatehouse-target": "/api/notes?x=1",
      },
      body: "",
    });
    const forwarding = entrance.answer(allowance({ removeHeaders: ["x-gatehouse-subject"] }), request);
    expect(forwarding.headers["x-gatehouse-authorization"]).toBe("Bearer abc");
  });

  it("passthrough: 200 with no identity", () => {
    const answer = entrance.answer(allowance({ outcome: "passthrough", route: "(passthrough)", setHeaders: {} }), request);
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.headers).sort()).toEqual(["cache-control", "x-gatehouse-target"]);
  });

  it.each([
    [401, "missing_token", undefined, 'Bearer realm="notes-api"', 401],
    [401, "invalid_token", "invalid_token", 'Bearer realm="notes-api", error="invalid_token"', 401],
    [403, "insufficient_scope", "insufficient_scope", 'Bearer realm="notes-api", error="insufficient_scope", scope="read"', 403],
  ] as const)("%i %s passes through as it is, challenge included (RFC 6750 §3)", (status, outcome, error, challenge, expected) => {
    const answer = entrance.answer(refusal(status, outcome, error, { "www-authenticate": challenge }), request);
    expect(answer.status).toBe(expected);
    expect(answer.headers["www-authenticate"]).toBe(challenge);
  });

  it("503 (the token cannot be checked now) stays 503 with Retry-After: never a pass", () => {
    const answer = entrance.answer(refusal(503, "unavailable", "temporarily_unavailable", { "retry-after": "1" }), request);
    expect(answer.status).toBe(503);
    expect(answer.headers["retry-after"]).toBe("1");
  });

  it("a 400 of the sidecar (a path trick, a malformed request) is 403 invalid_request: nginx would turn a 400 into a 500", () => {
    const answer = entrance.answer(
      refusal(400, "bad_request", "invalid_request", { "www-authenticate": 'Bearer realm="notes-api", error="invalid_request", error_description="encoded dot segments are not accepted"' }),
      request,
    );
    expect(answer.status).toBe(403);
    expect(answer.headers["www-authenticate"]).toContain('error="invalid_request"');
  });

  it("no route (the sidecar's 404) is 403 insufficient_scope, never 404: nginx would turn a 404 into a 500", () => {
    const answer = entrance.answer(refusal(404, "not_found", "not_found"), request);
    expect(answer.status).toBe(403);
    expect(answer.headers["www-authenticate"]).toBe('Bearer realm="notes-api", error="insufficient_scope", error_description="no route of the guard covers this request"');
  });
});
