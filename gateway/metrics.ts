import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * The gateway's Prometheus metrics, in a registry of its own (never
 * prom-client's global one), so that two gateways in one process (tests)
 * count separately. Label values are bounded: route names come from the
 * configuration, outcomes from the fixed lists below.
 */

/** What the guard did with a request. */
export type GuardOutcome =
  /** Token checked, scope covered: proxied. */
  | "allowed"
  /** No route, passed to the public upstream unchecked. */
  | "passthrough"
  /** 401 without a token. */
  | "missing_token"
  /** 401 invalid_token: malformed, expired, revoked, unknown. */
  | "invalid_token"
  /** 403 insufficient_scope. */
  | "insufficient_scope"
  /** 403 without an RFC 6750 code: the token is good, its resource owner lacks the route's groups (issue 12). */
  | "insufficient_rights"
  /** 503: the token could not be checked. */
  | "unavailable"
  /** 400: an ambiguous path, or RFC 6750 §3.1 invalid_request. */
  | "bad_request"
  /** 404: no route. */
  | "not_found"
  /** 500: two rules cover the request (a configuration problem). */
  | "ambiguous_route";

/** What the gateway shed or timed out (README, "Overload"). */
export type GatewayOverloadKind =
  /** Refused by the endpoints' concurrency limit (gateway.overload): 503 with Retry-After. */
  | "shed"
  /** An RPC to the authz service outlived gateway.authz.timeoutMs. */
  | "rpc_deadline";

export interface GatewayMetrics {
  readonly registry: Registry;
  /** Counts one guarded request; `route` is the rule's name, or "(none)". */
  guardRequest(route: string, outcome: GuardOutcome): void;
  upstreamFailure(route: string, kind: "timeout" | "unreachable"): void;
  cacheHit(): void;
  cacheMiss(reason: "absent" | "untrusted" | "disabled"): void;
  introspected(seconds: number, outcome: "active" | "inactive" | "error"): void;
  /** The size of the introspection cache, read at scrape time. */
  cacheSize(read: () => number): void;
  overload(kind: GatewayOverloadKind): void;
  /** Requests holding a slot of the endpoints' limit and requests queued for one, read at scrape time. */
  load(read: () => { inFlight: number; queued: number }): void;
  readonly revocationFeed: { up(live: boolean): void; revocation(kind: "jti" | "grant_id" | "subject"): void; reconnect(): void };
  /** Calls to the authz service that went out alone (1) or in a batch of `calls` (rpc/batching-transport.ts). */
  authzCalls(calls: number): void;
}

export function createGatewayMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "gatehouse_gateway_" });

  // The per-request counters are plain numbers on the hot path, handed to
  // prom-client at scrape time (its label lookup hashes the labels on every inc).
  const requestCounts = new Map<string, { route: string; outcome: GuardOutcome; count: number }>();
  const misses = { absent: 0, untrusted: 0, disabled: 0 };
  let hits = 0;
  new Counter({
    name: "gatehouse_guard_requests_total",
    help: "Requests the guard decided on, by route and outcome.",
    labelNames: ["route", "outcome"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { route, outcome, count } of requestCounts.values()) this.labels(route, outcome).inc(count);
    },
  });
  new Counter({
    name: "gatehouse_guard_cache_hits_total",
    help: "Introspection results served from the cache.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(hits);
    },
  });
  new Counter({
    name: "gatehouse_guard_cache_misses_total",
    help: "Requests that needed an introspection: absent (not cached or no longer valid), untrusted (the revocation feed is down), disabled (no cache).",
    labelNames: ["reason"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, count] of Object.entries(misses)) this.labels(reason).inc(count);
    },
  });
  const upstreamFailures = new Counter({
    name: "gatehouse_guard_upstream_failures_total",
    help: "Proxied requests whose upstream timed out (504) or could not be reached (502).",
    labelNames: ["route", "kind"] as const,
    registers: [registry],
  });
  const introspection = new Histogram({
    name: "gatehouse_guard_introspection_duration_seconds",
    help: "Introspect calls to the authz service, by result.",
    labelNames: ["outcome"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  let readCacheSize: () => number = () => 0;
  new Gauge({
    name: "gatehouse_guard_cache_entries",
    help: "Introspection results held in the cache.",
    registers: [registry],
    collect() {
      this.set(readCacheSize());
    },
  });
  const feedUp = new Gauge({
    name: "gatehouse_guard_revocation_feed_up",
    help: "1 while the WatchRevocations stream is live and the cache is trusted, else 0.",
    registers: [registry],
  });
  feedUp.set(0);
  const revocations = new Counter({
    name: "gatehouse_guard_revocations_total",
    help: "Revocations announced on the feed, by what they name.",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  const reconnects = new Counter({
    name: "gatehouse_guard_revocation_feed_reconnects_total",
    help: "Times the revocation stream was lost and resubscribed.",
    registers: [registry],
  });

  // The hop to the authz service (rpc/batching-transport.ts): calls sent alone and in batches, and the batches.
  const hop = { alone: 0, batched: 0, batches: 0 };
  new Counter({
    name: "gatehouse_gateway_authz_calls_total",
    help: "Calls to the authz service that the batching transport sent alone or in a CallBatch (sent: alone, batched).",
    labelNames: ["sent"] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.labels("alone").inc(hop.alone);
      this.labels("batched").inc(hop.batched);
    },
  });
  new Counter({
    name: "gatehouse_gateway_authz_batches_total",
    help: "CallBatch RPCs sent to the authz service; batched calls / batches is the mean batch.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(hop.batches);
    },
  });

  const overload = new Counter({
    name: "gatehouse_gateway_overload_total",
    help: "Requests the gateway shed at its endpoints' concurrency limit (kind shed), and RPCs to the authz service that outlived their deadline (rpc_deadline).",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  for (const kind of ["shed", "rpc_deadline"] as const) overload.labels(kind).inc(0);
  let readLoad = () => ({ inFlight: 0, queued: 0 });
  new Gauge({
    name: "gatehouse_gateway_requests_in_flight",
    help: "Requests holding a slot of the OAuth endpoints' and pages' concurrency limit.",
    registers: [registry],
    collect() {
      this.set(readLoad().inFlight);
    },
  });
  new Gauge({
    name: "gatehouse_gateway_requests_queued",
    help: "Requests waiting for a slot of the OAuth endpoints' and pages' concurrency limit.",
    registers: [registry],
    collect() {
      this.set(readLoad().queued);
    },
  });

  return {
    registry,
    overload: (kind) => overload.labels(kind).inc(),
    load(read) {
      readLoad = read;
    },
    guardRequest(route, outcome) {
      const key = `${outcome}\u0000${route}`;
      const entry = requestCounts.get(key);
      if (entry === undefined) requestCounts.set(key, { route, outcome, count: 1 });
      else entry.count++;
    },
    upstreamFailure: (route, kind) => upstreamFailures.labels(route, kind).inc(),
    cacheHit: () => {
      hits++;
    },
    cacheMiss: (reason) => {
      misses[reason]++;
    },
    introspected: (seconds, outcome) => introspection.labels(outcome).observe(seconds),
    cacheSize(read) {
      readCacheSize = read;
    },
    authzCalls(calls) {
      if (calls === 1) hop.alone++;
      else {
        hop.batched += calls;
        hop.batches++;
      }
    },
    revocationFeed: {
      up: (live) => feedUp.set(live ? 1 : 0),
      revocation: (kind) => revocations.labels(kind).inc(),
      reconnect: () => reconnects.inc(),
    },
  };
}
