import type { Logger } from "pino";
import type { AuthzConfig, TenantConfig } from "./config.js";
import { createHealth, type Health } from "./health.js";
import { createAuthorizationServer, type AuthorizationServer } from "./oauth/authorization-server.js";
import { systemClock, type Clock } from "./oauth/clock.js";
import type { OAuthContext } from "./oauth/context.js";
import { configurationSource, createDirectory } from "./oauth/directory.js";
import { registeredClientSource } from "./oauth/registration.js";
import { metadataDocumentSource } from "./oauth/client-metadata-document.js";
import { registrySource } from "./oauth/registry.js";
import { KeyRingError, type KeyRing } from "./oauth/key-ring.js";
import { createEphemeralKeyEncryptionKey } from "./oauth/key-sealing.js";
import { createPooledRandom, type RandomSource } from "./oauth/secrets.js";
import { createRemoteJwksFetcher } from "./fetch/remote-jwks-fetcher.js";
import { createClientMetadataDocumentFetcher } from "./fetch/client-metadata-document-fetcher.js";
import type { LookupAddress } from "node:dns";
import { createMemoryStores } from "./store/memory-store.js";
import { createRedisClient, waitUntilReady } from "./store/redis-client.js";
import { createRedisStores } from "./store/redis-store.js";
import type { TenantStores } from "./store/tenant-stores.js";
import type { Store } from "./oauth/store.js";
import type { ServerPolicy } from "./oauth/model.js";
import { DEFAULT_TENANT } from "../../startup/tenant-name.js";
import { startTracing, type Tracing } from "../../startup/tracing.js";
import { createBackChannelLogoutSender, type BackChannelLogoutSender } from "./back-channel-logout-sender.js";
import { verifySectorIdentifierUris } from "./sector-identifiers.js";
import { traceStore } from "./store/traced-store.js";
import { createStepTracer, traceKeyRing } from "./traced-core.js";
import { loadSigningKeys, signingKeySource, type SigningKeys } from "./signing-keys.js";

/** Everything the authz service runs on; built once per process. */
export interface AuthzDeps {
  readonly log: Logger;
  readonly store: Store;
  readonly health: Health;
  /** The configuration in force (replaced by a reload). */
  readonly config: AuthzConfig;
  readonly keys: KeyRing;
  /** OpenTelemetry tracing (config.tracing); `enabled` false when it is off, and then nothing is wrapped. */
  readonly tracing: Tracing;
  /** Sends OpenID Connect Back-Channel Logout tokens in the background. */
  readonly backChannelLogout: BackChannelLogoutSender;
  /** The default tenant's authorization server over the configuration in force; handlers ask per call. */
  server(): AuthorizationServer;
  /** Re-reads self-rotating signing keys now, as their heartbeat does (signing-keys.ts); nothing for static keys. */
  refreshSigningKeys(): Promise<void>;
  /**
   * The authorization server of tenant `name` (DEFAULT_TENANT: the top
   * level's) over the configuration in force; undefined when no such tenant
   * is configured now (a removed tenant's calls are refused from the reload on).
   */
  tenantServer(name: string): AuthorizationServer | undefined;
  /** The protocol context of tenant `name` as the server above runs on it (the admin API works on it); undefined: no such tenant. */
  tenantContext(name: string): OAuthContext | undefined;
  /** The name of the tenant whose issuer is `issuer` (exactly), if any. */
  tenantOfIssuer(issuer: string): string | undefined;
  /** Every tenant's store; the gateway's revocation stream listens to all of them at once. */
  readonly stores: TenantStores;
  /**
   * Applies a new configuration without dropping a connection: clients,
   * scopes, users, lifetimes, limits, the gateway credential and the signing
   * keys. Listen address, Redis, key prefix, the RPC fast path and the overload limits need a restart; a change to them
   * is reported and not applied. A configuration whose keys do not load is
   * refused whole, and the old one stays.
   */
  reload(next: AuthzConfig): Promise<{ needsRestart: string[] }>;
  close(): Promise<void>;
}

/** Test seams: time, randomness and waiting are dependencies, never globals. */
export interface DepsOverrides {
  clock?: Clock;
  random?: RandomSource;
  sleep?: (ms: number) => Promise<void>;
  /** The DNS resolver of fetches on a client's say-so (fetch/safe-https-get.ts); tests answer as a rebinding name server would. */
  resolveHost?: (hostname: string) => Promise<LookupAddress[]>;
}

