import { ServerResponse, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import proxyAddr from "@fastify/proxy-addr";
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { AuthzClient } from "../rpc/authz-client.js";
import type { GatewayConfig, RouteConfig } from "../config.js";
import { createAuthenticator, extractBearer, TokenCheckUnavailable, toIntrospected, type Authentication, type Authenticator } from "../guard/authenticate.js";
import { authorizeScopes, describeRequirement, requiredScope } from "../guard/authorize.js";
import { createIntrospectionCache, type Principal } from "../guard/introspection-cache.js";
import { createHeaderRewriter, type ForwardedFor } from "../guard/mutate.js";
import { compileRouteTable, normalizeTarget, type CompiledRoute, type NormalizedTarget, type RouteTable } from "../guard/rules.js";
import type { RevocationFeed } from "../revocation-feed.js";
import type { GatewayMetrics, GuardOutcome } from "../metrics.js";
import { NOT_FOUND, bearerFailureResponse, oauthErrorResponse, writeErrorResponse } from "../oauth-error-response.js";
import { createTlsCheck } from "../tls-check.js";
import { createRequestTracing, type RequestTracing } from "../request-tracing.js";
import { endWithError, traceparentOf, tracingOff } from "../../startup/tracing.js";
import type { TraceIds } from "../../startup/trace-context.js";
import type { UpstreamFailure, UpstreamTarget } from "../upstream.js";

/**
 * The resource guard (DESIGN.md, "The gateway's guard"): every request that
 * is not for one of the gateway's own endpoints goes through
 *
 *   normalise the path → exactly one rule → authenticate → authorize →
 *   rewrite the headers → proxy
 *
 * and anything that does not make it through is answered here, in the
 * route's error style, before the request body is read. Requests are taken
 * over in an onRequest hook: fastify never parses their bodies (bodyLimit does
 * not apply; bodies stream to the upstream) and the handler never runs.
 * WebSocket handshakes (the server's 'upgrade' event) take the same path.
 */

export interface GuardOptions {
  config: Pick<GatewayConfig, "guard" | "paths" | "trustedProxies">;
  /** config.requireHttps: the raw path applies the same check as plugins/require-https.ts. */
  requireHttps: boolean;
  /** Installs the guard's entry beneath fastify: it returns false for what fastify should serve. */
  setRawEntry: (entry: (req: IncomingMessage, res: ServerResponse) => boolean) => void;
  /** The request id of a raw request, as fastify's genReqId would give it. */
  requestIdOf: (req: IncomingMessage) => string;
  /** The route table in force: read per request, recompiled when a reload replaces it. */
  routes: () => readonly RouteConfig[];
  authz: AuthzClient;
  clock: () => number;
  metrics: GatewayMetrics;
  revocations: RevocationFeed;
  /** Spans and log ids of guarded requests (request-tracing.ts); none when absent. */
  requestTracing?: RequestTracing;
}

interface Route {
  readonly compiled: CompiledRoute;
  readonly name: string;
  readonly target: UpstreamTarget;
  readonly style: "rfc6750" | "problem+json";
}

/** A WebSocket (or other upgrade) request: the socket node handed over, and its first bytes. */
interface Upgrade {
  readonly socket: Duplex;
  readonly head: Buffer;
}

const UNMATCHED = "(none)";
const PASSTHROUGH = "(passthrough)";

const plugin: FastifyPluginAsync<GuardOptions> = async (app, options) => {
  const { config, clock, metrics } = options;
  const requestTracing = options.requestTracing ?? createRequestTracing(tracingOff);
  const tracing = requestTracing.tracing;
  const { guard } = config;
  const proxy = app.upstreamProxy;

  const targets = new Map<string, UpstreamTarget>();
  const targetOf = (url: string) => {
    let target = targets.get(url);
    if (target === undefined) targets.set(url, (target = proxy.target(url)));
    return target;
  };
  // The route table; a bad pattern stops the start (a reload checks before it
  // swaps), overlapping rules are logged. Recompiled only when the list
  // itself is replaced: one reference comparison per request.
  let compiledFrom: readonly RouteConfig[] | undefined;
  let table: RouteTable;
  let routes: Map<CompiledRoute, Route>;
  const currentTable = () => {
    const source = options.routes();
    if (source !== compiledFrom) {
      const compiled = compileRouteTable(source);
      for (const overlap of compiled.overlaps) app.log.warn({ problem: overlap }, "guard: overlapping routes");
      table = compiled.table;
      routes = new Map(
        table.routes.map((route) => [route, { compiled: route, name: route.config.name, target: targetOf(route.config.upstream), style: route.config.errorStyle }]),
      );
      compiledFrom = source;
    }
    return { table, routes };
  };
  currentTable();
  const passthrough = guard.unmatched.kind === "passthrough" ? targetOf(guard.unmatched.upstream) : undefined;
  /** The gateway's own endpoints: never guarded, never proxied, whatever the route table says. */
  const ownPaths = new Set(Object.values(config.paths));

  // Introspection, cached while the revocation feed is live.
  const cacheEnabled = guard.cacheTtlSeconds > 0 && guard.cacheMaxEntries > 0;
  const cache = cacheEnabled ? createIntrospectionCache({ ttlMs: guard.cacheTtlSeconds * 1000, maxEntries: guard.cacheMaxEntries }) : undefined;
  const authenticator: Authenticator = createAuthenticator({
    introspect: async (token) => toIntrospected(await options.authz.authz.introspect({ token }, options.authz.asGatewayClient)),
    cache,
    trust: options.revocations,
    clock,
    metrics,
  });
  if (cache !== undefined) {
    metrics.cacheSize(() => cache.size);
    const removeListener = options.revocations.addListener({
      revoked: (target) => ("jti" in target ? cache.evictToken(target.jti) : cache.evictGrant(target.grantId)),
      subscribed: () => cache.clear(),
    });
    // The feed only matters when something is cached; it starts once the app is ready.
    app.addHook("onReady", async () => options.revocations.start());
    app.addHook("onClose", async () => {
      removeListener();
      await options.revocations.stop();
    });
  }

  const rewriteHeaders = createHeaderRewriter(guard.identityHeaders);
  const trust = proxyAddr.compile([...config.trustedProxies]);
  /** Where the request came from: X-Forwarded-* believed only from trusted proxies (as fastify's trustProxy reads them). */
  const forwardedFor = (req: IncomingMessage): ForwardedFor => {
    const socket = req.socket as Socket & { encrypted?: boolean };
    const peer = socket.remoteAddress ?? "";
    const ownProto = socket.encrypted === true ? "https" : "http";
    const host = req.headers.host ?? "";
    if (config.trustedProxies.length === 0 || !trust(peer, 0)) return { for: peer, proto: ownProto, host };
    // The chain up to the first address not trusted, nearest first; sent farthest first.
    const proto = lastEntry(req.headers["x-forwarded-proto"]);
    const forwardedHost = lastEntry(req.headers["x-forwarded-host"]);
    return { for: proxyAddr.all(req, trust).reverse().join(", "), proto: socket.encrypted === true ? "https" : (proto ?? ownProto), host: forwardedHost ?? host };
  };

  // --- answers -------------------------------------------------------------

  const count = (route: string, outcome: GuardOutcome) => metrics.guardRequest(route, outcome);
  /** Allowed requests are logged at debug (an access log); building the entry is skipped otherwise. */
  const logAllowed = app.log.level === "debug" || app.log.level === "trace";
  const log = app.log;

  const refuse = (
    call: GuardCall,
    route: string,
    outcome: GuardOutcome,
    failure: { status: 400 | 401 | 403 | 503; error?: "invalid_request" | "invalid_token" | "insufficient_scope"; description?: string; scope?: string },
    style: "rfc6750" | "problem+json" = "rfc6750",
  ) => {
    count(route, outcome);
    log.info({ reqId: call.requestId, ...call.ids, route, outcome, status: failure.status, method: call.req.method, path: pathOf(call.req.url) }, "guard: refused");
    writeErrorResponse(call.res, bearerFailureResponse({ ...failure, realm: guard.realm, style, ...(failure.status === 503 ? { retryAfter: 1 } : {}) }));
  };

  const notFound = (call: GuardCall) => {
    count(UNMATCHED, "not_found");
    log.info({ reqId: call.requestId, ...call.ids, outcome: "not_found", method: call.req.method, path: pathOf(call.req.url) }, "guard: no route");
    writeErrorResponse(call.res, NOT_FOUND);
  };

  const upstreamFailed = (call: GuardCall, route: string, style: "rfc6750" | "problem+json", failure: UpstreamFailure) => {
    metrics.upstreamFailure(route, failure.kind);
    log.warn({ reqId: call.requestId, ...call.ids, route, kind: failure.kind, code: failure.code, responseStarted: failure.responseStarted }, "guard: upstream failed");
    if (failure.responseStarted || call.res.destroyed) return;
    writeErrorResponse(
      call.res,
      bearerFailureResponse({
        status: failure.kind === "timeout" ? 504 : 502,
        description: failure.kind === "timeout" ? "the upstream did not answer in time" : "the upstream could not be reached",
        realm: guard.realm,
        style,
      }),
    );
  };

  // --- the pipeline ------------------------------------------------------------

  const reportedAmbiguities = new Set<string>();
  const upgrades = new WeakMap<IncomingMessage, Upgrade>();
  /** Requests with `Expect: 100-continue`: told to send their body only once they are let through. */
  const awaitingContinue = new WeakSet<IncomingMessage>();
  const openSockets = new Set<Duplex>();

  /** Hands the request to its upstream: plain HTTP, or a WebSocket. */
  const forward = (call: GuardCall, routeName: string, target: UpstreamTarget, style: "rfc6750" | "problem+json", websocket: boolean) => {
    const onFailure = (failure: UpstreamFailure) => upstreamFailed(call, routeName, style, failure);
    const upgrade = upgrades.get(call.req);
    if (websocket && upgrade !== undefined) {
      openSockets.add(upgrade.socket);
      upgrade.socket.once("close", () => openSockets.delete(upgrade.socket));
      proxy.ws(call.req, upgrade.socket, upgrade.head, target, onFailure);
    } else {
      proxy.web(call.req, call.res, target, onFailure);
    }
  };

  /** Steps 3 to 6, once the token's introspection is known. */
  const proceed = (call: GuardCall, route: Route, introspected: Authentication, path: string, search: string, websocket: boolean) => {
    if (!introspected.active) {
      const description = "malformed" in introspected ? "the access token is malformed" : "the access token is invalid, expired or revoked";
      return refuse(call, route.name, "invalid_token", { status: 401, error: "invalid_token", description }, route.style);
    }
    const rule = route.compiled.config;
    if (!authorizeScopes(rule, introspected.scopes)) {
      return refuse(
        call,
        route.name,
        "insufficient_scope",
        { status: 403, error: "insufficient_scope", description: describeRequirement(rule), scope: requiredScope(rule) },
        route.style,
      );
    }
    allow(call, route.name, route.target, route.style, introspected, rule.forwardAuthorization, path, search, websocket);
  };

  const allow = (
    call: GuardCall,
    routeName: string,
    target: UpstreamTarget,
    style: "rfc6750" | "problem+json",
    principal: Principal | undefined,
    forwardAuthorization: boolean,
    path: string,
    search: string,
    websocket: boolean,
  ) => {
    const raw = call.req;
    // The client may have left while the token was checked.
    if (raw.socket.destroyed) return;
    raw.headers = rewriteHeaders(raw.headers, { principal, forwardAuthorization, forwarded: forwardedFor(raw), requestId: call.requestId, websocket });
    // W3C Trace Context: the upstream continues the gateway's span (tracing off: the caller's traceparent passes as sent).
    const span = requestTracing.spanOf(raw);
    if (span !== undefined) {
      raw.headers.traceparent = traceparentOf(span);
      const state = span.spanContext().traceState?.serialize();
      if (state !== undefined && state !== "") raw.headers.tracestate = state;
    }
    // The upstream gets the path that was checked, and the query as it came.
    raw.url = path + search;
    count(routeName, principal === undefined ? "passthrough" : "allowed");
    if (logAllowed) {
      log.debug({ reqId: call.requestId, ...call.ids, route: routeName, method: raw.method, path, subject: principal?.subject, client: principal?.clientId }, "guard: allowed");
    }
    // RFC 9110 §10.1.1: the client waits for 100 (Continue) before it sends the body; only now is it let in.
    if (awaitingContinue.has(raw)) call.res.writeContinue();
    forward(call, routeName, target, style, websocket);
  };

  /** Steps 2 to 6 for a request whose target normalised (step 1). */
  const guardRequest = (call: GuardCall, target: NormalizedTarget & { ok: true }): void => {
    const raw = call.req;
    const { path, search } = target;
    if (ownPaths.has(path)) {
      // Another spelling of one of the gateway's own endpoints (or a method it does not serve).
      if (!isCanonical(raw.url, path)) {
        return refuse(call, UNMATCHED, "bad_request", { status: 400, error: "invalid_request", description: "use the canonical path of this endpoint" });
      }
      return notFound(call);
    }

    const upgrade = upgrades.get(raw);
    const websocket = upgrade !== undefined && raw.headers.upgrade?.toLowerCase() === "websocket";
    if (upgrade !== undefined) {
      if (websocket ? raw.method !== "GET" : hasBody(raw)) {
        return refuse(call, UNMATCHED, "bad_request", { status: 400, error: "invalid_request", description: "unsupported protocol upgrade" });
      }
    }

    // Step 2: exactly one rule.
    const { table, routes } = currentTable();
    const match = table.match(raw.method ?? "", path);
    if (match.kind === "ambiguous") {
      const names = match.routes.map((r) => r.config.name);
      count(UNMATCHED, "ambiguous_route");
      // A configuration problem: said once per set of rules (the metric counts every request).
      const key = names.join("\u0000");
      if (!reportedAmbiguities.has(key) && reportedAmbiguities.size < 1_000) {
        reportedAmbiguities.add(key);
        log.error({ reqId: call.requestId, ...call.ids, routes: names, method: raw.method, path }, "guard: more than one route covers this request; such requests are denied (fix the route table)");
      }
      writeErrorResponse(call.res, oauthErrorResponse({ status: 500, error: "server_error", description: "the gateway's route table is ambiguous for this request" }));
      return;
    }
    if (match.kind === "case-variant") {
      const route = routes.get(match.route)!;
      return refuse(call, route.name, "bad_request", { status: 400, error: "invalid_request", description: "the path differs only in letter case from a protected path" }, route.style);
    }
    if (match.kind === "other-method") return notFound(call);
    if (match.kind === "none") {
      if (passthrough === undefined) return notFound(call);
      return allow(call, PASSTHROUGH, passthrough, "rfc6750", undefined, false, path, search, websocket);
    }
    const route = routes.get(match.route)!;

    // Step 3: the bearer token, from the Authorization header only.
    const credential = extractBearer(raw.headers, raw.rawHeaders, search);
    switch (credential.kind) {
      case "none":
        // RFC 6750 §3.1: a request without authentication gets a challenge without an error code or description.
        return refuse(call, route.name, "missing_token", { status: 401 }, route.style);
      case "malformed":
        return refuse(call, route.name, "invalid_token", { status: 401, error: "invalid_token", description: credential.description }, route.style);
      case "invalid_request":
        return refuse(call, route.name, "bad_request", { status: 400, error: "invalid_request", description: credential.description }, route.style);
    }
    let introspected: Authentication | Promise<Authentication>;
    try {
      introspected = tracing.enabled ? authenticateTraced(credential.token) : authenticator.authenticate(credential.token);
    } catch (error) {
      return unavailable(call, route, error);
    }
    if (introspected instanceof Promise) {
      introspected
        .then(
          (result) => proceed(call, route, result, path, search, websocket),
          (error: unknown) => unavailable(call, route, error),
        )
        .catch((error: unknown) => {
          // A bug past this point must not become an unhandled rejection, nor a pass.
          log.error({ reqId: call.requestId, ...call.ids, err: error }, "guard: failed");
          writeErrorResponse(call.res, oauthErrorResponse({ status: 500, error: "server_error", description: "the gateway failed to handle the request" }));
        });
      return;
    }
    // The cached path: synchronous to the proxy.
    proceed(call, route, introspected, path, search, websocket);
  };

  /**
   * Step 3 as a span, `guard.authenticate`, with `gatehouse.cache` hit or
   * miss; on a miss the Introspect RPC is its child.
   */
  const authenticateTraced = (token: string): Authentication | Promise<Authentication> => {
    const span = tracing.startSpan("guard.authenticate");
    let result: Authentication | Promise<Authentication>;
    try {
      result = tracing.withSpan(span, () => authenticator.authenticate(token));
    } catch (error) {
      endWithError(span, error);
      throw error;
    }
    span.setAttribute("gatehouse.cache", result instanceof Promise ? "miss" : "hit");
    if (result instanceof Promise) {
      result.then(
        () => span.end(),
        (error: unknown) => endWithError(span, error),
      );
    } else {
      span.end();
    }
    return result;
  };

  const unavailable = (call: GuardCall, route: Route, error: unknown) => {
    const cause = error instanceof TokenCheckUnavailable ? error.cause : error;
    log.warn({ reqId: call.requestId, ...call.ids, route: route.name, reason: cause instanceof Error ? cause.message : String(cause) }, "guard: the token could not be checked");
    if (call.req.socket.destroyed) return;
    refuse(call, route.name, "unavailable", { status: 503, description: "the access token cannot be checked now; try again" }, route.style);
  };

  // --- the two ways in -----------------------------------------------------------

  // 1. Beneath fastify (options.setRawEntry, installed by buildApp's server):
  // every plain HTTP request for a path that is not the gateway's own goes
  // through the pipeline on Node's own request and response, without
  // fastify's per-request objects, hooks and child logger. The check itself
  // costs about a microsecond on a cached token; fastify's request cycle cost
  // more than that, and the guard sits in front of every request of a service.
  const tlsCheck = createTlsCheck({ enabled: options.requireHttps, trustedProxies: config.trustedProxies });
  options.setRawEntry((req, res) => {
    const url = req.url ?? "";
    const target = normalizeTarget(url);
    // The gateway's own endpoints are fastify's (its hooks check their spelling, TLS and bodies).
    if (target.ok && ownPaths.has(target.path)) return false;
    const call: GuardCall = { req, res, requestId: options.requestIdOf(req), ids: requestTracing.begin(req) };
    requestTracing.watch(req, res);
    if (tlsCheck !== undefined && !tlsCheck(req)) {
      count(UNMATCHED, "bad_request");
      writeErrorResponse(res, oauthErrorResponse({ status: 400, error: "invalid_request", description: "this endpoint must be used over https" }));
      return true;
    }
    // Step 1: the target is normalised once; what cannot be is refused.
    if (!target.ok) {
      refuse(call, UNMATCHED, "bad_request", { status: 400, error: "invalid_request", description: target.reason });
      return true;
    }
    // Tracing off, not even a closure on the guard's hot path.
    if (tracing.enabled) requestTracing.run(req, () => guardRequest(call, target));
    else guardRequest(call, target);
    return true;
  });

  // 2. Through fastify, for what Node hands over outside its 'request' event:
  // WebSocket handshakes and `Expect: 100-continue` requests (below), and
  // other methods on the gateway's own paths. The route takes the request
  // over in its onRequest hook (reply.hijack) and never hands it on, so no
  // body is ever parsed here.
  app.route({
    method: app.supportedMethods,
    url: "*",
    config: { guard: true },
    onRequest: (request, reply, _done) => {
      reply.hijack();
      const call: GuardCall = { req: request.raw, res: reply.raw, requestId: request.id, ids: requestTracing.begin(request.raw) };
      requestTracing.run(request.raw, () => guardRequest(call, request.gatehouseTarget! as NormalizedTarget & { ok: true }));
    },
    handler: async (_request, reply) => reply.code(500).send(),
  });

  // Step 1 for what fastify routes: the target is normalised once, and what
  // cannot be normalised is refused. The gateway's own endpoints answer only
  // at their canonical spelling: fastify's router decodes `/%6fauth2/token`
  // to the token endpoint; here such a request is refused like any other
  // second spelling of a path.
  app.decorateRequest("gatehouseTarget", null);
  app.addHook("onRequest", (request, reply, done) => {
    const url = request.raw.url ?? "";
    const target = normalizeTarget(url);
    const call = (): GuardCall => {
      reply.hijack();
      return { req: request.raw, res: reply.raw, requestId: request.id, ids: requestTracing.begin(request.raw) };
    };
    if (!target.ok) return refuse(call(), UNMATCHED, "bad_request", { status: 400, error: "invalid_request", description: target.reason });
    if (!isCanonical(url, target.path) && request.routeOptions.config.guard !== true) {
      return refuse(call(), UNMATCHED, "bad_request", { status: 400, error: "invalid_request", description: "use the canonical path of this endpoint" });
    }
    request.gatehouseTarget = target;
    // Expect: 100-continue to one of the gateway's own endpoints: go ahead, as node would have.
    if (awaitingContinue.has(request.raw) && request.routeOptions.config.guard !== true) reply.raw.writeContinue();
    done();
  });

  // WebSocket handshakes: node hands them over on 'upgrade', outside the
  // request cycle; they are routed through fastify like any request, with a
  // response bound to the socket, so that refusals look the same.
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrades.set(req, { socket, head });
    socket.on("error", () => socket.destroy());
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    // A refusal ends the connection; a proxied WebSocket never finishes this response.
    res.once("finish", () => socket.end());
    app.routing(req, res);
  };
  app.server.on("upgrade", onUpgrade);

  // Node answers `Expect: 100-continue` at once unless someone listens here; the
  // guard answers it after the check, so that a refused upload is never sent.
  const onCheckContinue = (req: IncomingMessage, res: ServerResponse) => {
    awaitingContinue.add(req);
    app.routing(req, res);
  };
  app.server.on("checkContinue", onCheckContinue);
  app.addHook("onClose", async () => {
    app.server.off("upgrade", onUpgrade);
    app.server.off("checkContinue", onCheckContinue);
    for (const socket of openSockets) socket.destroy();
  });
};

