import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { buildApp } from "../../gateway/app.js";
import { DEFAULT_OVERRIDE_HEADERS, type GatewayConfig } from "../../gateway/config.js";
import { createGatewayDeps } from "../../gateway/deps.js";
import {
  GUARD_DECISION_TABLE,
  sendRawRequest,
  startGuardDecisionFixture,
  type DecisionCase,
  type DecisionExpectation,
  type GuardDecisionFixture,
} from "../support/guard-decision-table.js";
import { PATH_REWRITING_HEADERS, README_NGINX_OPTIONS, nginxGuardSite, startNginx, type RunningNginx } from "../support/nginx.js";
import { ROOT } from "../support/process.js";
import { freePort } from "../support/redis-server.js";

/**
 * Entrance 2, the check endpoint, behind a real nginx (Debian's package):
 * `auth_request` to gatehouse, `auth_request_set` copying the identity it
 * verified onto the request to an echo upstream, with the configuration the
 * README shows (test/support/nginx.ts renders both). The shared decision
 * table (test/support/guard-decision-table.ts) must get the sidecar's
 * verdicts, as far as nginx can pass them on:
 *
 * - nginx passes only 2xx, 401 and 403 of the check on; the check answers
 *   the sidecar's 400 (path and header tricks) as 403 `invalid_request` and
 *   "no route" (the sidecar's 404) as 403 `insufficient_scope`, so that
 *   neither becomes nginx's 500; a 401's challenge nginx copies itself, a
 *   403's the configuration copies (error_page);
 * - the ambiguous route table stays a 500;
 * - nginx itself refuses a few tricks before gatehouse sees them (listed in
 *   NGINX_REFUSES): fine, as long as nothing reaches the upstream;
 * - the client's Connection field is nginx's business, not gatehouse's: the
 *   subrequest carries nginx's own hop, and nginx never forwards the
 *   client's Connection (proxy_set_header Connection ""), so a `Connection:
 *   host` trick cannot make the upstream lose its Host. Those cases must
 *   either be refused or reach the upstream with Host, the verified identity
 *   and Authorization only where the route forwards it.
 */

/**
 * Tricks nginx (1.22) answers 400 itself, before any auth_request, so that
 * neither gatehouse nor the upstream sees them: a path above the root, an
 * encoded NUL in the path, and a repeated Authorization field ("client sent
 * duplicate header line").
 */
const NGINX_REFUSES = new Set(["climbing above the root", "an encoded NUL", "RFC 6750 §3.1: two Authorization fields are invalid_request"]);

let table: GuardDecisionFixture;
let app: FastifyInstance;
let config: GatewayConfig;
let gatehouse: string;
let nginx: RunningNginx;
let checks = 0;

beforeAll(async () => {
  table = await startGuardDecisionFixture({ redisUrl: inject("redisUrl") });
  const [port, nginxPort] = await Promise.all([freePort(), freePort()]);
  // nginx reaches the check endpoint over loopback: the only proxy it believes.
  config = await table.gatewayConfig(port, (file) => ((file.gateway as Record<string, unknown>).trustedProxies = ["127.0.0.1"]));
  const deps = createGatewayDeps(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }));
  app = await buildApp(deps);
  await app.listen({ host: "127.0.0.1", port });
  // Every request nginx sends to the check endpoint, whichever way the gateway serves it (beneath fastify or through it).
  app.server.prependListener("request", (request: { url?: string }) => {
    if (request.url === config.paths.check) checks++;
  });
  gatehouse = `http://127.0.0.1:${port}`;
  nginx = await startNginx({
    port: nginxPort,
    gatehouse: `127.0.0.1:${port}`,
    checkPath: config.paths.check,
    upstream: new URL(table.upstream.url).host,
    identityHeaders: config.guard.identityHeaders,
  });
});
afterAll(async () => {
  await nginx?.close();
  await app?.close();
  await table?.close();
});
beforeEach(() => {
  table.upstream.received.length = 0;
  checks = 0;
});

