import type { Logger } from "pino";
import { KEY_ROTATION_DEFAULTS, type AuthzConfig, type KeyRotationConfig } from "./config.js";
import type { Clock } from "./oauth/clock.js";
import { createKeyRing, generateDevelopmentJwks, KeyRingError, type KeyRing } from "./oauth/key-ring.js";
import { createKeyEncryptionKey, type KeyEncryptionKey } from "./oauth/key-sealing.js";
import { createRotatingKeyRing, type RotatingKeyRing } from "./oauth/rotating-key-ring.js";
import type { RandomSource } from "./oauth/secrets.js";
import type { SigningKeyStore } from "./oauth/signing-key-store.js";

/** The signing keys in force, and what keeps them current. */
export interface SigningKeys {
  readonly ring: KeyRing;
  /** Re-reads self-rotating keys now, as the heartbeat does; nothing for static keys. */
  refresh(): Promise<void>;
  /** Stops the heartbeat. */
  close(): void;
}

/**
 * What the signing keys of one issuer are built from: the top level today,
 * and the same fields of each tenant once tenants land (one call per tenant,
 * with the tenant's key space as `store`).
 */
export type SigningKeyConfig = Pick<AuthzConfig, "issuer" | "signingKeys" | "keyRotation" | "redis" | "keyPrefix"> & { lifetimes: Pick<AuthzConfig["lifetimes"], "accessToken"> };

export interface SigningKeyDeps {
  /** The key space's signing keys (the store's; per tenant, the tenant's). */
  store: SigningKeyStore;
  log: Logger;
  clock: Clock;
  random: RandomSource;
  sleep: (ms: number) => Promise<void>;
  /**
   * The KEK of the memory store when none is configured: one per process, so
   * that a reload that rebuilds the ring still opens the keys it sealed.
   */
  ephemeralKek: KeyEncryptionKey;
}

/**
 * Which signing keys the configuration asks for, in this order:
 * 1. operator keys (authz.signingKeys): they win, whatever else is set;
 * 2. self-rotating keys (authz.keyRotation), in the store's key space;
 * 3. with neither and no Redis (the embedded default, `npm start`): self-rotating
 *    keys with the defaults on the memory store, under an ephemeral KEK;
 * 4. with neither but Redis: a throwaway key per process, as before (development only).
 */
export async function loadSigningKeys(
  config: SigningKeyConfig,
  deps: SigningKeyDeps,
): Promise<SigningKeys> {
  const { log } = deps;
  if (config.signingKeys !== undefined) {
    const ring = await createKeyRing({ jwks: config.signingKeys.jwks, activeKid: config.signingKeys.activeKid, issuer: config.issuer });
    log.info({ activeKid: ring.activeKid, keys: ring.publicJwks.keys.length, source: config.signingKeys.source }, "signing keys loaded");
    if (config.keyRotation !== undefined) log.warn("authz.signingKeys and authz.keyRotation are both set: the operator's keys are used and do not rotate by themselves");
    return staticKeys(ring);
  }
  const rotation: KeyRotationConfig | undefined =
    config.keyRotation ?? (config.redis === undefined ? { ...KEY_ROTATION_DEFAULTS, keyEncryptionKey: undefined, keyEncryptionKeySource: undefined } : undefined);
  if (rotation !== undefined) return startRotation(config, rotation, deps);
  const ring = await createKeyRing({ jwks: await generateDevelopmentJwks(), activeKid: undefined, issuer: config.issuer });
  log.warn(
    { activeKid: ring.activeKid },
    "no signing keys configured (authz.signingKeys or authz.keyRotation): generated a throwaway key; tokens die with this process and replicas cannot verify each other's. Development only.",
  );
  return staticKeys(ring);
}

/**
 * What the signing keys are built from: a reload rebuilds them only when this
 * changes. Self-rotating keys also retire by the access token lifetime; a
 * throwaway key is kept whatever changes, or every token would die.
 */
export function signingKeySource(config: SigningKeyConfig): string {
  if (config.signingKeys !== undefined) return JSON.stringify(["operator", config.signingKeys, config.issuer]);
  if (config.keyRotation !== undefined || config.redis === undefined) {
    return JSON.stringify(["rotating", config.keyRotation, config.issuer, config.lifetimes.accessToken]);
  }
  return JSON.stringify(["throwaway"]);
}

function staticKeys(ring: KeyRing): SigningKeys {
  return { ring, refresh: async () => {}, close: () => {} };
}

async function startRotation(
  config: SigningKeyConfig,
  rotation: KeyRotationConfig,
  deps: SigningKeyDeps,
): Promise<SigningKeys> {
  const { log } = deps;
  let kek;
  if (rotation.keyEncryptionKey !== undefined) {
    kek = createKeyEncryptionKey(Buffer.from(rotation.keyEncryptionKey, "base64url"));
  } else {
    // config.ts refuses a Redis configuration without a KEK; this is the memory store.
    kek = deps.ephemeralKek;
    log.warn("self-rotating signing keys on the memory store with no key-encryption key configured: using an ephemeral one (keys and tokens die with this process). Development only.");
  }
  const ring: RotatingKeyRing = await createRotatingKeyRing({
    store: deps.store,
    policy: {
      rotateEveryMs: rotation.rotateEverySeconds * 1000,
      publishAheadMs: rotation.publishAheadSeconds * 1000,
      accessTokenTtlMs: config.lifetimes.accessToken * 1000,
      retireMarginMs: rotation.retireMarginSeconds * 1000,
    },
    algorithm: rotation.algorithm,
    kek,
    issuer: config.issuer,
    clock: deps.clock,
    random: deps.random,
    sleep: deps.sleep,
    events: {
      onGenerated: (key) => log.info({ kid: key.kid, alg: key.alg, activatesAt: new Date(key.activatesAt).toISOString() }, "signing key generated and published"),
      onChanged: (set) => log.info(set, "signing keys changed"),
      onRefreshFailed: (error) => log.warn({ err: { message: (error as Error).message } }, "signing keys could not be refreshed; keeping the keys held"),
    },
  }).catch((error: unknown) => {
    throw new KeyRingError(`authz.keyRotation (key space ${JSON.stringify(config.keyPrefix)}): ${(error as Error).message}`);
  });
  log.info(
    { activeKid: ring.activeKid, kids: ring.keySet.keys.map((k) => k.kid), kek: rotation.keyEncryptionKeySource ?? "ephemeral", kekId: kek.id },
    "self-rotating signing keys loaded",
  );
  const heartbeat = setInterval(() => void ring.refresh(), rotation.heartbeatSeconds * 1000);
  heartbeat.unref();
  return { ring, refresh: () => ring.refresh(), close: () => clearInterval(heartbeat) };
}