/** One request going through the guard: Node's own objects, whichever way it came in. */
interface GuardCall {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Logged with every entry and sent upstream as X-Request-Id. */
  readonly requestId: string;
  /** The trace and span ids every log entry of the request carries (request-tracing.ts). */
  readonly ids: TraceIds | undefined;
}

/** The last value of a possibly repeated, comma-separated header (a proxy appends its own hop last). */
function lastEntry(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const last = (Array.isArray(value) ? value.join(",") : value).split(",").at(-1)?.trim();
  return last === "" ? undefined : last;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** The guard's catch-all route. */
    guard?: boolean;
  }
  interface FastifyRequest {
    /** The request target in normal form (guard step 1); null until the guard's onRequest hook ran. */
    gatehouseTarget: NormalizedTarget | null;
  }
}

/** The path of a request target, without its query (for logs: a query may carry secrets). */
function pathOf(url: string | undefined): string {
  if (url === undefined) return "";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

/** True when the request target's path is exactly `path` (the normal form), with or without a query. */
function isCanonical(url: string | undefined, path: string): boolean {
  return url !== undefined && url.startsWith(path) && (url.length === path.length || url.charCodeAt(path.length) === 0x3f);
}

/** A request with a body: an upgrade request cannot forward one. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/** The resource guard; needs the oauth-errors and proxy plugins. */
export const guard = fp(plugin, { name: "guard", fastify: "5.x", dependencies: ["oauth-errors", "proxy"] });
