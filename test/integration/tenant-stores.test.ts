import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Revocation } from "../../services/authz/oauth/store.js";
import { createMemoryStores } from "../../services/authz/store/memory-store.js";
import { createRedisClient, waitUntilReady } from "../../services/authz/store/redis-client.js";
import { createRedisStores } from "../../services/authz/store/redis-store.js";
import type { TenantStores } from "../../services/authz/store/tenant-stores.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { waitFor } from "../support/wait-for.js";
import { defineStoreContract } from "./store-contract.js";

/**
 * Issue 11: each tenant's store keeps the whole Store contract on its own,
 * and sees nothing of another tenant's, on the memory store and on Redis.
 */
async function redisStores(): Promise<TenantStores> {
  const client = createRedisClient({ kind: "url", url: inject("redisUrl") });
  if (!(await waitUntilReady(client, scaledBudget(5_000)))) throw new Error("Redis not ready");
  return createRedisStores({ client, clock: () => Date.now(), keyPrefix: `tenants-${randomBytes(4).toString("hex")}:` });
}

defineStoreContract("redis, tenant-scoped", async () => {
  let now = Date.now();
  const client = createRedisClient({ kind: "url", url: inject("redisUrl") });
  if (!(await waitUntilReady(client, scaledBudget(5_000)))) throw new Error("Redis not ready");
  const stores = createRedisStores({ client, clock: () => now, keyPrefix: `contract-${randomBytes(4).toString("hex")}:` });
  return {
    store: stores.forTenant("acme"),
    now: () => now,
    advance: async (ms) => {
      now += ms;
      await new Promise((resolve) => setTimeout(resolve, ms));
    },
    close: () => stores.close(),
  };
});

defineStoreContract("memory, tenant-scoped", async () => {
  let now = Date.now();
  const stores = createMemoryStores({ clock: () => now });
  return {
    store: stores.forTenant("acme"),
    now: () => now,
    advance: async (ms) => {
      now += ms;
    },
    close: () => stores.close(),
  };
});

