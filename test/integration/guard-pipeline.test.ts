import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { SECRETS, basic } from "../support/authz.js";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { freePort } from "../support/redis-server.js";
import { bearer, startGuardGateway, startGuardStack, type GuardGateway, type GuardStack } from "./guard-fixtures.js";

/**
 * The guard's pipeline end to end, all real: an authz service on Redis, the
 * gateway, and an echo upstream that records what reached it.
 */

let s: GuardStack;
let tokens: Record<"read" | "write" | "admin" | "readAdmin" | "all", string>;
let refreshToken: string;
const deadPort = await freePort();

beforeAll(async () => {
  s = await startGuardStack({
    redisUrl: inject("redisUrl"),
    patch: (file, upstream) => {
      file.routes = [
        { name: "notes-read", methods: ["GET"], path: "/api/notes/**", scopes: ["read"], upstream },
        { name: "notes-write", methods: ["POST", "PUT", "DELETE"], path: "/api/notes/**", scopes: ["write"], upstream },
        { name: "admin", path: "/api/admin/**", scopes: ["admin"], upstream },
        { name: "report", methods: ["GET"], path: "/api/report", scopes: ["read", "admin"], scopeMode: "all", upstream, errorStyle: "problem+json" },
        { name: "forwarded", path: "/api/forward/**", scopes: ["read"], upstream, forwardAuthorization: true },
        { name: "loose", methods: ["GET"], path: "/Loose/*/items", scopes: ["read"], upstream, caseSensitive: false },
        { name: "overlap-any", path: "/api/overlap/**", scopes: ["read"], upstream },
        { name: "overlap-get", methods: ["GET"], path: "/api/overlap/x", scopes: ["write"], upstream },
        { name: "dead", path: "/dead/**", scopes: ["read"], upstream: `http://127.0.0.1:${deadPort}` },
      ];
      const scopes = file.scopes as Array<Record<string, unknown>>;
      // The seeds' form: a scope lists the resources it opens; they go to the default upstream.
      scopes.find((x) => x.name === "read")!.routes = ["GET /docs/**"];
      scopes.find((x) => x.name === "write")!.routes = ["PUT /docs/**"];
      file.gateway = { guard: { realm: "notes-api", defaultUpstream: upstream, upstreamTimeoutMs: 2_000 } };
    },
  });
  const [read, write, admin, readAdmin, all] = await Promise.all([
    s.tokens("read"),
    s.tokens("write"),
    s.tokens("admin"),
    s.tokens("read admin"),
    s.tokens("read write admin"),
  ]);
  tokens = { read: read.accessToken, write: write.accessToken, admin: admin.accessToken, readAdmin: readAdmin.accessToken, all: all.accessToken };
  refreshToken = read.refreshToken;
});
afterAll(() => s.close());
beforeEach(() => {
  s.upstream.received.length = 0;
});

const get = (path: string, headers: Record<string, string> = {}, method = "GET") => fetch(`${s.gateway.url}${path}`, { method, headers });

/**
 * A request with the target exactly as written: fetch() and URL would
 * normalise `..`, `%2e` and `//` before the gateway ever saw them.
 */
