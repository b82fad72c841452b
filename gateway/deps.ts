import type { Logger } from "pino";
import { createAuthzClient, type AuthzClient } from "./authz-client.js";
import type { GatewayConfig } from "./config.js";

/** Everything the gateway runs on; built once per process (main.ts) or per test. */
export interface GatewayDeps {
  readonly config: GatewayConfig;
  readonly log: Logger;
  readonly authz: AuthzClient;
  /** Milliseconds since the epoch; a dependency so tests move time instead of sleeping. */
  readonly clock: () => number;
  /** True once SIGTERM arrived: readiness fails first, then the server closes. */
  readonly draining: () => boolean;
}

export function createGatewayDeps(config: GatewayConfig, log: Logger, overrides: Partial<Pick<GatewayDeps, "clock" | "draining">> = {}): GatewayDeps {
  return {
    config,
    log,
    authz: createAuthzClient(config.authz),
    clock: overrides.clock ?? (() => Date.now()),
    draining: overrides.draining ?? (() => false),
  };
}
