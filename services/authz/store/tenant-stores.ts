import type { Revocation, RevocationSubscription, Store } from "../oauth/store.js";

/**
 * The stores of every tenant of a deployment, over one backend (one Redis
 * connection, or one process's memory). Each tenant's Store sees only its own
 * key space (store/keys.ts); the protocol core gets one of them in its
 * context and never learns that others exist.
 */
export interface TenantStores {
  /** The tenant's store (undefined: the default tenant, with a deployment's keys as they were before tenants). The same object for the same tenant. */
  forTenant(tenant: string | undefined): Store;
  /**
   * Every tenant's revocations, each with the tenant that announced it: the
   * gateway's one WatchRevocations stream, whatever the number of tenants.
   */
  subscribeAll(
    onRevocation: (revocation: Revocation, tenant: string | undefined) => void,
    onBroken: (reason: Error) => void,
  ): Promise<RevocationSubscription>;
  /** Resolves when the backend answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  /** Releases the backend (every tenant's store with it). */
  close(): Promise<void>;
}