function rawRequest(target: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(s.gateway.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path: target, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("RFC 6750 §3: failures at a guarded route", () => {
  it("§3.1: a request without a token gets 401 and a challenge with the realm and no error code", async () => {
    const response = await get("/api/notes/1");
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="notes-api"');
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(s.upstream.received).toHaveLength(0);
  });

  it("a request with another scheme (Basic) is a request without a bearer token", async () => {
    const response = await get("/api/notes/1", basic("web", SECRETS.web).headers);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="notes-api"');
  });

  it.each([
    ["an unknown token", "Bearer not-a-real-token"],
    ["a token that is not a b64token", "Bearer abc def"],
    ["an empty Bearer credential", "Bearer"],
    ["a forged JWT", "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"],
  ])("§3.1 invalid_token: %s gets 401 with error=\"invalid_token\"", async (_name, authorization) => {
    const response = await get("/api/notes/1", { authorization });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm="notes-api", error="invalid_token", error_description="[^"]+"$/);
    expect(await response.json()).toMatchObject({ error: "invalid_token" });
    expect(s.upstream.received).toHaveLength(0);
  });

  it("a refresh token is not a bearer token: 401 invalid_token", async () => {
    const response = await get("/api/notes/1", bearer(refreshToken));
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it("§3.1 insufficient_scope: a live token without the route's scope gets 403 with the scope it needs", async () => {
    const response = await get("/api/notes/1", bearer(tokens.write));
    expect(response.status).toBe(403);
    expect(response.headers.get("www-authenticate")).toBe(
      'Bearer realm="notes-api", error="insufficient_scope", error_description="the access token lacks the scope read", scope="read"',
    );
    expect(s.upstream.received).toHaveLength(0);
  });

  it("scopeMode all: one of two scopes is not enough; both are; failures in problem+json (RFC 9457) when the route says so", async () => {
    const partial = await get("/api/report", bearer(tokens.read));
    expect(partial.status).toBe(403);
    expect(partial.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(partial.headers.get("www-authenticate")).toContain('scope="read admin"');
    expect(await partial.json()).toMatchObject({ status: 403, title: "insufficient_scope" });
    expect((await get("/api/report", bearer(tokens.readAdmin))).status).toBe(200);
  });

  it("scopeMode any (the default): any one of the route's scopes opens it", async () => {
    // /docs/** GET comes from scopes[].routes of `read`; PUT /docs/** from `write`.
    expect((await get("/docs/a", bearer(tokens.read))).status).toBe(200);
    expect((await get("/docs/a", bearer(tokens.write))).status).toBe(403);
    expect((await get("/docs/a", bearer(tokens.write), "PUT")).status).toBe(200);
    expect((await get("/docs/a", bearer(tokens.read), "PUT")).status).toBe(403);
  });

  it("RFC 6750 §2.3 is not accepted: a token in the query string is refused with 400 invalid_request, and never forwarded", async () => {
    const response = await get(`/api/notes/1?access_token=${tokens.read}`);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_request" });
    const both = await get(`/api/notes/1?x=1&access_token=${tokens.read}`, bearer(tokens.read));
    expect(both.status).toBe(400);
    expect(s.upstream.received).toHaveLength(0);
  });

  it("two Authorization headers are refused with 400 invalid_request (node would silently keep one)", async () => {
    const url = new URL(s.gateway.url);
    const response = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `GET /api/notes/1 HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${tokens.write}\r\nAuthorization: Bearer ${tokens.read}\r\nConnection: close\r\n\r\n`,
        );
      });
      let text = "";
      socket.on("data", (chunk) => (text += chunk.toString()));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(response).toMatch(/^HTTP\/1\.1 400 /);
    expect(response).toContain("invalid_request");
    expect(s.upstream.received).toHaveLength(0);
  });

  it("an unmatched path is 404 (deny by default) and never reaches an upstream", async () => {
    const response = await get("/nothing/here", bearer(tokens.all));
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: "not_found" });
    // A method the route does not list is unmatched too.
    expect((await get("/api/report", bearer(tokens.all), "DELETE")).status).toBe(404);
    expect(s.upstream.received).toHaveLength(0);
  });

  it("two rules covering one request: denied with 500 (a configuration problem), never proxied", async () => {
    const response = await get("/api/overlap/x", bearer(tokens.all));
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: "server_error" });
    expect(s.upstream.received).toHaveLength(0);
    // Where only one of them matches, it applies.
    expect((await get("/api/overlap/y", bearer(tokens.read))).status).toBe(200);
  });
});

