import type { Redis } from "ioredis";
import { errors, type Adapter, type AdapterPayload } from "oidc-provider";

/** Models that are used once: stored as a hash, so that `consumed` is a field set beside the payload. */
const CONSUMABLE = new Set(["AuthorizationCode", "RefreshToken", "DeviceCode", "BackchannelAuthenticationRequest"]);
/** Models revoked together with their grant (RFC 6749 §4.1.2, §10.4): listed under the grant's key. */
const GRANTABLE = new Set(["AccessToken", "AuthorizationCode", "RefreshToken", "DeviceCode", "BackchannelAuthenticationRequest"]);

/**
 * Marks a model consumed, atomically: 1 when this call consumed it, 0 when it
 * was consumed already, -1 when it is gone. HSETNX alone would recreate an
 * expired key without a TTL, hence the EXISTS in the same script.
 */
const CONSUME_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], 'consumed', ARGV[1])
`;

type RedisWithConsume = Redis & { oidcProviderConsume(key: string, now: number): Promise<number> };

/**
 * An ioredis adapter for node-oidc-provider 9, after the shape of the
 * project's example Redis adapter, with one change that matters to a fair
 * comparison: `consume` is atomic. The provider reads a code or refresh token
 * (`find`), checks `consumed`, and only then calls `consume`; two concurrent
 * redemptions could both pass the check. Here the second `consume` finds the
 * field already set (one Lua script, HSETNX) and fails the request with
 * invalid_grant, so exactly one redemption wins (RFC 6749 §4.1.2: a code is
 * used once; RFC 9700 §4.14.2: a rotated refresh token once).
 *
 * `redis` should carry the deployment's keyPrefix; keys here are unprefixed.
 */
export function createOidcProviderRedisAdapter(redis: Redis): new (name: string) => Adapter {
  redis.defineCommand("oidcProviderConsume", { numberOfKeys: 1, lua: CONSUME_SCRIPT });
  const client = redis as RedisWithConsume;
  const grantKey = (grantId: string) => `grant:${grantId}`;
  const userCodeKey = (userCode: string) => `userCode:${userCode}`;
  const uidKey = (uid: string) => `uid:${uid}`;

  return class OidcProviderRedisAdapter implements Adapter {
    readonly #name: string;

    constructor(name: string) {
      this.#name = name;
    }

    #key(id: string): string {
      return `${this.#name}:${id}`;
    }

    /** One MULTI: the model, its TTL, and its place in the grant's list. */
    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const key = this.#key(id);
      const multi = client.multi();
      if (CONSUMABLE.has(this.#name)) {
        // A re-saved model keeps a `consumed` field already set: the safe direction.
        multi.hset(key, "payload", JSON.stringify(payload));
        if (expiresIn) multi.expire(key, expiresIn);
      } else if (expiresIn) {
        multi.set(key, JSON.stringify(payload), "EX", expiresIn);
      } else {
        multi.set(key, JSON.stringify(payload));
      }
      if (GRANTABLE.has(this.#name) && typeof payload.grantId === "string" && expiresIn) {
        const grant = grantKey(payload.grantId);
        multi.rpush(grant, key);
        // The list lives as long as its longest-lived member: set when new, extend when longer.
        multi.expire(grant, expiresIn, "NX");
        multi.expire(grant, expiresIn, "GT");
      }
      if (typeof payload.userCode === "string" && expiresIn) multi.set(userCodeKey(payload.userCode), id, "EX", expiresIn);
      if (this.#name === "Session" && typeof payload.uid === "string" && expiresIn) multi.set(uidKey(payload.uid), id, "EX", expiresIn);
      const results = await multi.exec();
      const failed = results?.find(([error]) => error !== null);
      if (failed !== undefined) throw failed[0];
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      const key = this.#key(id);
      if (CONSUMABLE.has(this.#name)) {
        const { payload, consumed } = await client.hgetall(key);
        if (payload === undefined) return undefined;
        return { ...(JSON.parse(payload) as AdapterPayload), ...(consumed === undefined ? {} : { consumed: Number(consumed) }) };
      }
      const data = await client.get(key);
      return data === null ? undefined : (JSON.parse(data) as AdapterPayload);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const id = await client.get(uidKey(uid));
      return id === null ? undefined : this.find(id);
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const id = await client.get(userCodeKey(userCode));
      return id === null ? undefined : this.find(id);
    }

    /** Atomic: of two concurrent redemptions, the second fails with invalid_grant. */
    async consume(id: string): Promise<void> {
      const won = await client.oidcProviderConsume(this.#key(id), Math.floor(Date.now() / 1000));
      if (won !== 1) throw new errors.InvalidGrant(`${this.#name} already consumed or gone`);
    }

    async destroy(id: string): Promise<void> {
      await client.del(this.#key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      const grant = grantKey(grantId);
      const keys = await client.lrange(grant, 0, -1);
      await client.del(...keys, grant);
    }
  };
}
