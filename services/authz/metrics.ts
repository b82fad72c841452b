import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/** What the authz service shed or gave up on (README, "Overload"). */
export type AuthzOverloadKind =
  /** Refused by the concurrency limit: the queue was full, or no slot came within the wait. */
  | "shed"
  /** The call's budget (its caller's deadline less a margin) ran out inside the service. */
  | "deadline"
  /** A Redis command timed out (authz.overload.redisCommandTimeoutMs). */
  | "redis_timeout";

/**
 * The authz service's Prometheus metrics, in a registry of its own (never
 * prom-client's global one, so two services in one test process count
 * separately), served at GET /metrics on the RPC port (probes.ts).
 */
export interface AuthzMetrics {
  readonly registry: Registry;
  overload(kind: AuthzOverloadKind): void;
  /** One Logout Token's outcome (OpenID Connect Back-Channel Logout). */
  backChannelLogout(outcome: "delivered" | "retried" | "failed" | "dropped"): void;
  /** Calls holding a slot and calls queued for one, read at scrape time. */
  load(read: () => { inFlight: number; queued: number }): void;
}

export function createAuthzMetrics(): AuthzMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "gatehouse_authz_" });
  const overload = new Counter({
    name: "gatehouse_authz_overload_total",
    help: "Calls the authz service shed (kind shed), gave up on when their budget ran out (deadline), or failed on a Redis command timeout (redis_timeout).",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  for (const kind of ["shed", "deadline", "redis_timeout"] as const) overload.labels(kind).inc(0);
  const backChannelLogout = new Counter({
    name: "gatehouse_authz_backchannel_logout_total",
    help: "OpenID Connect Back-Channel Logout tokens by outcome: delivered, retried (an attempt failed and another follows), failed (given up), dropped (too many in flight).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  for (const outcome of ["delivered", "retried", "failed", "dropped"] as const) backChannelLogout.labels(outcome).inc(0);
  let read = () => ({ inFlight: 0, queued: 0 });
  new Gauge({
    name: "gatehouse_authz_calls_in_flight",
    help: "Unary calls holding a concurrency slot.",
    registers: [registry],
    collect() {
      this.set(read().inFlight);
    },
  });
  new Gauge({
    name: "gatehouse_authz_calls_queued",
    help: "Unary calls waiting for a concurrency slot.",
    registers: [registry],
    collect() {
      this.set(read().queued);
    },
  });
  return {
    registry,
    overload: (kind) => overload.labels(kind).inc(),
    backChannelLogout: (outcome) => backChannelLogout.labels(outcome).inc(),
    load(reader) {
      read = reader;
    },
  };
}