/** How often expired sessions are looked for (their Back-Channel Logout is at most this late). */
const SESSION_SWEEP_INTERVAL_MS = 15_000;
/** How often registered clients unused for too long are deleted (lookups refuse them at once; this frees the store). */
const REGISTRATION_SWEEP_INTERVAL_MS = 10 * 60_000;
/** Registry entries looked at per page of a sweep, and at most this many pages per tenant per sweep. */
const REGISTRATION_SWEEP_PAGE = 500;
const REGISTRATION_SWEEP_PAGES = 20;

/** The instrumentation scope of the authz service's spans. */
export const AUTHZ_TRACER = "gatehouse-authz";

/** One tenant as it runs: its server over its policy, keys and store. */
interface RunningTenant {
  readonly signing: SigningKeys;
  /** What the keys were built from (signingKeySource), so that a reload that leaves them alone keeps them. */
  readonly keySource: string;
  readonly server: AuthorizationServer;
  readonly ctx: OAuthContext;
}

/**
 * The composition root: the stores for the configured Redis (or memory), and
 * one authorization server per tenant (issue 11), each over its own context:
 * its policy, its key ring, its store (its own key space). The protocol core
 * never learns that there are other tenants.
 */
export async function createAuthzDeps(config: AuthzConfig, log: Logger, overrides: DepsOverrides = {}): Promise<AuthzDeps> {
  const clock = overrides.clock ?? systemClock;
  const tracing = startTracing(config.tracing, { scope: AUTHZ_TRACER });
  const stores = await createStores(config, log, clock);
  // Tracing on: every store operation and signature is a span; off, the core gets the plain ones.
  const storeOf = (tenant: string | undefined): Store => {
    const store = stores.forTenant(tenant);
    return tracing.enabled ? traceStore(store, tracing, config.redis === undefined ? "memory" : "redis") : store;
  };
  const store = storeOf(undefined);
  const stepTracer = tracing.enabled ? createStepTracer(tracing) : undefined;
  const backChannelLogout = createBackChannelLogoutSender({ log, ...(overrides.sleep === undefined ? {} : { sleep: overrides.sleep }) });
  // One pool for the process: every tenant's context (and every reload) draws from it.
  const random = overrides.random ?? createPooledRandom();
  const sleep = overrides.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const ephemeralKek = createEphemeralKeyEncryptionKey();
  /**
   * The one place a tenant's signing keys are made (signing-keys.ts), from
   * the tenant's own fields and in the tenant's own key space: operator keys
   * (`signingKeys`, top level or per tenant) win; else keys that rotate
   * themselves (authz.keyRotation, the deployment's setting) in the tenant's
   * store; else a throwaway key.
   */
  const keyConfigOf = (policy: AuthzConfig, tenant: ServerPolicy & { signingKeys: AuthzConfig["signingKeys"] }) => ({
    issuer: tenant.issuer,
    signingKeys: tenant.signingKeys,
    keyRotation: policy.keyRotation,
    redis: policy.redis,
    keyPrefix: policy.keyPrefix,
    lifetimes: tenant.lifetimes,
  });
  const loadKeys = (name: string, keyConfig: ReturnType<typeof keyConfigOf>) =>
    loadSigningKeys(keyConfig, { store: stores.forTenant(name === DEFAULT_TENANT ? undefined : name).signingKeys, log: log.child({ tenant: name }), clock, random, sleep, ephemeralKek });
  /**
   * Every tenant of `policy` (the top level as DEFAULT_TENANT), keeping the
   * signing keys of `previous` where what they are built from has not changed:
   * a reload disturbs no tenant it does not touch.
   */
  const build = async (policy: AuthzConfig, previous?: ReadonlyMap<string, RunningTenant>) => {
    // Clients' jwks_uri and clusters' key sets: fetched safely, cached per configuration (shared by the tenants).
    const remoteJwks = createRemoteJwksFetcher({ ...policy.fetch, ca: policy.fetch.trustedCa, clock, resolve: overrides.resolveHost });
    // Client ID Metadata Documents (issue 15): the same fetcher's guards, 5 KB, cached within the same bounds.
    const metadataDocuments = createClientMetadataDocumentFetcher({
      ...policy.fetch,
      ca: policy.fetch.trustedCa,
      clock,
      resolve: overrides.resolveHost,
      failureCacheSeconds: policy.fetch.refetchCooldownSeconds,
    });
    // OpenID Connect Core §8.1: every tenant's pairwise clients with a sector_identifier_uri, checked before anything starts.
    await verifySectorIdentifierUris(policy);
    for (const tenant of policy.tenants.values()) await verifySectorIdentifierUris({ clients: tenant.clients, fetch: policy.fetch }, undefined, `tenants[name=${tenant.name}].`);
    const entries: Array<[string, ServerPolicy & { signingKeys: AuthzConfig["signingKeys"] }]> = [[DEFAULT_TENANT, policy], ...[...policy.tenants.values()].map((tenant): [string, TenantConfig] => [tenant.name, tenant])];
    const tenants = new Map<string, RunningTenant>();
    const issuers = new Map<string, string>();
    const opened: SigningKeys[] = [];
    try {
      await Promise.all(
        entries.map(async ([name, tenantPolicy]) => {
          const keyConfig = keyConfigOf(policy, tenantPolicy);
          const keySource = signingKeySource(keyConfig);
          const kept = previous?.get(name);
          let signing = kept?.signing;
          if (kept === undefined || kept.keySource !== keySource) opened.push((signing = await loadKeys(name, keyConfig)));
          const keys = signing!.ring;
          checkIdTokenAlgorithms(tenantPolicy, keys, name);
          const tenantStore = name === DEFAULT_TENANT ? store : storeOf(name);
          const sourceContext = { policy: tenantPolicy, store: tenantStore, clock, random, metadataDocuments };
          const ctx: OAuthContext = {
            policy: tenantPolicy,
            // The configuration's entries first: what the file declares cannot be shadowed at run time;
            // then the registry's (admin API), read from the store on every lookup; then clients that
            // registered themselves (RFC 7591, in the registry, forgotten when unused); then https client
            // ids (Client ID Metadata Documents).
            directory: createDirectory([configurationSource(tenantPolicy), registrySource(tenantStore.registry), registeredClientSource(sourceContext), metadataDocumentSource(sourceContext)]),
            store: tenantStore,
            keys: tracing.enabled ? traceKeyRing(keys, tracing) : keys,
            clock,
            random,
            sleep,
            trace: stepTracer,
            backChannelLogout,
            remoteJwks,
            metadataDocuments,
          };
          tenants.set(name, { signing: signing!, keySource, server: createAuthorizationServer(ctx), ctx });
          issuers.set(tenantPolicy.issuer, name);
        }),
      );
    } catch (error) {
      // Keys that do not load (a wrong KEK) refuse the whole configuration; what was opened for it is released.
      for (const signing of opened) signing.close();
      throw error;
    }
    const defaultTenant = tenants.get(DEFAULT_TENANT)!;
    return { config: policy, keys: defaultTenant.signing.ring, server: defaultTenant.server, tenants, issuers };
  };
  let current: Awaited<ReturnType<typeof build>>;
  try {
    current = await build(config);
  } catch (error) {
    // Keys that do not load fail the start; what was opened for them is released.
    await stores.close();
    await tracing.shutdown();
    throw error;
  }
  if (config.tenants.size > 0) log.info({ tenants: config.tenants.size + 1 }, "tenants loaded (the top level's and the named ones)");

  // Back-Channel Logout for sessions that expire: every replica sweeps; each expired session is taken by one.
  const sweeper = setInterval(() => {
    for (const [name, tenant] of current.tenants) {
      tenant.server.endExpiredSessions().catch((error: unknown) => log.warn({ err: error, tenant: name }, "sweeping expired sessions failed; retried on the next sweep"));
    }
  }, SESSION_SWEEP_INTERVAL_MS);
  sweeper.unref();
  // RFC 7591 clients unused for registration.unusedClientTtlSeconds: every replica sweeps (a delete is idempotent).
  const registrationSweeper = setInterval(() => {
    for (const [name, tenant] of current.tenants) {
      if (!tenant.server.registration.enabled()) continue;
      void (async () => {
        let after: string | undefined;
        for (let page = 0; page < REGISTRATION_SWEEP_PAGES; page++) {
          const { next } = await tenant.server.registration.sweepUnused(after, REGISTRATION_SWEEP_PAGE);
          if (next === undefined) return;
          after = next;
        }
      })().catch((error: unknown) => log.warn({ err: error, tenant: name }, "sweeping unused registered clients failed; retried on the next sweep"));
    }
  }, REGISTRATION_SWEEP_INTERVAL_MS);
  registrationSweeper.unref();

  return {
    log,
    store,
    stores,
    tracing,
    backChannelLogout,
    health: createHealth(() => store),
    get config() {
      return current.config;
    },
    get keys() {
      return current.keys;
    },
    server: () => current.server,
    tenantServer: (name) => current.tenants.get(name)?.server,
    tenantContext: (name) => current.tenants.get(name)?.ctx,
    tenantOfIssuer: (issuer) => current.issuers.get(issuer),
    refreshSigningKeys: async () => {
      await Promise.all([...current.tenants.values()].map((tenant) => tenant.signing.refresh()));
    },
    async reload(next) {
      const before = current.config;
      const needsRestart = [
        ["authz.host/port", before.listen, next.listen],
        ["authz.redis", before.redis, next.redis],
        ["authz.keyPrefix", before.keyPrefix, next.keyPrefix],
        ["authz.rpc", before.rpc, next.rpc],
        ["authz.overload", before.overload, next.overload],
        ["tracing (OTEL_*)", before.tracing, next.tracing],
      ]
        .filter(([, a, b]) => JSON.stringify(a) !== JSON.stringify(b))
        .map(([name]) => name as string);
      // What needs a restart keeps its running value until then. Tenants added,
      // changed or removed take effect here, for the next call; a removed
      // tenant's tokens are refused from now on (its server is gone).
      const replaced = current.tenants;
      current = await build(
        { ...next, listen: before.listen, redis: before.redis, keyPrefix: before.keyPrefix, rpc: before.rpc, overload: before.overload, tracing: before.tracing },
        replaced,
      );
      // Keys no tenant uses any more (rebuilt, or of a removed tenant) stop their heartbeat.
      const inUse = new Set([...current.tenants.values()].map((tenant) => tenant.signing));
      for (const tenant of replaced.values()) if (!inUse.has(tenant.signing)) tenant.signing.close();
      return { needsRestart };
    },
    async close() {
      clearInterval(sweeper);
      clearInterval(registrationSweeper);
      backChannelLogout.close();
      for (const tenant of current.tenants.values()) tenant.signing.close();
      await stores.close();
      await tracing.shutdown(); // exports what is buffered
    },
  };
}

