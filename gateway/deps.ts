import type { Logger } from "pino";
import { createAuthzClient, type AuthzClient, type AuthzClientOptions } from "./rpc/authz-client.js";
import type { GatewayConfig, RouteConfig } from "./config.js";
import { toIntrospected } from "./guard/authenticate.js";
import { createGuardPipeline, type GuardPipeline } from "./guard/pipeline.js";
import { compileRouteTable } from "./guard/rules.js";
import { createGatewayMetrics, type GatewayMetrics, type GatewayOverloadKind } from "./metrics.js";
import type { GatewayOverload } from "./load-shed.js";
import { createConcurrencyLimiter } from "../startup/concurrency-limiter.js";
import { createOverloadReporter } from "../startup/overload-reporter.js";
import { createRevocationFeed, type RevocationFeed } from "./revocation-feed.js";
import { startTracing, type Tracing } from "../startup/tracing.js";
import { createAuthenticateTracer } from "./request-tracing.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { INACTIVE } from "./guard/introspection-cache.js";
import { unverifiedIssuer } from "../contract/token-issuer.js";
import { createGatewayTenants, type GatewayTenants } from "./tenants.js";
import { DEFAULT_TENANT } from "../startup/tenant-name.js";

/** Everything the gateway runs on; built once per process (main.ts) or per test. */
export interface GatewayDeps {
  readonly config: GatewayConfig;
  readonly log: Logger;
  readonly authz: AuthzClient;
  /** Milliseconds since the epoch; a dependency so tests move time instead of sleeping. */
  readonly clock: () => number;
  /** True once SIGTERM arrived: readiness fails first, then the server closes. */
  readonly draining: () => boolean;
  /** This gateway's Prometheus registry and instruments (never prom-client's global registry). */
  readonly metrics: GatewayMetrics;
  /** The OAuth endpoints' concurrency limit, and the rate-limited reporter of sheds and RPC deadlines. */
  readonly overload: GatewayOverload;
  /** The WatchRevocations subscription that keeps the guard's cache honest; the guard starts and stops it. */
  readonly revocations: RevocationFeed;
  /** OpenTelemetry tracing (config.tracing); `enabled` false when it is off. The app shuts it down on close. */
  readonly tracing: Tracing;
  /**
   * The guard's decision pipeline: one per process, shared by every entrance
   * (the sidecar, the check endpoint, ext_authz), so that they share the
   * route table, the introspection cache and the revocation feed. The guard
   * plugin starts it when the app is ready and closes it with the app.
   */
  readonly guard: GuardPipeline;
  /** The route table in force; a reload replaces it (the guard recompiles when the list changes). */
  routes(): readonly RouteConfig[];
  /** The tenants in force (issue 11); a reload replaces them. */
  tenants(): GatewayTenants;
  /**
   * Applies a new configuration's route table without dropping a connection.
   * Other gateway settings need a restart; a change to them is reported and
   * not applied. A table that does not compile is refused whole.
   */
  reload(next: GatewayConfig): { needsRestart: string[] };
}

/** The instrumentation scope of the gateway's spans. */
export const GATEWAY_TRACER = "gatehouse-gateway";

/** What each kind's rate-limited warn line says (README, "Overload"). */
const OVERLOAD_MESSAGES: Readonly<Record<GatewayOverloadKind, string>> = {
  shed: "requests shed: over the concurrency limit (gateway.overload); answered 503 temporarily_unavailable with Retry-After",
  rpc_deadline: "RPCs to the authz service exceeded their deadline (gateway.authz.timeoutMs); answered 503 temporarily_unavailable",
};

/**
 * What a composition root or a test may supply: time, the draining flag, and
 * the way to the authz service when it runs in this process (all-in-one/app.ts).
 */
export type GatewayDepsOverrides = Partial<Pick<GatewayDeps, "clock" | "draining">> & AuthzClientOptions;

export function createGatewayDeps(config: GatewayConfig, log: Logger, overrides: GatewayDepsOverrides = {}): GatewayDeps {
  const tracing = startTracing(config.tracing, { scope: GATEWAY_TRACER });
  const clock = overrides.clock ?? (() => Date.now());
  const metrics = createGatewayMetrics();
  const limiter = createConcurrencyLimiter(config.overload);
  metrics.load(() => ({ inFlight: limiter.inFlight(), queued: limiter.queued() }));
  const reporter = createOverloadReporter({ log, messages: OVERLOAD_MESSAGES, count: metrics.overload });
  const authz = createAuthzClient(config.authz, {
    ...(overrides.transport === undefined ? {} : { transport: overrides.transport }),
    onDeadline: (procedure) => reporter.report("rpc_deadline", { procedure, timeoutMs: config.authz.timeoutMs }),
    tracing,
    onSend: metrics.authzCalls,
  });
  let routes = config.routes;
  let tenants = createGatewayTenants(config);
  const revocations = createRevocationFeed({
    // No deadline: the stream lives as long as the gateway (timeoutMs 0 overrides the transport's default).
    // It authenticates as the gateway's own client, which a guard-only sidecar also has.
    watch: (signal) => authz.authz.watchRevocations({}, { signal, timeoutMs: 0, headers: authz.asGatewayClient.headers }),
    clock,
    log: log.child({ part: "revocation-feed" }),
    metrics: metrics.revocationFeed,
  });
  const guard = createGuardPipeline({
    config,
    routes: () => routes,
    introspect: async (token) => {
      // The token's tenant is asked (its `iss`, verified there); an opaque token is the default tenant's.
      const issuer = tenants.names.size === 0 ? undefined : unverifiedIssuer(token);
      const tenant = (issuer === undefined ? undefined : tenants.ofIssuer(issuer)) ?? DEFAULT_TENANT;
      try {
        return toIntrospected(await authz.authz.introspect({ token }, tenants.names.size === 0 ? authz.asGatewayClient : authz.asGatewayIn(tenant)), tenants);
      } catch (error) {
        // A tenant the authz service no longer has (removed by a reload this gateway has not seen yet): its tokens are dead.
        if (error instanceof ConnectError && error.code === Code.NotFound) return INACTIVE;
        throw error;
      }
    },
    revocations,
    tenants: () => tenants,
    clock,
    metrics,
    log,
    traceAuthenticate: createAuthenticateTracer(tracing),
  });
  return {
    config,
    log,
    authz,
    clock,
    tracing,
    draining: overrides.draining ?? (() => false),
    metrics,
    overload: { limiter, reporter },
    revocations,
    guard,
    routes: () => routes,
    tenants: () => tenants,
    reload(next) {
      compileRouteTable(next.routes); // throws on a pattern that does not compile: nothing is applied
      const { routes: _nextRoutes, tenants: _nextTenants, ...nextRest } = next;
      const { routes: _routes, tenants: _tenants, ...rest } = config;
      const needsRestart = Object.keys(rest).filter(
        (key) => key !== "logLevel" && JSON.stringify(rest[key as keyof typeof rest]) !== JSON.stringify(nextRest[key as keyof typeof nextRest]),
      );
      routes = next.routes;
      // Tenants added, changed or removed: from the next request on (their endpoints, the guard's routes).
      tenants = createGatewayTenants({ issuer: config.issuer, paths: config.paths, tenants: next.tenants });
      return { needsRestart };
    },
  };
}