describe("what reaches the upstream", () => {
  it("a live token with the scope is proxied with the verified identity, and the query string unchanged", async () => {
    const response = await get("/api/notes/1?b=2&a=%2F%20x&a=3", bearer(tokens.read));
    expect(response.status).toBe(200);
    const seen = s.upstream.last()!;
    expect(seen.method).toBe("GET");
    expect(seen.url).toBe("/api/notes/1?b=2&a=%2F%20x&a=3");
    expect(seen.headers["x-gatehouse-subject"]).toBe("user-alice");
    expect(seen.headers["x-gatehouse-client"]).toBe("web");
    expect(seen.headers["x-gatehouse-scope"]).toBe("read");
    // The token is not forwarded unless the route says so.
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers["x-request-id"]).toMatch(/./);
  });

  it("forwardAuthorization: the route's upstream gets the caller's Authorization header", async () => {
    expect((await get("/api/forward/x", bearer(tokens.read))).status).toBe(200);
    expect(s.upstream.last()!.headers.authorization).toBe(`Bearer ${tokens.read}`);
  });

  it("identity headers the caller sent are removed, in any case and with _ for -; the verified ones replace them", async () => {
    const response = await rawRequest("/api/notes/1", {
      ...bearer(tokens.read),
      "X-Gatehouse-Subject": "admin",
      "x-gatehouse-client": "root-client",
      "X-GATEHOUSE-SCOPE": "admin write",
      X_Gatehouse_Subject: "admin-underscored",
      "x_gatehouse_scope": "admin",
    });
    expect(response.status).toBe(200);
    const seen = s.upstream.last()!;
    expect(seen.headers["x-gatehouse-subject"]).toBe("user-alice");
    expect(seen.headers["x-gatehouse-client"]).toBe("web");
    expect(seen.headers["x-gatehouse-scope"]).toBe("read");
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n.replace(/_/g, "-").startsWith("x-gatehouse-")).sort()).toEqual(["x-gatehouse-client", "x-gatehouse-scope", "x-gatehouse-subject"]);
    expect(JSON.stringify(seen.rawHeaders)).not.toContain("admin");
  });

  it("a caller's identity headers are removed even on a request that is refused before anything reaches the upstream", async () => {
    const response = await get("/api/notes/1", { "x-gatehouse-subject": "admin" });
    expect(response.status).toBe(401);
    expect(s.upstream.received).toHaveLength(0);
  });

  it("X-Forwarded-For/-Proto/-Host are the gateway's own findings: a caller's claims are replaced (no trusted proxy)", async () => {
    await get("/api/notes/1", { ...bearer(tokens.read), "x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https", "x-forwarded-host": "evil.test", forwarded: "for=6.6.6.6", "x-real-ip": "6.6.6.6" });
    const seen = s.upstream.last()!;
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen.headers["x-forwarded-proto"]).toBe("http");
    expect(seen.headers["x-forwarded-host"]).toBe(new URL(s.gateway.url).host);
    expect(seen.headers.forwarded).toBeUndefined();
    expect(seen.headers["x-real-ip"]).toBeUndefined();
  });

  it("RFC 9110 §7.6.1: hop-by-hop request fields, and those the Connection header names, are not forwarded", async () => {
    const response = await rawRequest("/api/notes/1", {
      ...bearer(tokens.read),
      connection: "keep-alive, x-drop-me",
      "x-drop-me": "1",
      "keep-alive": "timeout=5",
      te: "trailers",
      "proxy-authorization": "Basic eA==",
      "x-keep-me": "1",
    });
    expect(response.status).toBe(200);
    const seen = s.upstream.last()!;
    expect(seen.headers["x-drop-me"]).toBeUndefined();
    expect(seen.headers["keep-alive"]).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    expect(seen.headers["proxy-authorization"]).toBeUndefined();
    expect(seen.headers["x-keep-me"]).toBe("1");
  });

  it("RFC 9110 §7.6.1: the upstream's hop-by-hop response fields are not passed back; end-to-end ones are", async () => {
    const response = await rawRequest("/api/notes/1?echo-connection=x-internal&echo-header=x-internal:secret&echo-header=keep-alive:timeout=99&echo-header=x-public:yes", bearer(tokens.read));
    expect(response.status).toBe(200);
    expect(response.headers["x-internal"]).toBeUndefined();
    expect(response.headers["keep-alive"]).not.toBe("timeout=99");
    expect(response.headers["x-public"]).toBe("yes");
  });

  it("the upstream's status and body come back as they are", async () => {
    const response = await get("/api/notes/1?echo-status=418", bearer(tokens.read));
    expect(response.status).toBe(418);
    expect(await response.json()).toMatchObject({ method: "GET" });
  });
});

