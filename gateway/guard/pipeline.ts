/**
 * The guard's decision pipeline (DESIGN.md, "The guard is a decision
 * pipeline"): a description of a request in, a decision out. It knows no
 * framework, no `node:http` objects and no proxy; its entrances translate
 * to and from it:
 *
 *   - the sidecar proxy (gateway/entrances/sidecar.ts), which proxies what is allowed;
 *   - the HTTP check endpoint for nginx `auth_request`, Traefik `forwardAuth`
 *     and Caddy `forward_auth`;
 *   - Envoy's external authorization `Check` over gRPC.
 *
 * Deny by default: normalise the target once → exactly one rule matches
 * (none or two: refuse; the gateway's own paths are never guarded) →
 * authenticate the bearer token (Authorization only) → authorize (audience,
 * scope, the resource owner's groups) → the identity headers to write and the
 * caller's copies to strip.
 *
 * One pipeline serves every entrance of a gateway process (GatewayDeps.guard):
 * one route table, one introspection cache, one revocation feed.
 */
import type { Logger } from "pino";
import { DEFAULT_TENANT } from "../../startup/tenant-name.js";
import { WELL_KNOWN_PROTECTED_RESOURCE, type GatewayConfig, type ProtectedResourceConfig, type RouteConfig } from "../config.js";
import type { GatewayTenants } from "../tenants.js";
import type { GatewayMetrics, GuardOutcome } from "../metrics.js";
import { NOT_FOUND, bearerFailureResponse, oauthErrorResponse, type BearerFailure } from "../oauth-error-response.js";
import type { RevocationFeed } from "../revocation-feed.js";
import { createAuthenticator, extractBearer, TokenCheckUnavailable, type Authentication } from "./authenticate.js";
import { authorizeGroups, authorizeScopes, describeRequirement, INSUFFICIENT_RIGHTS_DESCRIPTION, requiredScope } from "./authorize.js";
import { createConnectionWatch, type ConnectionEnd, type ConnectionWatch, type ConnectionWatchControl } from "./connection-watch.js";
import { createIntrospectionCache, type Introspected, type Principal } from "./introspection-cache.js";
import { createIdentityMutation } from "./mutate.js";
import type { RequestHeaders } from "./request-headers.js";
import { compileRouteTable, normalizeTarget, type CompiledRoute, type NormalizedTarget, type RouteTable } from "./rules.js";

export type { RequestHeaders } from "./request-headers.js";
export type { ConnectionEnd, ConnectionWatch } from "./connection-watch.js";
export type { Principal } from "./introspection-cache.js";

/** What an entrance knows of the request it asks about. */
export interface GuardRequest {
  /** The request method, as sent. */
  readonly method: string;
  /** The request target as received (origin-form: path and query); the pipeline normalises it. */
  readonly target: string;
  /**
   * `normalizeTarget(target)`, when the entrance had to compute it already
   * (the sidecar does, to hand the gateway's own endpoints to fastify): the
   * pipeline then does not normalise a second time. Must be exactly that.
   */
  readonly normalized?: NormalizedTarget;
  /**
   * The request's header fields (lower-case names). `connection` only as the
   * client sent it: an entrance that sees a proxy's own hop (nginx's
   * subrequest) leaves it out.
   */
  readonly headers: RequestHeaders;
  /**
   * The header fields as sent, name and value alternating (Node's rawHeaders),
   * where the entrance has them: a repeated Authorization field is refused.
   * (Without them, a repeated field is still seen as a list or a comma.)
   */
  readonly rawHeaders?: readonly string[];
  /** The TCP peer of the original request, as far as the entrance can tell (logged). */
  readonly peer: string;
  /** A WebSocket handshake (GET with `Upgrade: websocket`). */
  readonly websocket: boolean;
  /** Logged with every entry (and sent upstream as X-Request-Id by the sidecar). */
  readonly requestId: string;
  /** What else every log entry of the request carries: its trace and span ids (gateway/request-tracing.ts), when it has them. */
  readonly logIds?: { readonly trace_id: string; readonly span_id: string } | undefined;
}

