import type { Store } from "./oauth/store.js";

export type ServingStatus = "SERVING" | "NOT_SERVING";

/**
 * The authz service's health: alive while the process answers; serving while
 * it is not draining and its store answers. Kubernetes probes ask over HTTP
 * (/healthz, /readyz) or the gRPC health checking protocol; both ask this.
 */
export interface Health {
  status(): Promise<ServingStatus>;
  /** Readiness goes false first on SIGTERM, before anything closes. */
  startDraining(): void;
  readonly draining: boolean;
}

export function createHealth(store: () => Store): Health {
  let draining = false;
  return {
    async status() {
      if (draining) return "NOT_SERVING";
      try {
        await store().ping();
        return "SERVING";
      } catch {
        return "NOT_SERVING";
      }
    },
    startDraining() {
      draining = true;
    },
    get draining() {
      return draining;
    },
  };
}