describe("path normalisation: no spelling of a path reaches a route under a weaker rule", () => {
  // `/api/admin/**` needs admin; `/api/notes/**` needs read. The read token must never reach admin resources.
  it.each([
    // [raw target, expected status for a read-only token, the path the upstream must see if proxied]
    ["/api/notes/../admin/users", 403, undefined],
    ["/api/notes/%2e%2e/admin/users", 400, undefined],
    ["/api/notes/%2E%2E/admin/users", 400, undefined],
    ["/api/notes/.%2e/admin/users", 400, undefined],
    ["/api/notes/..%2fadmin/users", 400, undefined],
    ["/api/notes%2f..%2fadmin/users", 400, undefined],
    ["/api/notes/..%5cadmin/users", 400, undefined],
    ["/api/notes/..\\admin/users", 400, undefined],
    ["/api/notes/%252e%252e/admin/users", 400, undefined],
    ["/api/notes/%c0%ae%c0%ae/admin/users", 400, undefined],
    ["/api/notes;x=1/../admin/users", 400, undefined],
    ["/api/admin;/users", 400, undefined],
    ["/api/admin%3b/users", 400, undefined],
    ["/api/admin./users", 400, undefined],
    ["/api/admin%00/users", 400, undefined],
    ["/api/notes/%00", 400, undefined],
    ["/api/ADMIN/users", 400, undefined],
    ["/API/admin/users", 400, undefined],
    ["/api/%61dmin/users", 403, undefined],
    ["//api//admin//users", 403, undefined],
    ["/api/./admin/users", 403, undefined],
    ["/api/notes/../../api/admin/users", 403, undefined],
    ["/../api/admin/users", 400, undefined],
    ["/api/notes/%2561dmin", 400, undefined],
    // Spellings that normalise to a read route are proxied, as the normal form.
    ["//api///notes//1", 200, "/api/notes/1"],
    ["/api/notes/./1", 200, "/api/notes/1"],
    ["/api/admin/../notes/1", 200, "/api/notes/1"],
    ["/api/%6eotes/%31", 200, "/api/notes/1"],
    ["/api/notes/%7e%41%2D", 200, "/api/notes/~A-"],
    ["/api/notes/caf%c3%a9", 200, "/api/notes/caf%C3%A9"],
    ["/api/notes/a%20b", 200, "/api/notes/a%20b"],
    ["/api/notes/x/..", 200, "/api/notes/"],
  ])("%s → %i", async (target, status, forwarded) => {
    const response = await rawRequest(target, bearer(tokens.read));
    expect(response.status, response.body).toBe(status);
    if (status === 200) {
      expect(s.upstream.last()!.path).toBe(forwarded);
      expect(s.upstream.received).toHaveLength(1);
    } else {
      expect(s.upstream.received).toHaveLength(0);
    }
    if (status === 400) {
      // The guard answers invalid_request; fastify's router refuses escapes it cannot decode (FST_ERR_BAD_URL) before.
      const body = JSON.parse(response.body) as { error: string; code?: string };
      expect(body.error === "invalid_request" || body.code === "FST_ERR_BAD_URL", response.body).toBe(true);
    }
  });

  it("a case-insensitive route matches any letter case, and the upstream gets the path as normalised", async () => {
    expect((await rawRequest("/loose/A/ITEMS", bearer(tokens.read))).status).toBe(200);
    expect(s.upstream.last()!.path).toBe("/loose/A/ITEMS");
    expect((await rawRequest("/LOOSE/a/items", bearer(tokens.read))).status).toBe(200);
  });

  it("absolute-form and asterisk-form request targets are refused", async () => {
    expect((await rawRequest(`http://127.0.0.1/api/notes/1`, bearer(tokens.read))).status).toBe(400);
    expect((await rawRequest("*", bearer(tokens.read), "OPTIONS")).status).toBe(400);
    expect(s.upstream.received).toHaveLength(0);
  });
});