for (const [name, make] of [
  ["redis", redisStores],
  ["memory", async () => createMemoryStores({ clock: () => Date.now() })],
] as const) {
  describe(`tenant stores on ${name}: nothing crosses (issue 11)`, () => {
    let stores: TenantStores;
    beforeAll(async () => {
      stores = await make();
    });
    afterAll(() => stores.close());

    it("the same hashes and ids in two tenants are two different things", async () => {
      const [acme, globex, fallback] = [stores.forTenant("acme"), stores.forTenant("globex"), stores.forTenant(undefined)];
      expect(stores.forTenant("acme")).toBe(acme);
      await acme.requests.park("r1", { clientId: "web", responseType: "code", redirectUri: "https://web/cb", redirectUriGiven: true, scopes: ["read"], state: "" }, 60);
      expect(await globex.requests.take("r1")).toBeUndefined();
      expect(await fallback.requests.take("r1")).toBeUndefined();
      expect(await acme.requests.take("r1")).toMatchObject({ clientId: "web" });

      const grant = { grantId: "g1", clientId: "web", redirectUri: "https://web/cb", redirectUriGiven: true, scopes: ["read"], subject: "alice", authTime: 1 };
      await acme.codes.save("c1", grant, 60);
      expect(await globex.codes.redeem("c1", 60)).toEqual({ kind: "unknown" });
      expect((await acme.codes.redeem("c1", 60)).kind).toBe("redeemed");

      const family = { grantId: "g1", tokenHash: "t1", clientId: "web", subject: "alice", scopes: ["read"], authTime: 1, tokenExpiresAt: Date.now() + 60_000, familyExpiresAt: Date.now() + 120_000 };
      expect(await acme.grants.create(family)).toBe(true);
      expect(await globex.grants.get("g1")).toBeUndefined();
      await globex.grants.revoke("g1", 60_000);
      expect(await acme.grants.isRevoked("g1")).toBe(false);
      expect(await acme.grants.get("g1")).toMatchObject({ tokenHash: "t1" });

      await acme.sessions.create("s1", { subject: "alice", authTime: 1 }, 60);
      expect(await globex.sessions.get("s1")).toBeUndefined();
      await acme.consents.remember("alice", "web", ["read"], 60);
      expect(await globex.consents.get("alice", "web")).toEqual([]);
      await acme.attempts.hit("login:alice", 60_000);
      expect((await globex.attempts.get("login:alice")).count).toBe(0);

      // Issue 12: the registry and the audit trail are the tenant's.
      const meta = { createdAt: 1, updatedAt: 1, source: "admin" as const, createdBy: "ops", revision: 0 };
      expect(await acme.registry.scopes.create("read", { ...meta, name: "read", description: "acme's" })).toBe(true);
      expect(await globex.registry.scopes.get("read")).toBeUndefined();
      expect(await fallback.registry.scopes.list(undefined, 10)).toEqual([]);
      expect(await globex.registry.scopes.create("read", { ...meta, name: "read", description: "globex's" })).toBe(true);
      expect((await acme.registry.scopes.get("read"))?.description).toBe("acme's");
      expect(await acme.registry.users.create("alice", { ...meta, username: "alice", subject: "alice", passwordHash: "", groups: [], disabled: false }, "alice")).toBe(true);
      expect(await globex.registry.users.getByAlias("alice")).toBeUndefined();
      await acme.audit.append({ actor: "ops", action: "CreateScope", resource: "scopes/read" });
      expect(await globex.audit.list(undefined, 10)).toEqual([]);
      expect(await acme.audit.list(undefined, 10)).toHaveLength(1);
      // Issue 12: a subject's index and state are its tenant's: alice of acme is not alice of globex.
      await globex.sessions.create("s2", { subject: "alice", authTime: 2 }, 60);
      expect((await acme.sessions.listOfSubject("alice")).map((x) => x.sessionHash)).toEqual(["s1"]);
      expect(await acme.sessions.deleteAllOfSubject("alice")).toEqual(["s1"]);
      expect(await globex.sessions.get("s2")).toEqual({ subject: "alice", authTime: 2 });
      expect((await globex.grants.listOfSubject("alice"))).toEqual([]);
      expect((await acme.grants.listOfSubject("alice")).map((f) => f.grantId)).toEqual(["g1"]);
      await acme.userStates.put("alice", { disabled: true });
      expect(await globex.userStates.get("alice")).toBeUndefined();
      expect(await fallback.userStates.get("alice")).toBeUndefined();
    });

    it("a tenant's subscribers hear only its revocations; subscribeAll hears every tenant's, each with its tenant", async () => {
      const heard: Array<[string, Revocation]> = [];
      const all: Array<[string | undefined, Revocation]> = [];
      const subscriptions = [
        await stores.forTenant("acme").revocationFeed.subscribe((r) => heard.push(["acme", r]), () => undefined),
        await stores.forTenant(undefined).revocationFeed.subscribe((r) => heard.push(["default", r]), () => undefined),
        await stores.subscribeAll((r, tenant) => all.push([tenant, r]), () => undefined),
      ];
      await stores.forTenant("globex").revocationFeed.announce({ jti: "j-globex" });
      await stores.forTenant("acme").revocationFeed.announce({ jti: "j-acme" });
      await stores.forTenant(undefined).revocationFeed.announce({ grantId: "g-default" });
      await waitFor(() => all.length === 3 && heard.length === 2, { budgetMs: 2_000, what: "the announcements" });
      expect(all).toEqual([
        ["globex", { jti: "j-globex" }],
        ["acme", { jti: "j-acme" }],
        [undefined, { grantId: "g-default" }],
      ]);
      expect(heard).toEqual([
        ["acme", { jti: "j-acme" }],
        ["default", { grantId: "g-default" }],
      ]);
      for (const subscription of subscriptions) subscription.unsubscribe();
    });
  });
}