async function createStores(config: AuthzConfig, log: Logger, clock: Clock): Promise<TenantStores> {
  if (config.redis === undefined) {
    log.warn("no Redis configured: using the in-memory store (one process only; state is lost on restart)");
    return createMemoryStores({ clock });
  }
  const client = createRedisClient(config.redis, { commandTimeoutMs: config.overload.redisCommandTimeoutMs });
  client.on("error", (error: Error) => log.warn({ err: { message: error.message } }, "redis connection error"));
  if (!(await waitUntilReady(client, 5_000))) log.warn("redis is not reachable yet; calls answer Unavailable until it is");
  return createRedisStores({ client, clock, keyPrefix: config.keyPrefix, replicaAckTimeoutMs: config.redis.replicaAckTimeoutMs });
}

/** OpenID Connect Registration §2 id_token_signed_response_alg: only algorithms the ring can sign with. */
function checkIdTokenAlgorithms(config: Pick<ServerPolicy, "clients">, ring: KeyRing, tenant: string): void {
  for (const client of config.clients.values()) {
    const alg = client.idTokenSignedResponseAlg;
    if (alg !== undefined && !ring.idTokenAlgorithms.includes(alg)) {
      throw new KeyRingError(`${tenant === DEFAULT_TENANT ? "" : `tenants[name=${tenant}].`}clients ${client.id}: idTokenSignedResponseAlg ${alg} has no key in the signing keys (${ring.idTokenAlgorithms.join(", ")})`);
    }
  }
}