describe("the gateway's own endpoints are never guarded or proxied", () => {
  it("their canonical paths are served by the gateway itself, whatever a catch-all rule would say", async () => {
    expect((await get("/healthz")).status).toBe(200);
    expect((await get("/metrics")).status).toBe(200);
    expect(s.upstream.received).toHaveLength(0);
  });

  it.each(["/%6fauth2/token", "/oauth2/tok%65n", "//oauth2/token", "/x/../oauth2/token", "/oauth2/./token"])(
    "another spelling, %s, is refused with 400 instead of reaching the endpoint or an upstream",
    async (target) => {
      const response = await rawRequest(target, { "content-type": "application/x-www-form-urlencoded" }, "POST");
      expect(response.status).toBe(400);
      expect(JSON.parse(response.body)).toMatchObject({ error: "invalid_request" });
      expect(s.upstream.received).toHaveLength(0);
    },
  );

  it("Expect: 100-continue to the gateway's own endpoint still gets its 100 (the guard only holds it back for guarded routes)", async () => {
    const url = new URL(s.gateway.url);
    const body = "grant_type=refresh_token&refresh_token=nope";
    const result = await new Promise<{ continued: boolean; status: number }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          method: "POST",
          path: s.gateway.config.paths.token,
          headers: { ...basic("web", SECRETS.web).headers, expect: "100-continue", "content-type": "application/x-www-form-urlencoded", "content-length": String(body.length) },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ continued, status: res.statusCode ?? 0 }));
        },
      );
      req.on("continue", () => {
        continued = true;
        req.end(body);
      });
      req.on("error", reject);
    });
    expect(result.continued).toBe(true);
    expect(result.status).toBe(400);
  });

  it("a method the endpoint does not serve is 404, not proxied", async () => {
    expect((await get("/healthz", {}, "POST")).status).toBe(404);
    expect(s.upstream.received).toHaveLength(0);
  });
});

describe("metrics", () => {
  it("count requests by route and outcome, cache hits and misses, and introspection latency", async () => {
    const m = s.gateway.metric;
    const allowed = await m("gatehouse_guard_requests_total", { route: "notes-read", outcome: "allowed" });
    const scopeRefused = await m("gatehouse_guard_requests_total", { route: "notes-read", outcome: "insufficient_scope" });
    const hits = await m("gatehouse_guard_cache_hits_total");
    const introspections = await m("gatehouse_guard_introspection_duration_seconds_count", { outcome: "active" });
    const { accessToken } = await s.tokens("read");
    await get("/api/notes/m", bearer(accessToken));
    await get("/api/notes/m", bearer(accessToken));
    await get("/api/notes/m", bearer(tokens.write));
    expect(await m("gatehouse_guard_requests_total", { route: "notes-read", outcome: "allowed" })).toBe(allowed + 2);
    expect(await m("gatehouse_guard_requests_total", { route: "notes-read", outcome: "insufficient_scope" })).toBe(scopeRefused + 1);
    expect(await m("gatehouse_guard_introspection_duration_seconds_count", { outcome: "active" })).toBe(introspections + 1);
    expect(await m("gatehouse_guard_cache_hits_total")).toBeGreaterThanOrEqual(hits + 2);
    expect(await m("gatehouse_guard_revocation_feed_up")).toBe(1);
  });

  it("a scrape never shows a token", async () => {
    const text = await (await get("/metrics")).text();
    for (const token of Object.values(tokens)) expect(text).not.toContain(token.slice(-20));
  });
});