/** The request may not pass: the response to give, complete (status, headers, body). */
export interface Refusal {
  readonly kind: "refuse";
  /** The route's name, or "(none)" when no route matched. */
  readonly route: string;
  readonly outcome: GuardOutcome;
  readonly status: number;
  /**
   * The error code of the body: RFC 6750 §3.1 (invalid_request, invalid_token,
   * insufficient_scope), else not_found, server_error, temporarily_unavailable;
   * undefined for a request without any token (RFC 6750 §3.1: no error code).
   */
  readonly error: string | undefined;
  /** The error_description (human-readable, never a secret). */
  readonly description: string;
  /**
   * RFC 6750 §3: WWW-Authenticate on every 400, 401 and 403 (with the error
   * code), Retry-After on 503, Cache-Control: no-store, Content-Type.
   */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The request may pass, with these changes to its header fields. */
export interface Allowance {
  readonly kind: "allow";
  /** The route's name, or "(passthrough)" for unmatched requests let through by configuration. */
  readonly route: string;
  readonly outcome: "allowed" | "passthrough";
  /** The verified principal; undefined for passthrough. */
  readonly principal: Principal | undefined;
  /**
   * When the token expires (ms since the epoch; principal.expiresAt), or
   * undefined for passthrough: a connection held open past it must end (see
   * `watchConnections`, and principal.jti / principal.grantId for revocations).
   */
  readonly expiresAt: number | undefined;
  /** The normalised path that was checked, and the query as it came: what the upstream must be sent. */
  readonly path: string;
  readonly search: string;
  /** The upstream URL of the route (the sidecar proxies to it; the other entrances ignore it). */
  readonly upstream: string;
  /** How the route's failures are written (the sidecar's 502/504 after the decision). */
  readonly errorStyle: "rfc6750" | "problem+json";
  /** Header fields to set, lower-case names: the verified identity (empty for passthrough). */
  readonly setHeaders: Readonly<Record<string, string>>;
  /**
   * Header fields of this request to remove, lower-case names as they appear
   * in `headers`: the caller's copies of identity headers (any spelling), the
   * path- and method-overriding headers (guard.overrideHeaders), and
   * Authorization unless the route forwards it. Hop-by-hop and X-Forwarded-*
   * fields are the forwarding proxy's business, not listed here.
   */
  readonly removeHeaders: readonly string[];
}

export type GuardDecision = Refusal | Allowance;

/** An RFC 9728 §2 protected resource metadata document (the members gatehouse sets). */
export interface ProtectedResourceMetadata {
  readonly resource: string;
  readonly authorization_servers: readonly string[];
  readonly scopes_supported: readonly string[];
  readonly bearer_methods_supported: readonly string[];
  readonly resource_name?: string;
}

/** The guard's decision for one request; synchronous when the token's check was cached. */
export interface GuardPipeline {
  /**
   * Decides. Synchronous (no promise allocated) when no introspection is
   * needed; a returned promise never rejects (a failure is a Refusal).
   */
  decide(request: GuardRequest): GuardDecision | Promise<GuardDecision>;
  /** True for a normalised path that is one of the gateway's own endpoints (never guarded, never proxied). */
  isOwnPath(path: string): boolean;
  /**
   * RFC 9728 §3.2: the metadata document of the protected resource whose
   * metadata path (§3.1) is `path`, among the resources of the route table in
   * force; undefined when none is.
   */
  protectedResourceMetadata(path: string): ProtectedResourceMetadata | undefined;
  /**
   * A watch over connections an entrance holds open for allowed requests:
   * `end(handle, reason)` is called when the token of a handle's principal
   * is revoked, its grant is revoked, or it expires. Closed with the pipeline.
   * `revocationGraceMs`: how long a revoked token's connection may still
   * finish by itself (plain responses in flight); default 0, at once.
   */
  watchConnections<H>(end: (handle: H, reason: ConnectionEnd) => void, options?: { revocationGraceMs?: number }): ConnectionWatch<H>;
  /** Starts the revocation feed (idempotent); call once the process serves. */
  start(): void;
  /**
   * Stops the feed (until start() again: meanwhile nothing is served from the
   * cache) and ends the watches (their connections are not ended by it).
   */
  close(): Promise<void>;
}

export interface GuardPipelineDeps {
  readonly config: { readonly guard: GatewayConfig["guard"]; readonly paths: GatewayConfig["paths"] };
  /** The route table in force: read per request, recompiled when a reload replaces the list. */
  readonly routes: () => readonly RouteConfig[];
  /** RFC 7662 introspection at the authz service; rejects when it cannot answer. */
  readonly introspect: (token: string) => Promise<Introspected>;
  readonly revocations: RevocationFeed;
  /** The tenants now (a reload replaces them): their endpoints are the gateway's own paths. Absent: none. */
  readonly tenants?: (() => GatewayTenants) | undefined;
  readonly clock: () => number;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  /**
   * Step 3 as a trace span (`guard.authenticate`, cache hit or miss): runs
   * `authenticate` inside it. Absent when tracing is off: then nothing is
   * wrapped. Tracing's own code lives outside the pipeline (request-tracing.ts).
   */
  readonly traceAuthenticate?: AuthenticateTracer | undefined;
}

/** Runs one authentication inside a span; what it returns is what `authenticate` returned. */
export type AuthenticateTracer = (authenticate: () => Authentication | Promise<Authentication>) => Authentication | Promise<Authentication>;

const DEFAULT_TENANTS: readonly string[] = [DEFAULT_TENANT];
const NO_GROUPS: ReadonlySet<string> = new Set();

/** The route name of refusals that no single route answers for. */
export const UNMATCHED = "(none)";
export const PASSTHROUGH = "(passthrough)";

interface Route {
  readonly config: RouteConfig;
  readonly name: string;
  readonly style: "rfc6750" | "problem+json";
}

/**
 * Builds the pipeline. The route table is compiled now (a bad pattern
 * throws, listing every problem) and again whenever `routes()` returns a new
 * list. The introspection cache is used only while the revocation feed is
 * live; the feed's events evict it and end watched connections.
 */
export function createGuardPipeline(deps: GuardPipelineDeps): GuardPipeline {
  const { config, clock, metrics, log, traceAuthenticate } = deps;
  const { guard } = config;

  // The route table, recompiled only when the list itself is replaced: one reference comparison per request.
  let compiledFrom: readonly RouteConfig[] | undefined;
  let table!: RouteTable;
  let routeOf!: Map<CompiledRoute, Route>;
  let metadataOf!: Map<string, ProtectedResourceMetadata>;
  const currentTable = (): RouteTable => {
    const source = deps.routes();
    if (source !== compiledFrom) {
      const compiled = compileRouteTable(source);
      for (const overlap of compiled.overlaps) log.warn({ problem: overlap }, "guard: overlapping routes");
      table = compiled.table;
      routeOf = new Map(table.routes.map((route) => [route, { config: route.config, name: route.config.name, style: route.config.errorStyle }]));
      metadataOf = new Map(source.flatMap((route) => (route.resource === undefined ? [] : [[route.resource.metadataPath, describeResource(route.resource)]])));
      compiledFrom = source;
    }
    return table;
  };
  currentTable();
  const passthrough = guard.unmatched.kind === "passthrough" ? guard.unmatched.upstream : undefined;
  /** The gateway's own endpoints: never guarded, never proxied, whatever the route table says. */
  const ownPaths = new Set(Object.values(config.paths));
  // RFC 9728 §3: the metadata of protected resources, under /.well-known/oauth-protected-resource, is the gateway's to answer.
  const isOwnPath = (path: string) =>
    ownPaths.has(path) || isProtectedResourceMetadataPath(path) || (deps.tenants !== undefined && deps.tenants().isOwnPath(path));

  // Introspection, cached while the revocation feed is live.
  const cache = guard.cacheTtlSeconds > 0 && guard.cacheMaxEntries > 0 ? createIntrospectionCache({ ttlMs: guard.cacheTtlSeconds * 1000, maxEntries: guard.cacheMaxEntries }) : undefined;
  if (cache !== undefined) metrics.cacheSize(() => cache.size);
  const authenticator = createAuthenticator({ introspect: deps.introspect, cache, trust: deps.revocations, clock, metrics });
  const watches = new Set<ConnectionWatchControl<unknown>>();
  // For the pipeline's whole life: after close() the feed is stopped (so the cache is not
  // trusted), and a start() again finds the cache still evicted by revocations.
  deps.revocations.addListener({
    revoked: (target) => {
      if (cache !== undefined) {
        if ("jti" in target) cache.evictToken(target.jti);
        else if ("grantId" in target) cache.evictGrant(target.grantId);
        else cache.evictSubject(target.tenant, target.subject);
      }
      for (const watch of watches) watch.revoked(target);
    },
    subscribed: () => cache?.clear(),
  });

  const mutation = createIdentityMutation({ identityHeaders: guard.identityHeaders, overrideHeaders: guard.overrideHeaders });
  const logAllowed = log.isLevelEnabled("debug");
  const reportedAmbiguities = new Set<string>();

  // --- refusals ------------------------------------------------------------------

  /**
   * A protected resource's challenges (RFC 9728 §5.1, the MCP authorization
   * spec's scope challenge): every 401 and 403 of its routes names its
   * metadata and the scope the route needs.
   */
  const challengeOf = (route: Route, failure: Omit<BearerFailure, "realm" | "style">): Omit<BearerFailure, "realm" | "style"> => {
    const resource = route.config.resource;
    if (resource === undefined || (failure.status !== 401 && failure.status !== 403)) return failure;
    return Object.assign({}, failure, { scope: failure.scope ?? requiredScope(route.config), resourceMetadata: resource.metadataUrl });
  };

  const refuse = (request: GuardRequest, route: string, outcome: GuardOutcome, failure: Omit<BearerFailure, "realm" | "style">, style: Route["style"] = "rfc6750"): Refusal => {
    metrics.guardRequest(route, outcome);
    log.info({ reqId: request.requestId, ...request.logIds, route, outcome, status: failure.status, method: request.method, path: pathOf(request.target) }, "guard: refused");
    const response = bearerFailureResponse(Object.assign({}, failure, { realm: guard.realm, style }, failure.status === 503 ? { retryAfter: 1 } : {}));
    return {
      kind: "refuse",
      route,
      outcome,
      status: response.status,
      error: failure.error ?? (failure.status === 503 ? "temporarily_unavailable" : undefined),
      description: failure.description ?? "a bearer token is required",
      headers: response.headers,
      body: response.body,
    };
  };

  const notFound = (request: GuardRequest): Refusal => {
    metrics.guardRequest(UNMATCHED, "not_found");
    log.info({ reqId: request.requestId, ...request.logIds, outcome: "not_found", method: request.method, path: pathOf(request.target) }, "guard: no route");
    return { kind: "refuse", route: UNMATCHED, outcome: "not_found", status: NOT_FOUND.status, error: "not_found", description: "no route serves this request", headers: NOT_FOUND.headers, body: NOT_FOUND.body };
  };

  const serverError = (request: GuardRequest, outcome: GuardOutcome, description: string): Refusal => {
    const response = oauthErrorResponse({ status: 500, error: "server_error", description });
    return { kind: "refuse", route: UNMATCHED, outcome, status: 500, error: "server_error", description, headers: response.headers, body: response.body };
  };

  /** A refusal by one route: its style, and its resource's challenge parameters. */
  const refuseAt = (request: GuardRequest, route: Route, outcome: GuardOutcome, failure: Omit<BearerFailure, "realm" | "style">): Refusal =>
    refuse(request, route.name, outcome, challengeOf(route, failure), route.style);

  const unavailable = (request: GuardRequest, route: Route, error: unknown): Refusal => {
    const cause = error instanceof TokenCheckUnavailable ? error.cause : error;
    log.warn({ reqId: request.requestId, ...request.logIds, route: route.name, reason: cause instanceof Error ? cause.message : String(cause) }, "guard: the token could not be checked");
    return refuse(request, route.name, "unavailable", { status: 503, description: "the access token cannot be checked now; try again" }, route.style);
  };

  // --- allowances ------------------------------------------------------------------

  const allow = (request: GuardRequest, route: Route | undefined, principal: Principal | undefined, target: NormalizedTarget): Allowance => {
    const name = route === undefined ? PASSTHROUGH : route.name;
    const outcome = principal === undefined ? "passthrough" : "allowed";
    metrics.guardRequest(name, outcome);
    if (logAllowed) {
      log.debug({ reqId: request.requestId, ...request.logIds, route: name, method: request.method, path: target.path, subject: principal?.subject, client: principal?.clientId }, "guard: allowed");
    }
    return {
      kind: "allow",
      route: name,
      outcome,
      principal,
      expiresAt: principal?.expiresAt,
      path: target.path,
      search: target.search,
      upstream: route === undefined ? passthrough! : route.config.upstream,
      errorStyle: route === undefined ? "rfc6750" : route.style,
      setHeaders: mutation.setHeaders(principal),
      removeHeaders: mutation.removeHeaders(request.headers, route?.config.forwardAuthorization === true),
    };
  };

  /** Steps 4 and 5, once the token's introspection is known. */
  const proceed = (request: GuardRequest, route: Route, introspected: Authentication, target: NormalizedTarget): GuardDecision => {
    if (!introspected.active) {
      const description = "malformed" in introspected ? "the access token is malformed" : "the access token is invalid, expired or revoked";
      return refuseAt(request, route, "invalid_token", { status: 401, error: "invalid_token", description });
    }
    const rule = route.config;
    // Issue 11: a route accepts the tokens of the tenants it names (the default tenant's when it names none);
    // a token of another tenant, or of a tenant no longer configured, is no token here.
    const tenant = introspected.tenant ?? DEFAULT_TENANT;
    if (!(rule.tenants ?? DEFAULT_TENANTS).includes(tenant) || (deps.tenants !== undefined && !deps.tenants().has(tenant))) {
      return refuseAt(request, route, "invalid_token", { status: 401, error: "invalid_token", description: "the access token was not issued by a tenant this route accepts" });
    }
    // RFC 9068 §4: the resource server MUST check that `aud` names it; a token for another resource is invalid here.
    // A route of a protected resource accepts exactly the tokens for its URI (RFC 8707 §2): no token passthrough between servers.
    if (rule.audience.length > 0 && !rule.audience.some((audience) => introspected.audience.includes(audience))) {
      return refuseAt(request, route, "invalid_token", { status: 401, error: "invalid_token", description: "the access token is not meant for this resource (aud)" });
    }
    if (!authorizeScopes(rule, introspected.scopes)) {
      return refuseAt(request, route, "insufficient_scope", { status: 403, error: "insufficient_scope", description: describeRequirement(rule), scope: requiredScope(rule) });
    }
    // Issue 12: the resource owner's current groups (introspected, not the token's) must satisfy the route too.
    // Refused 403 without an RFC 6750 code: RFC 6750 §3.1 has three, and each would mislead here:
    // insufficient_scope tells the client to ask for a scope, which cannot help; invalid_token to get a new
    // token, which cannot help either; invalid_request is about the request's form. RFC 9110 §15.5.4's 403
    // says what is meant, "the server understood the request but refuses to fulfill it"; the challenge
    // keeps only an error_description (RFC 6750 §3 asks for WWW-Authenticate whenever the token does not
    // enable access) and the body carries the same text in the route's style (README, "Users' rights").
    // Not refuseAt: a protected resource's challenge would add the route's scope, and an MCP client would take
    // that for a step-up it could make (RFC 9728 §5.1 scope challenge); no new token can mend missing rights.
    if (!authorizeGroups(rule, introspected.groups ?? NO_GROUPS)) {
      log.info({ reqId: request.requestId, ...request.logIds, route: route.name, subject: introspected.subject, required: rule.groups, groupMode: rule.groupMode ?? "any" }, "guard: the resource owner lacks the route's groups");
      return refuse(request, route.name, "insufficient_rights", { status: 403, description: INSUFFICIENT_RIGHTS_DESCRIPTION }, route.style);
    }
    return allow(request, route, introspected, target);
  };

  const decide = (request: GuardRequest): GuardDecision | Promise<GuardDecision> => {
    // Step 1: the target is normalised once; what cannot be is refused.
    const target = request.normalized ?? normalizeTarget(request.target);
    if (!target.ok) return refuse(request, UNMATCHED, "bad_request", { status: 400, error: "invalid_request", description: target.reason });
    const { path } = target;
    if (isOwnPath(path)) {
      // Another spelling of one of the gateway's own endpoints (or a method it does not serve).
      if (!isCanonical(request.target, path)) {
        return refuse(request, UNMATCHED, "bad_request", { status: 400, error: "invalid_request", description: "use the canonical path of this endpoint" });
      }
      return notFound(request);
    }

    // RFC 9110 §7.6.1: `Connection` names fields a proxy drops; it may not drop the target, framing, credentials or identity.
    const connection = request.headers.connection;
    if (connection !== undefined && connection !== "keep-alive" && connection !== "close") {
      const named = mutation.forbiddenConnectionOption(typeof connection === "string" ? connection : connection.join(","));
      if (named !== undefined) {
        return refuse(request, UNMATCHED, "bad_request", { status: 400, error: "invalid_request", description: `the Connection header may not name ${named}` });
      }
    }

    // Step 2: exactly one rule.
    const match = currentTable().match(request.method, path);
    if (match.kind === "ambiguous") {
      const names = match.routes.map((r) => r.config.name);
      metrics.guardRequest(UNMATCHED, "ambiguous_route");
      // A configuration problem: said once per set of rules (the metric counts every request).
      const key = names.join("\u0000");
      if (!reportedAmbiguities.has(key) && reportedAmbiguities.size < 1_000) {
        reportedAmbiguities.add(key);
        log.error({ reqId: request.requestId, ...request.logIds, routes: names, method: request.method, path }, "guard: more than one route covers this request; such requests are denied (fix the route table)");
      }
      return serverError(request, "ambiguous_route", "the gateway's route table is ambiguous for this request");
    }
    if (match.kind === "case-variant") {
      const route = routeOf.get(match.route)!;
      return refuse(request, route.name, "bad_request", { status: 400, error: "invalid_request", description: "the path differs only in letter case from a protected path" }, route.style);
    }
    if (match.kind === "other-method") return notFound(request);
    if (match.kind === "none") {
      if (passthrough === undefined) return notFound(request);
      return allow(request, undefined, undefined, target);
    }
    const route = routeOf.get(match.route)!;

    // Step 3: the bearer token, from the Authorization header only.
    const credential = extractBearer(request.headers, request.rawHeaders, target.search);
    switch (credential.kind) {
      case "none":
        // RFC 6750 §3.1: a request without authentication gets a challenge without an error code or description
        // (a protected resource's adds where its metadata is and the scope it needs, RFC 9728 §5.1).
        return refuseAt(request, route, "missing_token", { status: 401 });
      case "malformed":
        return refuseAt(request, route, "invalid_token", { status: 401, error: "invalid_token", description: credential.description });
      case "invalid_request":
        return refuse(request, route.name, "bad_request", { status: 400, error: "invalid_request", description: credential.description }, route.style);
    }
    let introspected: Authentication | Promise<Authentication>;
    try {
      introspected = traceAuthenticate === undefined ? authenticator.authenticate(credential.token) : traceAuthenticate(() => authenticator.authenticate(credential.token));
    } catch (error) {
      return unavailable(request, route, error);
    }
    // The cached path: synchronous, no promise.
    if (!(introspected instanceof Promise)) return proceed(request, route, introspected, target);
    return introspected
      .then(
        (result) => proceed(request, route, result, target),
        (error: unknown) => unavailable(request, route, error),
      )
      .catch((error: unknown) => {
        // A bug past this point must not become an unhandled rejection, nor a pass.
        log.error({ reqId: request.requestId, ...request.logIds, err: error }, "guard: failed");
        return serverError(request, "unavailable", "the gateway failed to handle the request");
      });
  };

  return {
    decide,
    isOwnPath,
    protectedResourceMetadata(path) {
      currentTable();
      return metadataOf.get(path);
    },
    watchConnections<H>(end: (handle: H, reason: ConnectionEnd) => void, options: { revocationGraceMs?: number } = {}): ConnectionWatch<H> {
      const watch = createConnectionWatch<H>({ end, clock, revocationGraceMs: options.revocationGraceMs });
      watches.add(watch as ConnectionWatchControl<unknown>);
      return watch;
    },
    start() {
      deps.revocations.start();
    },
    async close() {
      for (const watch of watches) watch.close();
      watches.clear();
      await deps.revocations.stop();
    },
  };
}

/** True for `/.well-known/oauth-protected-resource` and the paths under it (RFC 9728 §3.1). */
export function isProtectedResourceMetadataPath(path: string): boolean {
  return path.startsWith(WELL_KNOWN_PROTECTED_RESOURCE) && (path.length === WELL_KNOWN_PROTECTED_RESOURCE.length || path.charCodeAt(WELL_KNOWN_PROTECTED_RESOURCE.length) === 0x2f);
}

/** RFC 9728 §2: a resource's metadata document. */
function describeResource(resource: ProtectedResourceConfig): ProtectedResourceMetadata {
  return Object.freeze({
    resource: resource.uri,
    authorization_servers: resource.authorizationServers,
    scopes_supported: resource.scopes,
    // RFC 6750 §2.1 only: the guard takes the token from the Authorization header and nowhere else.
    bearer_methods_supported: ["header"],
    ...(resource.name === "" ? {} : { resource_name: resource.name }),
  });
}

/** The path of a request target, without its query (for logs: a query may carry secrets). */
function pathOf(target: string): string {
  const q = target.indexOf("?");
  return q === -1 ? target : target.slice(0, q);
}

/** True when the request target's path is exactly `path` (the normal form), with or without a query. */
export function isCanonical(target: string, path: string): boolean {
  return target.startsWith(path) && (target.length === path.length || target.charCodeAt(path.length) === 0x3f);
}
