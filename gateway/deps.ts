import type { Logger } from "pino";
import { createAuthzClient, type AuthzClient } from "./rpc/authz-client.js";
import type { GatewayConfig, RouteConfig } from "./config.js";
import { compileRouteTable } from "./guard/rules.js";
import { createGatewayMetrics, type GatewayMetrics } from "./metrics.js";
import { createRevocationFeed, type RevocationFeed } from "./revocation-feed.js";
import { startTracing, type Tracing } from "../startup/tracing.js";

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
  /** The WatchRevocations subscription that keeps the guard's cache honest; the guard starts and stops it. */
  readonly revocations: RevocationFeed;
  /** OpenTelemetry tracing (config.tracing); `enabled` false when it is off. The app shuts it down on close. */
  readonly tracing: Tracing;
  /** The route table in force; a reload replaces it (the guard recompiles when the list changes). */
  routes(): readonly RouteConfig[];
  /**
   * Applies a new configuration's route table without dropping a connection.
   * Other gateway settings need a restart; a change to them is reported and
   * not applied. A table that does not compile is refused whole.
   */
  reload(next: GatewayConfig): { needsRestart: string[] };
}

/** The instrumentation scope of the gateway's spans. */
export const GATEWAY_TRACER = "gatehouse-gateway";

export function createGatewayDeps(config: GatewayConfig, log: Logger, overrides: Partial<Pick<GatewayDeps, "clock" | "draining">> = {}): GatewayDeps {
  const tracing = startTracing(config.tracing, { scope: GATEWAY_TRACER });
  const authz = createAuthzClient(config.authz, tracing);
  const clock = overrides.clock ?? (() => Date.now());
  const metrics = createGatewayMetrics();
  let routes = config.routes;
  return {
    config,
    log,
    authz,
    clock,
    tracing,
    draining: overrides.draining ?? (() => false),
    metrics,
    revocations: createRevocationFeed({
      // No deadline: the stream lives as long as the gateway (timeoutMs 0 overrides the transport's default).
      // It authenticates as the gateway's own client, which a guard-only sidecar also has.
      watch: (signal) => authz.authz.watchRevocations({}, { signal, timeoutMs: 0, headers: authz.asGatewayClient.headers }),
      clock,
      log: log.child({ component: "revocation-feed" }),
      metrics: metrics.revocationFeed,
    }),
    routes: () => routes,
    reload(next) {
      compileRouteTable(next.routes); // throws on a pattern that does not compile: nothing is applied
      const { routes: _nextRoutes, ...nextRest } = next;
      const { routes: _routes, ...rest } = config;
      const needsRestart = Object.keys(rest).filter(
        (key) => key !== "logLevel" && JSON.stringify(rest[key as keyof typeof rest]) !== JSON.stringify(nextRest[key as keyof typeof nextRest]),
      );
      routes = next.routes;
      return { needsRestart };
    },
  };
}