/** The verdict as nginx can pass it on (see the module comment). */
function throughNginx(e: DecisionExpectation): DecisionExpectation {
  if (e.status === 400) return { ...e, status: 403 };
  if (e.status === 404) return { ...e, status: 403, error: "insufficient_scope", challenge: true };
  return e;
}

const cases = GUARD_DECISION_TABLE;

describe("the shared decision table through nginx auth_request", () => {
  it("nginx runs the README's site, with this test's addresses", () => {
    const site = nginxGuardSite({
      ...README_NGINX_OPTIONS,
      gatehouse: new URL(gatehouse).host,
      upstream: new URL(table.upstream.url).host,
      listen: `127.0.0.1:${nginx.port}`,
    });
    expect(nginx.config).toContain(site.split("\n").map((line) => (line === "" ? "" : `    ${line}`)).join("\n"));
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c: DecisionCase) => {
    const request = table.resolve(c);
    const response = await sendRawRequest(nginx.url, request);
    const upstream = table.upstream.last();
    const label = `${c.name}: ${response.status} ${response.body.slice(0, 200)}\n${nginx.errorLog().slice(-500)}`;

    if (NGINX_REFUSES.has(c.name)) {
      expect(c.expect.identity, label).toBe(false);
      expect(response.status, label).toBe(400);
      expect(checks, `${label}: nginx refused it before asking gatehouse`).toBe(0);
      expect(upstream, label).toBeUndefined();
      return;
    }
    if (c.connectionOption === true) {
      // The client's Connection field never reaches gatehouse or the upstream through nginx.
      if (response.status !== 200) {
        expect(upstream, label).toBeUndefined();
        return;
      }
      expect(upstream, label).toBeDefined();
      expect(upstream!.headers.host, label).toBeDefined();
      expect(upstream!.headers["x-gatehouse-subject"], label).toBe("user-alice");
      expect(upstream!.headers.connection ?? "", label).not.toMatch(/host|authorization|gatehouse/i);
      return;
    }

    const expected = throughNginx(c.expect);
    // nginx answers refusals with its own page: the verdict is in the status and the challenge it copied.
    table.verify({ ...c, expect: expected }, {
      status: response.status,
      wwwAuthenticate: response.headers["www-authenticate"],
      body: "",
      upstream,
    });
    expect(checks, label).toBe(1);
    expect(table.upstream.received.length, label).toBe(expected.identity ? 1 : 0);
    // The upstream gets the target gatehouse checked, in normal form (X-Gatehouse-Target), as from the sidecar.
    if (expected.upstreamPath !== undefined) expect(upstream!.path, label).toBe(expected.upstreamPath);
    if (expected.identity) {
      expect(upstream!.search, label).toBe(new URL(request.target, "http://x").search === "" ? "" : request.target.slice(request.target.indexOf("?")));
      expect(upstream!.headers["x-gatehouse-target"], label).toBeUndefined();
      expect(upstream!.headers["x-gatehouse-authorization"], label).toBeUndefined();
    }
  });
});

