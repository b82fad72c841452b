import type { IncomingHttpHeaders } from "node:http";
import { describe, expect, it } from "vitest";
import { extractBearer, headerValue, isB64Token, tokenHash } from "../../gateway/guard/authenticate.js";
import { authorizeScopes, describeRequirement, requiredScope } from "../../gateway/guard/authorize.js";
import { INACTIVE, cacheExpiry, createIntrospectionCache, type Principal } from "../../gateway/guard/introspection-cache.js";
import { createIdentityMutation, createUpstreamHeaders, headerObject } from "../../gateway/guard/mutate.js";

/** The guard's pure steps after matching: bearer extraction, the cache, scope checks, header rewriting. */

const principal = (over: Partial<Principal> = {}): Principal => ({
  active: true,
  subject: "user-1",
  clientId: "web",
  scope: "read write",
  scopes: new Set(["read", "write"]),
  expiresAt: 1_000_000,
  jti: "jti-1",
  grantId: "grant-1",
  audience: ["https://api.test"],
  headerValues: { subject: "user-1", client: "web", scope: "read write" },
  ...over,
});

describe("extractBearer: RFC 6750 §2.1, the Authorization header only", () => {
  const raw = (headers: IncomingHttpHeaders) => Object.entries(headers).flatMap(([k, v]) => [k, String(v)]);
  it.each([
    [{ authorization: "Bearer abc.DEF-_~+/=" }, "", { kind: "token", token: "abc.DEF-_~+/=" }],
    [{ authorization: "bearer abc" }, "", { kind: "token", token: "abc" }],
    [{ authorization: "BEARER abc==" }, "", { kind: "token", token: "abc==" }],
    [{}, "", { kind: "none" }],
    [{ authorization: "Basic d2ViOnNlY3JldA==" }, "", { kind: "none" }],
    [{ authorization: "Bearerabc" }, "", { kind: "none" }],
    [{ authorization: "Bearer" }, "", { kind: "malformed" }],
    [{ authorization: "Bearer " }, "", { kind: "malformed" }],
    [{ authorization: "Bearer  abc" }, "", { kind: "malformed" }],
    [{ authorization: `Bearer ${"a".repeat(8193)}` }, "", { kind: "malformed" }],
    [{}, "?access_token=abc", { kind: "invalid_request" }],
    [{ authorization: "Bearer abc" }, "?x=1&access_token=abc", { kind: "invalid_request" }],
    [{ authorization: "Bearer abc" }, "?my_access_token_count=1", { kind: "token", token: "abc" }],
  ])("%j %s → %j", (headers, search, expected) => {
    expect(extractBearer(headers as IncomingHttpHeaders, raw(headers as IncomingHttpHeaders), search)).toMatchObject(expected);
  });

  it.each([
    ["abc.DEF-_~+/", true],
    ["abc==", true],
    ["a b", false],
    ["a=b", false],
    ['a"b', false],
    ["a,b", false],
    ["", false],
    ["é", false],
  ])("RFC 6750 §2.1 b64token %j: %s (checked before introspection; a cached token passed it)", (token, ok) => {
    expect(isB64Token(token)).toBe(ok);
  });

  it("a second Authorization header (node keeps only the first) is RFC 6750 §3.1 invalid_request", () => {
    expect(extractBearer({ authorization: "Bearer a" }, ["Authorization", "Bearer a", "authorization", "Bearer b"], "")).toMatchObject({ kind: "invalid_request" });
  });

  it.each([
    ["merged by a proxy into one field", { authorization: "Bearer a, Bearer b" }],
    ["merged with another scheme", { authorization: "Basic d2ViOng=, Bearer b" }],
    ["given as a list (Envoy, nginx)", { authorization: ["Bearer a", "Bearer b"] }],
    ["a comma inside the credentials", { authorization: "Bearer a,b" }],
  ])("RFC 6750 §3.1: two Authorization fields %s, without rawHeaders, are invalid_request", (_how, headers) => {
    expect(extractBearer(headers, undefined, "")).toMatchObject({ kind: "invalid_request", description: "more than one Authorization header" });
  });

  it("one Authorization field given as a list of one is that field", () => {
    expect(extractBearer({ authorization: ["Bearer abc"] }, undefined, "")).toEqual({ kind: "token", token: "abc" });
  });

  it("the cache key is a hash of the token, not the token", () => {
    const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    expect(tokenHash(token)).not.toContain(token.slice(0, 10));
    expect(tokenHash(token)).toBe(tokenHash(token));
    expect(tokenHash(token)).not.toBe(tokenHash(`${token}x`));
  });
});

