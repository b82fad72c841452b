import type { Logger } from "pino";
import type { AuthzConfig } from "./config.js";
import { createAuthorizationServer, type AuthorizationServer } from "./oauth/authorization-server.js";
import { systemClock, type Clock } from "./oauth/clock.js";
import type { OAuthContext } from "./oauth/context.js";
import { createKeyRing, generateDevelopmentJwks, type KeyRing } from "./oauth/key-ring.js";
import { cryptoRandom, type RandomSource } from "./oauth/secrets.js";
import { createMemoryStore } from "./store/memory-store.js";
import { createRedisClient, waitUntilReady } from "./store/redis-client.js";
import { createRedisStore } from "./store/redis-store.js";
import type { Store } from "./store/store.js";

/** Everything the authz service runs on; built once per process. */
export interface AuthzDeps {
  readonly config: AuthzConfig;
  readonly log: Logger;
  readonly store: Store;
  readonly keys: KeyRing;
  /** The current authorization server (swapped whole when the configuration is reloaded). */
  readonly server: () => AuthorizationServer;
  close(): Promise<void>;
}

/** Test seams: time, randomness and waiting are dependencies, never globals. */
export interface DepsOverrides {
  clock?: Clock;
  random?: RandomSource;
  sleep?: (ms: number) => Promise<void>;
}

/** The composition root: the store for the configured Redis (or memory), the key ring, the server. */
export async function createAuthzDeps(config: AuthzConfig, log: Logger, overrides: DepsOverrides = {}): Promise<AuthzDeps> {
  const clock = overrides.clock ?? systemClock;
  const store = await createStore(config, log, clock);
  const keys = await loadKeyRing(config, log);
  const ctx: OAuthContext = {
    policy: config,
    store,
    keys,
    clock,
    random: overrides.random ?? cryptoRandom,
    sleep: overrides.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
  };
  const server = createAuthorizationServer(ctx);
  return { config, log, store, keys, server: () => server, close: () => store.close() };
}

async function createStore(config: AuthzConfig, log: Logger, clock: Clock): Promise<Store> {
  if (config.redis === undefined) {
    log.warn("no Redis configured: using the in-memory store (one process only; state is lost on restart)");
    return createMemoryStore({ clock });
  }
  const client = createRedisClient(config.redis);
  client.on("error", (error: Error) => log.warn({ err: { message: error.message } }, "redis connection error"));
  if (!(await waitUntilReady(client, 5_000))) log.warn("redis is not reachable yet; calls answer Unavailable until it is");
  return createRedisStore({ client, clock, keyPrefix: config.keyPrefix });
}

async function loadKeyRing(config: AuthzConfig, log: Logger): Promise<KeyRing> {
  if (config.signingKeys !== undefined) {
    const ring = await createKeyRing({ jwks: config.signingKeys.jwks, activeKid: config.signingKeys.activeKid, issuer: config.issuer });
    log.info({ activeKid: ring.activeKid, keys: ring.publicJwks.keys.length, source: config.signingKeys.source }, "signing keys loaded");
    return ring;
  }
  const ring = await createKeyRing({ jwks: await generateDevelopmentJwks(), activeKid: undefined, issuer: config.issuer });
  log.warn(
    { activeKid: ring.activeKid },
    "no signing keys configured (authz.signingKeys): generated a throwaway key; tokens die with this process and replicas cannot verify each other's. Development only.",
  );
  return ring;
}
