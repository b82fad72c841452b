import type { Logger } from "pino";
import type { AuthzConfig } from "./config.js";
import { createHealth, type Health } from "./health.js";
import { createAuthorizationServer, type AuthorizationServer } from "./oauth/authorization-server.js";
import { systemClock, type Clock } from "./oauth/clock.js";
import type { OAuthContext } from "./oauth/context.js";
import { KeyRingError, type KeyRing } from "./oauth/key-ring.js";
import { createEphemeralKeyEncryptionKey } from "./oauth/key-sealing.js";
import { createPooledRandom, type RandomSource } from "./oauth/secrets.js";
import { createRemoteJwksFetcher } from "./fetch/remote-jwks-fetcher.js";
import { createMemoryStore } from "./store/memory-store.js";
import { createRedisClient, waitUntilReady } from "./store/redis-client.js";
import { createRedisStore } from "./store/redis-store.js";
import type { Store } from "./oauth/store.js";
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
  /** The authorization server over the configuration in force; handlers ask per call. */
  server(): AuthorizationServer;
  /** Re-reads self-rotating signing keys now, as their heartbeat does (signing-keys.ts); nothing for static keys. */
  refreshSigningKeys(): Promise<void>;
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
}

/** How often expired sessions are looked for (their Back-Channel Logout is at most this late). */
const SESSION_SWEEP_INTERVAL_MS = 15_000;

/** The instrumentation scope of the authz service's spans. */
export const AUTHZ_TRACER = "gatehouse-authz";

/** The composition root: the store for the configured Redis (or memory), the key ring, the server. */
export async function createAuthzDeps(config: AuthzConfig, log: Logger, overrides: DepsOverrides = {}): Promise<AuthzDeps> {
  const clock = overrides.clock ?? systemClock;
  const tracing = startTracing(config.tracing, { scope: AUTHZ_TRACER });
  const untracedStore = await createStore(config, log, clock);
  // Tracing on: every store operation and signature is a span; off, the core gets the plain ones.
  const store = tracing.enabled ? traceStore(untracedStore, tracing, config.redis === undefined ? "memory" : "redis") : untracedStore;
  const stepTracer = tracing.enabled ? createStepTracer(tracing) : undefined;
  const backChannelLogout = createBackChannelLogoutSender({ log, ...(overrides.sleep === undefined ? {} : { sleep: overrides.sleep }) });
  // One pool for the process: every context (and every reload) draws from it.
  const random = overrides.random ?? createPooledRandom();
  const sleep = overrides.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const ephemeralKek = createEphemeralKeyEncryptionKey();
  const loadKeys = (policy: AuthzConfig) => loadSigningKeys(policy, { store: untracedStore.signingKeys, log, clock, random, sleep, ephemeralKek });
  const build = (policy: AuthzConfig, signing: SigningKeys) => {
    const keys = signing.ring;
    const ctx: OAuthContext = {
      policy,
      store,
      keys: tracing.enabled ? traceKeyRing(keys, tracing) : keys,
      clock,
      random,
      sleep,
      trace: stepTracer,
      backChannelLogout,
      // Clients' jwks_uri and clusters' key sets: fetched safely, cached per configuration.
      remoteJwks: createRemoteJwksFetcher({
        ...policy.fetch,
        ca: policy.fetch.trustedCa,
        clock,
      }),
    };
    return { config: policy, keys, signing, server: createAuthorizationServer(ctx) };
  };
  let signing: SigningKeys;
  try {
    await verifySectorIdentifierUris(config);
    signing = await loadKeys(config);
    checkIdTokenAlgorithms(config, signing.ring);
  } catch (error) {
    // Keys that do not load (a wrong KEK) fail the start; what was opened for them is released.
    await store.close();
    await tracing.shutdown();
    throw error;
  }
  let current = build(config, signing);

  // Back-Channel Logout for sessions that expire: every replica sweeps; each expired session is taken by one.
  const sweeper = setInterval(() => {
    current.server.endExpiredSessions().catch((error: unknown) => log.warn({ err: error }, "sweeping expired sessions failed; retried on the next sweep"));
  }, SESSION_SWEEP_INTERVAL_MS);
  sweeper.unref();

  return {
    log,
    store,
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
    refreshSigningKeys: () => current.signing.refresh(),
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
      await verifySectorIdentifierUris(next);
      const sameKeys = signingKeySource(before) === signingKeySource(next);
      const signing = sameKeys ? current.signing : await loadKeys(next);
      checkIdTokenAlgorithms(next, signing.ring);
      const replaced = current.signing;
      // What needs a restart keeps its running value until then.
      current = build({ ...next, listen: before.listen, redis: before.redis, keyPrefix: before.keyPrefix, rpc: before.rpc, overload: before.overload, tracing: before.tracing }, signing);
      if (!sameKeys) replaced.close();
      return { needsRestart };
    },
    async close() {
      clearInterval(sweeper);
      backChannelLogout.close();
      current.signing.close();
      await store.close();
      await tracing.shutdown(); // exports what is buffered
    },
  };
}

async function createStore(config: AuthzConfig, log: Logger, clock: Clock): Promise<Store> {
  if (config.redis === undefined) {
    log.warn("no Redis configured: using the in-memory store (one process only; state is lost on restart)");
    return createMemoryStore({ clock });
  }
  const client = createRedisClient(config.redis, { commandTimeoutMs: config.overload.redisCommandTimeoutMs });
  client.on("error", (error: Error) => log.warn({ err: { message: error.message } }, "redis connection error"));
  if (!(await waitUntilReady(client, 5_000))) log.warn("redis is not reachable yet; calls answer Unavailable until it is");
  return createRedisStore({ client, clock, keyPrefix: config.keyPrefix, replicaAckTimeoutMs: config.redis.replicaAckTimeoutMs });
}

/** OpenID Connect Registration §2 id_token_signed_response_alg: only algorithms the ring can sign with. */
function checkIdTokenAlgorithms(config: AuthzConfig, ring: KeyRing): void {
  for (const client of config.clients.values()) {
    const alg = client.idTokenSignedResponseAlg;
    if (alg !== undefined && !ring.idTokenAlgorithms.includes(alg)) {
      throw new KeyRingError(`clients ${client.id}: idTokenSignedResponseAlg ${alg} has no key in the signing keys (${ring.idTokenAlgorithms.join(", ")})`);
    }
  }
}