describe("the check endpoint behind nginx", () => {
  it("cannot be reached from outside: nginx's location is internal", async () => {
    for (const target of ["/.gatehouse/check", "/%2egatehouse/check", "/x/../.gatehouse/check"]) {
      const response = await sendRawRequest(nginx.url, { method: "GET", target, headers: [["X-Original-URI", "/api/notes/1"], ["X-Original-Method", "GET"], ["Authorization", `Bearer ${table.tokens.read}`]] });
      expect(response.status, target).toBe(404);
    }
    expect(table.upstream.received).toHaveLength(0);
  });

  it("answers the same beneath fastify (the exact path, with a query) and through fastify's route (Expect: 100-continue)", async () => {
    const ask = (target: string, extra: Array<[string, string]>, token: string | undefined) =>
      sendRawRequest(gatehouse, {
        method: "GET",
        target,
        headers: [["X-Original-Method", "GET"], ["X-Original-URI", "/api/notes/1"], ...(token === undefined ? [] : ([["Authorization", `Bearer ${token}`]] as Array<[string, string]>)), ...extra],
      });
    for (const [target, extra] of [
      [config.paths.check, []],
      [`${config.paths.check}?from=nginx`, []],
      [config.paths.check, [["Expect", "100-continue"]]],
    ] as Array<[string, Array<[string, string]>]>) {
      const allowed = await ask(target, extra, table.tokens.read);
      expect(allowed.status, target).toBe(200);
      expect(allowed.headers["x-gatehouse-subject"], target).toBe("user-alice");
      const refused = await ask(target, extra, undefined);
      expect(refused.status, target).toBe(401);
      expect(refused.headers["www-authenticate"], target).toMatch(/^Bearer realm="decision-table"/);
    }
    expect(table.upstream.received).toHaveLength(0);
  });

  it("believes only trusted proxies: the same check from another peer is refused with 403", async () => {
    const headers = { "x-original-method": "GET", "x-original-uri": "/api/notes/1", authorization: `Bearer ${table.tokens.read}` };
    const trusted = await app.inject({ method: "GET", url: config.paths.check, headers, remoteAddress: "127.0.0.1" });
    expect(trusted.statusCode).toBe(200);
    expect(trusted.headers["x-gatehouse-subject"]).toBe("user-alice");
    expect(trusted.body).toBe("");
    const stranger = await app.inject({ method: "GET", url: config.paths.check, headers, remoteAddress: "192.0.2.9" });
    expect(stranger.statusCode).toBe(403);
    expect(stranger.headers["www-authenticate"]).toContain('error="invalid_request"');
    expect(stranger.headers["x-gatehouse-subject"]).toBeUndefined();
  });

  it("seed 002 (requireHttps): the original request must have used https, as the trusted proxy says; otherwise 403, which nginx passes on", async () => {
    const strict = await table.gatewayConfig(await freePort(), (file) => {
      file.issuer = "https://gatehouse.test";
      file.requireHttps = true;
      (file.gateway as Record<string, unknown>).trustedProxies = ["10.0.0.1"];
    });
    const strictApp = await buildApp(createGatewayDeps(strict, pino({ level: "silent" })));
    try {
      const ask = (proto: string | undefined) =>
        strictApp.inject({
          method: "GET",
          url: strict.paths.check,
          remoteAddress: "10.0.0.1",
          headers: { "x-original-method": "GET", "x-original-uri": "/api/notes/1", authorization: `Bearer ${table.tokens.read}`, ...(proto === undefined ? {} : { "x-forwarded-proto": proto }) },
        });
      expect((await ask("https")).statusCode).toBe(200);
      for (const proto of ["http", undefined]) {
        const refused = await ask(proto);
        expect(refused.statusCode, String(proto)).toBe(403);
        expect(refused.headers["www-authenticate"]).toBe('Bearer realm="decision-table", error="invalid_request", error_description="the original request must use https"');
      }
    } finally {
      await strictApp.close();
    }
  });

  it("a POST is checked as a POST (nginx's subrequest is a GET; X-Original-Method carries the method), and its body still reaches the upstream", async () => {
    const response = await fetch(`${nginx.url}/api/notes/1`, { method: "POST", headers: { authorization: `Bearer ${table.tokens.read}`, "content-type": "application/json" }, body: "{}" });
    expect(response.status).toBe(403);
    expect(table.upstream.received).toHaveLength(0);
    const allowed = await fetch(`${nginx.url}/api/notes/1`, { method: "POST", headers: { authorization: `Bearer ${table.tokens.write}`, "content-type": "application/json" }, body: '{"a":1}' });
    expect(allowed.status).toBe(200);
    expect(table.upstream.last()!.body.toString()).toBe('{"a":1}');
  });

  it("a token that cannot be checked (the authz service unreachable) is 503 with Retry-After through nginx, never a pass", async () => {
    const [port, nginxPort, deadPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const unreachable = await table.gatewayConfig(port, (file) => {
      const gateway = file.gateway as { trustedProxies?: string[]; authz: Record<string, unknown> };
      gateway.trustedProxies = ["127.0.0.1"];
      gateway.authz = { ...gateway.authz, endpoints: [`http://127.0.0.1:${deadPort}`], timeoutMs: 500 };
    });
    const cut = await buildApp(createGatewayDeps(unreachable, pino({ level: "silent" })));
    await cut.listen({ host: "127.0.0.1", port });
    const front = await startNginx({ port: nginxPort, gatehouse: `127.0.0.1:${port}`, checkPath: unreachable.paths.check, upstream: new URL(table.upstream.url).host, identityHeaders: unreachable.guard.identityHeaders });
    try {
      const response = await sendRawRequest(front.url, { method: "GET", target: "/api/notes/1", headers: [["Authorization", `Bearer ${table.tokens.read}`]] });
      expect(response.status).toBe(503);
      expect(response.headers["retry-after"]).toBe("1");
      expect(table.upstream.received).toHaveLength(0);
    } finally {
      await front.close();
      await cut.close();
    }
  });

  it("README: the nginx snippet is the configuration this test runs", () => {
    const readme = readFileSync(`${ROOT}README.md`, "utf8");
    expect(readme).toContain(nginxGuardSite(README_NGINX_OPTIONS));
  });

  it("the snippet clears exactly the override headers the sidecar removes by default (guard.overrideHeaders)", () => {
    expect(PATH_REWRITING_HEADERS.map((name) => name.toLowerCase())).toEqual(DEFAULT_OVERRIDE_HEADERS);
  });
});

describe("the check endpoint as Traefik forwardAuth and Caddy forward_auth call it", () => {
  // Both send a GET to the check with X-Forwarded-Method/-Uri/-Host and the original fields.
  const ask = (headers: Record<string, string>) => app.inject({ method: "GET", url: config.paths.check, remoteAddress: "127.0.0.1", headers });

  it("allowed: 200, no body, the identity to copy (authResponseHeaders / copy_headers)", async () => {
    const response = await ask({ "x-forwarded-method": "GET", "x-forwarded-uri": "/api/notes/./1?x=1", "x-forwarded-host": "notes.example", authorization: `Bearer ${table.tokens.read}` });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe("");
    expect(response.headers).toMatchObject({ "x-gatehouse-subject": "user-alice", "x-gatehouse-client": "web", "x-gatehouse-scope": "read", "x-gatehouse-target": "/api/notes/1?x=1" });
  });

  it("the method is the original one: a read token may not DELETE", async () => {
    const response = await ask({ "x-forwarded-method": "DELETE", "x-forwarded-uri": "/api/notes/1", authorization: `Bearer ${table.tokens.read}` });
    expect(response.statusCode).toBe(403);
    expect(response.headers["www-authenticate"]).toContain('error="insufficient_scope"');
  });

  it("a client that adds nginx's X-Original-URI behind Traefik is refused, not read either way", async () => {
    const response = await ask({ "x-forwarded-method": "GET", "x-forwarded-uri": "/api/admin/users", "x-original-uri": "/api/notes/1", "x-original-method": "GET", authorization: `Bearer ${table.tokens.read}` });
    expect(response.statusCode).toBe(403);
    expect(response.headers["www-authenticate"]).toContain('error="invalid_request"');
    expect(response.headers["x-gatehouse-subject"]).toBeUndefined();
  });

  it("no token: 401 with the RFC 6750 §3.1 challenge, passed on by Traefik and Caddy as it is", async () => {
    const response = await ask({ "x-forwarded-method": "GET", "x-forwarded-uri": "/api/notes/1" });
    expect(response.statusCode).toBe(401);
    expect(response.headers["www-authenticate"]).toBe('Bearer realm="decision-table"');
  });
});
