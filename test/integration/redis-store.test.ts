import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createRedisClient, waitUntilReady } from "../../services/authz/store/redis-client.js";
import { createRedisStore } from "../../services/authz/store/redis-store.js";
import { SPA_REDIRECT, obtainCode, pkcePair, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { defineStoreContract } from "./store-contract.js";

defineStoreContract("redis", async () => {
  let now = Date.now();
  const client = createRedisClient({ kind: "url", url: inject("redisUrl") });
  if (!(await waitUntilReady(client, scaledBudget(5_000)))) throw new Error(`the store's Redis client was not ready within ${scaledBudget(5_000)} ms`);
  const store = createRedisStore({ client, clock: () => now, keyPrefix: `contract-${randomBytes(4).toString("hex")}:` });
  return {
    store,
    now: () => now,
    // TTLs run on Redis's clock, so time must really pass as well.
    advance: async (ms) => {
      now += ms;
      await new Promise((resolve) => setTimeout(resolve, ms));
    },
    close: () => store.close(),
  };
});

describe("Redis keys after a full flow", () => {
  let t: TestAuthz;
  let redis: Redis;
  beforeAll(async () => {
    t = await startTestAuthz({ redisUrl: inject("redisUrl") });
    redis = new Redis(inject("redisUrl"));
  });
  afterAll(async () => {
    redis.disconnect();
    await t.close();
  });

  it("hold only hashes of codes, tokens and sessions, and every key has a TTL", async () => {
    const pkce = pkcePair();
    const { code } = await obtainCode(t, { clientId: "spa", scope: "read", codeChallenge: pkce.challenge });
    const { token } = await t.authz.exchangeCode({ code, codeVerifier: pkce.verifier, clientId: "spa", redirectUri: SPA_REDIRECT });
    const { token: rotated } = await t.authz.refresh({ refreshToken: token!.refreshToken, clientId: "spa" });
    const session = await t.sessions.login({ username: "alice", password: "correct horse" }, t.asGateway);
    await t.authz.revoke({ token: rotated!.accessToken, clientId: "spa" });
    const pending = await t.authz.authorize(
      { responseType: "code", clientId: "web", redirectUri: "https://web.test/callback", scope: "read", codeChallenge: pkce.challenge, codeChallengeMethod: "S256" },
      t.asGateway,
    );

    const secrets = [code, token!.refreshToken, rotated!.refreshToken, session.sessionToken, pending.requestId, pkce.verifier];
    const prefix = t.running.deps.config.keyPrefix;
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
    expect(keys.length).toBeGreaterThanOrEqual(6);

    for (const key of keys) {
      expect(await redis.pttl(key), key).toBeGreaterThan(0);
      const type = await redis.type(key);
      const contents =
        type === "string"
          ? [await redis.get(key)]
          : type === "hash"
            ? Object.entries(await redis.hgetall(key)).flat()
            : type === "zset"
              ? await redis.zrange(key, "0", "-1")
              : await redis.smembers(key);
      for (const secret of secrets) {
        expect(key.includes(secret.split(".").pop()!), `${key} holds a secret`).toBe(false);
        for (const value of contents) expect(String(value).includes(secret.split(".").pop()!), `${key} holds a secret`).toBe(false);
      }
    }
  });
});