describe("identity header values", () => {
  it.each([
    ["user-1", "user-1"],
    ["read write admin", "read write admin"],
    ["josé", "jos%C3%A9"],
    ["a\r\nX-Evil: 1", "a%0D%0AX-Evil%3A%201"],
    ["100%", "100%25"],
    [" padded ", "%20padded%20"],
    ["", ""],
  ])("%j is sent as %j (decodeURIComponent gives it back)", (value, sent) => {
    expect(headerValue(value)).toBe(sent);
    expect(decodeURIComponent(headerValue(value))).toBe(value);
  });
});

describe("cacheExpiry and the introspection cache (time is an argument)", () => {
  it.each([
    [0, 30_000, 1_000_000, 30_000],
    [990_000, 30_000, 1_000_000, 1_000_000],
    [0, 30_000, 10, 10],
  ])("cached at %i for a TTL of %i, token exp %i: valid until %i (never past exp)", (now, ttl, exp, until) => {
    expect(cacheExpiry(now, ttl, principal({ expiresAt: exp }))).toBe(until);
  });

  it("an entry is served until its TTL, and not at or after it", () => {
    const cache = createIntrospectionCache({ ttlMs: 1_000, maxEntries: 10 });
    cache.set("h", principal(), 0);
    expect(cache.get("h", 999)).toMatchObject({ subject: "user-1" });
    expect(cache.get("h", 1_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("an entry is re-checked against exp on every hit", () => {
    const cache = createIntrospectionCache({ ttlMs: 60_000, maxEntries: 10 });
    cache.set("h", principal({ expiresAt: 5_000 }), 0);
    expect(cache.get("h", 4_999)).toBeDefined();
    expect(cache.get("h", 5_000)).toBeUndefined();
  });

  it("an already expired result is not stored; inactive results are kept for the TTL", () => {
    const cache = createIntrospectionCache({ ttlMs: 60_000, maxEntries: 10 });
    cache.set("h", principal({ expiresAt: 5_000 }), 5_000);
    expect(cache.size).toBe(0);
    cache.set("bad", INACTIVE, 0);
    expect(cache.get("bad", 59_999)).toEqual({ active: false });
    expect(cache.get("bad", 60_000)).toBeUndefined();
  });

  it("evictToken drops the one token of a jti; evictGrant drops every token of a grant", () => {
    const cache = createIntrospectionCache({ ttlMs: 60_000, maxEntries: 10 });
    cache.set("a", principal({ jti: "j1", grantId: "g1" }), 0);
    cache.set("b", principal({ jti: "j2", grantId: "g1" }), 0);
    cache.set("c", principal({ jti: "j3", grantId: "g2" }), 0);
    expect(cache.evictToken("j1")).toBe(1);
    expect(cache.get("a", 1)).toBeUndefined();
    expect(cache.evictToken("j1")).toBe(0);
    cache.set("a", principal({ jti: "j1", grantId: "g1" }), 0);
    expect(cache.evictGrant("g1")).toBe(2);
    expect(cache.get("a", 1)).toBeUndefined();
    expect(cache.get("b", 1)).toBeUndefined();
    expect(cache.get("c", 1)).toBeDefined();
    expect(cache.evictGrant("g1")).toBe(0);
  });

  it("is bounded: the oldest entry makes room; clear() empties it", () => {
    const cache = createIntrospectionCache({ ttlMs: 60_000, maxEntries: 3 });
    for (const key of ["a", "b", "c", "d"]) cache.set(key, principal({ jti: key }), 0);
    expect(cache.size).toBe(3);
    expect(cache.get("a", 1)).toBeUndefined();
    expect(cache.get("d", 1)).toBeDefined();
    // The evicted entry's index is gone too: revoking it evicts nothing else.
    expect(cache.evictToken("a")).toBe(0);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.evictGrant("grant-1")).toBe(0);
  });
});

describe("authorizeScopes: any of the route's scopes, or all of them", () => {
  it.each([
    [["read"], "any", ["read"], true],
    [["read"], "any", ["write"], false],
    [["read", "admin"], "any", ["admin"], true],
    [["read", "admin"], "all", ["admin"], false],
    [["read", "admin"], "all", ["admin", "read", "x"], true],
    [["read"], "any", ["READ"], false],
    [["read"], "any", [], false],
    [[], "any", ["read"], false],
  ] as const)("needs %j (%s), has %j → %s", (scopes, scopeMode, granted, allowed) => {
    expect(authorizeScopes({ scopes, scopeMode }, new Set(granted))).toBe(allowed);
  });

  it("the challenge names every scope the route asks for; the description says which way", () => {
    expect(requiredScope({ scopes: ["read", "admin"], scopeMode: "all" })).toBe("read admin");
    expect(describeRequirement({ scopes: ["read", "admin"], scopeMode: "all" })).toContain("every one");
    expect(describeRequirement({ scopes: ["read", "admin"], scopeMode: "any" })).toContain("one of");
  });
});

describe("the header rewrite", () => {
  const mutation = createIdentityMutation({
    identityHeaders: { subject: "X-Gatehouse-Subject", client: "X-Gatehouse-Client", scope: "X-Gatehouse-Scope" },
    overrideHeaders: ["x-original-url", "x-http-method-override"],
  });
  const upstream = createUpstreamHeaders();
  const forwarded = { for: "10.0.0.1", proto: "https", host: "api.test" };
  const rewrite = (headers: IncomingHttpHeaders, p: Principal | undefined, forwardAuthorization: boolean, websocket = false) =>
    headerObject(upstream(headers, { setHeaders: mutation.setHeaders(p), removeHeaders: mutation.removeHeaders(headers, forwardAuthorization), forwarded, requestId: "req-1", websocket }));

  it("removes the caller's identity, override, forwarding and hop-by-hop fields, then writes the verified ones", () => {
    const headers: IncomingHttpHeaders = {
      host: "api.test",
      authorization: "Bearer t",
      "x-gatehouse-subject": "admin",
      x_gatehouse_client: "evil",
      "x-gatehouse-scope": "admin",
      "x-original-url": "/admin",
      x_http_method_override: "DELETE",
      "x-forwarded-for": "6.6.6.6",
      "x-forwarded-port": "1",
      forwarded: "for=6.6.6.6",
      connection: "keep-alive, X-Secret",
      "x-secret": "1",
      "keep-alive": "timeout=5",
      upgrade: "h2c",
      te: "trailers",
      "content-type": "text/plain",
    };
    expect(rewrite(headers, principal(), false)).toEqual({
      host: "api.test",
      "content-type": "text/plain",
      "x-gatehouse-subject": "user-1",
      "x-gatehouse-client": "web",
      "x-gatehouse-scope": "read write",
      "x-forwarded-for": "10.0.0.1",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "api.test",
      "x-request-id": "req-1",
    });
  });

  it("keeps Authorization when the route forwards it; keeps the WebSocket handshake fields; the passthrough gets no identity", () => {
    const headers: IncomingHttpHeaders = { authorization: "Bearer t", connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": "k", "x-gatehouse-subject": "admin" };
    const out = rewrite(headers, undefined, true, true);
    expect(out).toMatchObject({ authorization: "Bearer t", connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": "k" });
    expect(out["x-gatehouse-subject"]).toBeUndefined();
  });

  it("sends a repeated field once per value, in order, as node:http writes pairs", () => {
    const pairs = upstream({ host: "api.test", "x-tag": ["a", "b"] } as IncomingHttpHeaders, {
      setHeaders: {},
      removeHeaders: [],
      forwarded,
      requestId: "req-1",
      websocket: false,
    });
    expect(pairs.slice(0, 6)).toEqual(["host", "api.test", "x-tag", "a", "x-tag", "b"]);
    expect(headerObject(pairs)["x-tag"]).toEqual(["a", "b"]);
  });

  it("puts the gateway's trace context in place of the caller's when tracing is on, and passes the caller's otherwise", () => {
    const headers: IncomingHttpHeaders = { traceparent: "00-caller-01", tracestate: "caller=1" };
    const base = { setHeaders: {}, removeHeaders: [], forwarded, requestId: "req-1", websocket: false };
    expect(headerObject(upstream(headers, base))).toMatchObject({ traceparent: "00-caller-01", tracestate: "caller=1" });
    const traced = headerObject(upstream(headers, { ...base, traceContext: { traceparent: "00-gateway-01", tracestate: undefined } }));
    expect(traced.traceparent).toBe("00-gateway-01");
    expect(traced.tracestate).toBeUndefined();
  });

  it("the pipeline lists only the request's own fields to remove; nothing extra is allocated for a plain request", () => {
    expect(mutation.removeHeaders({ host: "a", authorization: "Bearer t" }, false)).toEqual(["authorization"]);
    expect(mutation.removeHeaders({ host: "a", authorization: "Bearer t" }, true)).toEqual([]);
    expect(mutation.removeHeaders({ "X-Original-URL": "/x" } as IncomingHttpHeaders, false)).toEqual([]);
    expect([...mutation.removeHeaders({ "x-original-url": "/x", x_gatehouse_scope: "s", authorization: "Bearer t" }, false)].sort()).toEqual([
      "authorization",
      "x-original-url",
      "x_gatehouse_scope",
    ]);
  });

  it.each([
    ["host", "host"],
    ["keep-alive, Host", "host"],
    ["Authorization", "authorization"],
    ["content-length", "content-length"],
    ["Transfer-Encoding", "transfer-encoding"],
    ["x-gatehouse-subject", "x-gatehouse-subject"],
    ["X_Gatehouse_Scope", "x-gatehouse-scope"],
    ["keep-alive, x-secret", undefined],
    ["Upgrade", undefined],
  ])("RFC 9110 §7.6.1: Connection: %s names the protected field %s (undefined: none)", (connection, named) => {
    expect(mutation.forbiddenConnectionOption(connection)).toBe(named);
  });
});