describe("behind a trusted proxy (gateway.trustedProxies)", () => {
  let gateway: GuardGateway;
  beforeAll(async () => {
    gateway = await startGuardGateway({
      authzUrl: s.authz.running.url,
      redisUrl: s.redisUrl,
      patch: (file) => {
        file.routes = [{ name: "notes", path: "/api/notes/**", scopes: ["read"], upstream: s.upstream.url }];
        file.gateway = { trustedProxies: ["127.0.0.1"] };
      },
    });
  });
  afterAll(() => gateway.close());

  it("X-Forwarded-For keeps the trusted proxy's chain and adds the proxy itself; -Proto and -Host are the proxy's", async () => {
    const response = await fetch(`${gateway.url}/api/notes/1`, {
      headers: { ...bearer(tokens.read), "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https", "x-forwarded-host": "api.example.com" },
    });
    expect(response.status).toBe(200);
    const seen = s.upstream.last()!;
    expect(seen.headers["x-forwarded-for"]).toBe("203.0.113.7, 127.0.0.1");
    expect(seen.headers["x-forwarded-proto"]).toBe("https");
    expect(seen.headers["x-forwarded-host"]).toBe("api.example.com");
  });
});

describe("the unmatched passthrough", () => {
  let publicUpstream: EchoUpstream;
  let gateway: GuardGateway;
  beforeAll(async () => {
    publicUpstream = await startEchoUpstream();
    gateway = await startGuardGateway({
      authzUrl: s.authz.running.url,
      redisUrl: s.redisUrl,
      patch: (file) => {
        file.routes = [
          { name: "private", path: "/private/**", scopes: ["admin"], upstream: s.upstream.url },
          { name: "readonly", methods: ["GET"], path: "/readonly/**", scopes: ["read"], upstream: s.upstream.url },
        ];
        file.gateway = { guard: { unmatched: { passthrough: publicUpstream.url } } };
      },
    });
  });
  afterAll(async () => {
    await gateway.close();
    await publicUpstream.close();
  });

  it("takes unmatched paths to the public upstream without a check, without the caller's token or identity headers", async () => {
    const response = await fetch(`${gateway.url}/public/page?x=1`, { headers: { ...bearer(tokens.read), "x-gatehouse-subject": "admin" } });
    expect(response.status).toBe(200);
    const seen = publicUpstream.last()!;
    expect(seen.url).toBe("/public/page?x=1");
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers["x-gatehouse-subject"]).toBeUndefined();
  });

  it("never takes a guarded path, nor a case or encoding variant of one", async () => {
    publicUpstream.received.length = 0;
    expect((await fetch(`${gateway.url}/private/x`)).status).toBe(401);
    const url = new URL(gateway.url);
    for (const target of ["/PRIVATE/x", "/Private/x", "/%70rivate/x", "/private%2fx", "/public/../private/x"]) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: url.hostname, port: url.port, path: target, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      });
      expect([400, 401], target).toContain(status);
    }
    expect(publicUpstream.received).toHaveLength(0);
    expect(s.upstream.received).toHaveLength(0);
  });

  it("a path a rule covers for other methods is 404 for the rest, not public: a GET-only rule does not make POST unchecked", async () => {
    publicUpstream.received.length = 0;
    const response = await fetch(`${gateway.url}/readonly/x`, { method: "POST", body: "x" });
    expect(response.status).toBe(404);
    expect(publicUpstream.received).toHaveLength(0);
    expect((await fetch(`${gateway.url}/readonly/x`, { headers: bearer(tokens.read) })).status).toBe(200);
  });
});
