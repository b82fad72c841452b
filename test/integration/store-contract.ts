import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CodeGrant, RefreshFamily, RegisteredClient, Revocation, Store } from "../../services/authz/oauth/store.js";
import type { SigningKeySet, StoredSigningKey } from "../../services/authz/oauth/signing-key-store.js";

/** A store under test, with a way to move time: the clock for memory, the clock and real time for Redis TTLs. */
export interface StoreUnderTest {
  store: Store;
  /** Moves the store's clock forward (and waits as long, where TTLs run on a server's clock). */
  advance(ms: number): Promise<void>;
  now(): number;
  close(): Promise<void>;
}

let sequence = 0;
const unique = (prefix: string) => `${prefix}${Date.now().toString(36)}${(sequence++).toString(36)}AAAAAAAAAAAAAAAA`;

const grant = (grantId: string): CodeGrant => ({
  grantId,
  clientId: "web",
  redirectUri: "https://web.test/cb",
  redirectUriGiven: true,
  scopes: ["read", "write"],
  subject: "user-alice",
  authTime: 1_700_000_000,
  codeChallenge: { codeChallenge: "c".repeat(43), codeChallengeMethod: "S256" },
});

/**
 * The contract every Store implementation keeps (services/authz/store/store.ts).
 * One suite, run on the memory store and on the Redis store.
 */
export function defineStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, () => {
    let s: StoreUnderTest;
    beforeAll(async () => {
      s = await makeStore();
    });
    afterAll(() => s.close());

    const family = (overrides: Partial<RefreshFamily> = {}): RefreshFamily => ({
      grantId: unique("g"),
      tokenHash: unique("h"),
      clientId: "web",
      subject: "user-alice",
      scopes: ["read"],
      authTime: 1_700_000_000,
      tokenExpiresAt: s.now() + 3_600_000,
      familyExpiresAt: s.now() + 7_200_000,
      ...overrides,
    });
    const rotation = (f: RefreshFamily, presentedHash: string, graceMs = 0, nextHash = unique("n")) => ({
      grantId: f.grantId,
      presentedHash,
      nextHash,
      nextTokenExpiresAt: s.now() + 3_600_000,
      sealedTokens: graceMs > 0 ? `sealed-${nextHash}` : "",
      graceMs,
      revokedTtlMs: 60_000,
    });

    describe("parked authorization requests", () => {
      it("are taken once", async () => {
        const id = unique("r");
        const request = { clientId: "web", responseType: "code" as const, redirectUri: "https://web.test/cb", redirectUriGiven: false, scopes: ["read"], state: "s" };
        await s.store.requests.park(id, request, 60);
        const taken = await Promise.all([s.store.requests.take(id), s.store.requests.take(id), s.store.requests.take(id)]);
        expect(taken.filter((r) => r !== undefined)).toEqual([request]);
      });
      it("an unknown one is undefined", async () => {
        expect(await s.store.requests.take(unique("r"))).toBeUndefined();
      });
    });

    describe("authorization codes", () => {
      it("the first redemption gets the grant; later ones see a replay naming the grant", async () => {
        const code = unique("c");
        const g = grant(unique("g"));
        await s.store.codes.save(code, g, 60);
        expect(await s.store.codes.redeem(code, 60)).toEqual({ kind: "redeemed", grant: g });
        expect(await s.store.codes.redeem(code, 60)).toEqual({ kind: "replayed", grantId: g.grantId });
      });
      it("of 50 concurrent redemptions exactly one wins", async () => {
        const code = unique("c");
        await s.store.codes.save(code, grant(unique("g")), 60);
        const results = await Promise.all(Array.from({ length: 50 }, () => s.store.codes.redeem(code, 60)));
        expect(results.filter((r) => r.kind === "redeemed")).toHaveLength(1);
        expect(results.filter((r) => r.kind === "replayed")).toHaveLength(49);
      });
      it("an unknown code is unknown", async () => {
        expect(await s.store.codes.redeem(unique("c"), 60)).toEqual({ kind: "unknown" });
      });
    });

    describe("grants: refresh token families", () => {
      it("are created and read back", async () => {
        const f = family();
        expect(await s.store.grants.create(f)).toBe(true);
        expect(await s.store.grants.get(f.grantId)).toEqual(f);
        expect(await s.store.grants.isRevoked(f.grantId)).toBe(false);
      });

      it("sessions' expiries are taken once each, when due, oldest first, in batches", async () => {
        const now = Date.now();
        const mark = randomUUID();
        await s.store.sessions.scheduleExpiry({ sid: `${mark}-late`, subject: "u1", expiresAt: now + 3_600_000 });
        await s.store.sessions.scheduleExpiry({ sid: `${mark}-b`, subject: "u2", expiresAt: now - 1_000 });
        await s.store.sessions.scheduleExpiry({ sid: `${mark}-a`, subject: "u1", expiresAt: now - 2_000 });
        const first = (await s.store.sessions.takeExpired(now, 1)).filter((e) => e.sid.startsWith(mark));
        expect(first).toEqual([{ sid: `${mark}-a`, subject: "u1", expiresAt: now - 2_000 }]);
        const [a, b] = await Promise.all([s.store.sessions.takeExpired(now, 100), s.store.sessions.takeExpired(now, 100)]);
        expect([...a, ...b].filter((e) => e.sid.startsWith(mark)).map((e) => e.sid)).toEqual([`${mark}-b`]);
        expect((await s.store.sessions.takeExpired(now + 3_600_000, 100)).filter((e) => e.sid.startsWith(mark)).map((e) => e.sid)).toEqual([`${mark}-late`]);
      });

      it("session participants are recorded once each and taken once", async () => {
        const sid = randomUUID();
        await s.store.sessions.addParticipant(sid, { clientId: "web", grantId: "g1" }, 60);
        await s.store.sessions.addParticipant(sid, { clientId: "web", grantId: "g1" }, 60);
        await s.store.sessions.addParticipant(sid, { clientId: "spa", grantId: "g2" }, 60);
        const taken = await s.store.sessions.takeParticipants(sid);
        expect(taken.sort((x, y) => x.grantId.localeCompare(y.grantId))).toEqual([{ clientId: "web", grantId: "g1" }, { clientId: "spa", grantId: "g2" }]);
        expect(await s.store.sessions.takeParticipants(sid)).toEqual([]);
      });

      it("keep the login session's sid (OpenID Connect) through rotations", async () => {
        const f = family({ sid: "sid-0123456789" });
        await s.store.grants.create(f);
        expect(await s.store.grants.get(f.grantId)).toEqual(f);
        await s.store.grants.rotate(rotation(f, f.tokenHash));
        expect((await s.store.grants.get(f.grantId))?.sid).toBe("sid-0123456789");
      });

      it("rotate replaces the current token, once: the old one is then reuse and revokes the family", async () => {
        const f = family();
        await s.store.grants.create(f);
        const next = rotation(f, f.tokenHash);
        expect(await s.store.grants.rotate(next)).toEqual({ kind: "rotated" });
        expect((await s.store.grants.get(f.grantId))?.tokenHash).toBe(next.nextHash);
        expect(await s.store.grants.rotate(rotation(f, f.tokenHash))).toEqual({ kind: "reused" });
        expect(await s.store.grants.get(f.grantId)).toBeUndefined();
        expect(await s.store.grants.isRevoked(f.grantId)).toBe(true);
        // Even the newest token is dead now.
        expect(await s.store.grants.rotate(rotation(f, next.nextHash))).toEqual({ kind: "unknown" });
      });

      it("remembers which token hashes a rotation replaced, and no other", async () => {
        const f = family();
        await s.store.grants.create(f);
        expect(await s.store.grants.wasRotatedOut(f.grantId, f.tokenHash)).toBe(false);
        const first = rotation(f, f.tokenHash);
        await s.store.grants.rotate(first);
        const second = rotation(f, first.nextHash);
        await s.store.grants.rotate(second);
        expect(await s.store.grants.wasRotatedOut(f.grantId, f.tokenHash)).toBe(true);
        expect(await s.store.grants.wasRotatedOut(f.grantId, first.nextHash)).toBe(true);
        expect(await s.store.grants.wasRotatedOut(f.grantId, second.nextHash)).toBe(false);
        expect(await s.store.grants.wasRotatedOut(f.grantId, unique("forged"))).toBe(false);
        expect(await s.store.grants.wasRotatedOut(unique("g"), f.tokenHash)).toBe(false);
      });

      it("a token hash the family never had is unknown and harms nothing", async () => {
        const f = family();
        await s.store.grants.create(f);
        expect(await s.store.grants.rotate(rotation(f, unique("forged")))).toEqual({ kind: "unknown" });
        expect(await s.store.grants.get(f.grantId)).toEqual(f);
      });

      it("of 10 concurrent rotations with one token exactly one rotates; with no grace the others revoke", async () => {
        const f = family();
        await s.store.grants.create(f);
        const results = await Promise.all(Array.from({ length: 10 }, () => s.store.grants.rotate(rotation(f, f.tokenHash))));
        expect(results.filter((r) => r.kind === "rotated")).toHaveLength(1);
        expect(results.filter((r) => r.kind === "reused").length).toBeGreaterThanOrEqual(1);
        expect(await s.store.grants.isRevoked(f.grantId)).toBe(true);
      });

      it("within the grace window the rotated-out token gets the sealed pair; concurrent ones too", async () => {
        const f = family();
        await s.store.grants.create(f);
        const results = await Promise.all(Array.from({ length: 10 }, () => s.store.grants.rotate(rotation(f, f.tokenHash, 1_000))));
        const rotated = results.filter((r) => r.kind === "rotated");
        expect(rotated).toHaveLength(1);
        const graced = results.filter((r) => r.kind === "grace");
        expect(graced).toHaveLength(9);
        expect(new Set(graced.map((r) => (r.kind === "grace" ? r.sealedTokens : "")).values()).size).toBe(1);
        expect(await s.store.grants.isRevoked(f.grantId)).toBe(false);
      });

      it("past the grace window the rotated-out token is reuse", async () => {
        const f = family();
        await s.store.grants.create(f);
        await s.store.grants.rotate(rotation(f, f.tokenHash, 1_000));
        await s.advance(1_200);
        expect(await s.store.grants.rotate(rotation(f, f.tokenHash, 1_000))).toEqual({ kind: "reused" });
        expect(await s.store.grants.isRevoked(f.grantId)).toBe(true);
      });

      it("revoke deletes the family and remembers the grant; a revoked grant cannot be created again", async () => {
        const f = family();
        await s.store.grants.create(f);
        await s.store.grants.revoke(f.grantId, 60_000);
        expect(await s.store.grants.get(f.grantId)).toBeUndefined();
        expect(await s.store.grants.isRevoked(f.grantId)).toBe(true);
        expect(await s.store.grants.create(f)).toBe(false);
        expect(await s.store.grants.rotate(rotation(f, f.tokenHash))).toEqual({ kind: "unknown" });
      });

      it("a family expires with its current token", async () => {
        const f = family({ tokenExpiresAt: s.now() + 1_000 });
        await s.store.grants.create(f);
        await s.advance(1_200);
        expect(await s.store.grants.get(f.grantId)).toBeUndefined();
        expect(await s.store.grants.rotate(rotation(f, f.tokenHash))).toEqual({ kind: "unknown" });
      });
    });

    describe("access token revocations", () => {
      it("are remembered for their TTL, per token of a grant", async () => {
        const grantId = unique("g");
        const jti = unique("j");
        expect(await s.store.grants.isRevoked(grantId, jti)).toBe(false);
        await s.store.grants.revokeAccessToken(grantId, jti, 1_000);
        expect(await s.store.grants.isRevoked(grantId, jti)).toBe(true);
        expect(await s.store.grants.isRevoked(grantId, unique("j"))).toBe(false);
        expect(await s.store.grants.isRevoked(grantId)).toBe(false);
        await s.advance(1_200);
        expect(await s.store.grants.isRevoked(grantId, jti)).toBe(false);
      });

      it("a revoked grant revokes every access token of it", async () => {
        const grantId = unique("g");
        await s.store.grants.revoke(grantId, 60_000);
        expect(await s.store.grants.isRevoked(grantId, unique("j"))).toBe(true);
      });
    });

    describe("revocation feed", () => {
      it("delivers announcements to subscribers until they unsubscribe", async () => {
        const received: Revocation[] = [];
        const subscription = await s.store.revocationFeed.subscribe((r) => received.push(r), () => {});
        await s.store.revocationFeed.announce({ jti: "j-1" });
        await s.store.revocationFeed.announce({ grantId: "g-1" });
        await expect.poll(() => received.length).toBe(2);
        // No order is promised: on a cluster two publishes may travel through different nodes.
        expect(received).toEqual(expect.arrayContaining([{ jti: "j-1" }, { grantId: "g-1" }]));
        // A witness that stays subscribed: every announcement reaches all of a store's
        // listeners at once, so once the witness has heard j-2 the other would have too.
        const witnessed: Revocation[] = [];
        const witness = await s.store.revocationFeed.subscribe((r) => witnessed.push(r), () => {});
        subscription.unsubscribe();
        await s.store.revocationFeed.announce({ jti: "j-2" });
        await expect.poll(() => witnessed).toContainEqual({ jti: "j-2" });
        witness.unsubscribe();
        expect(received).toHaveLength(2);
      });
    });

    describe("sessions", () => {
      it("are created, read, deleted and expire", async () => {
        const id = unique("s");
        await s.store.sessions.create(id, { subject: "user-alice", authTime: 1 }, 1);
        expect(await s.store.sessions.get(id)).toEqual({ subject: "user-alice", authTime: 1 });
        await s.store.sessions.delete(id);
        expect(await s.store.sessions.get(id)).toBeUndefined();
        await s.store.sessions.create(id, { subject: "user-alice", authTime: 1 }, 1);
        await s.advance(1_200);
        expect(await s.store.sessions.get(id)).toBeUndefined();
      });
    });

    describe("consents", () => {
      it("accumulate per subject and client", async () => {
        const subject = unique("subject:with{odd}chars ");
        await s.store.consents.remember(subject, "web", ["read"], 60);
        await s.store.consents.remember(subject, "web", ["write", "read"], 60);
        expect((await s.store.consents.get(subject, "web")).sort()).toEqual(["read", "write"]);
        expect(await s.store.consents.get(subject, "other")).toEqual([]);
        expect(await s.store.consents.get(`${subject}x`, "web")).toEqual([]);
      });
    });

    describe("attempt counters", () => {
      it("count within a window, reset, and forget when the window ends", async () => {
        const key = unique("login:user:");
        expect(await s.store.attempts.get(key)).toEqual({ count: 0, resetInMs: 0 });
        expect((await s.store.attempts.hit(key, 1_000)).count).toBe(1);
        const second = await s.store.attempts.hit(key, 1_000);
        expect(second.count).toBe(2);
        expect(second.resetInMs).toBeGreaterThan(0);
        expect(second.resetInMs).toBeLessThanOrEqual(1_000);
        expect((await s.store.attempts.get(key)).count).toBe(2);
        await s.store.attempts.reset(key);
        expect((await s.store.attempts.get(key)).count).toBe(0);
        const counts = await Promise.all(Array.from({ length: 20 }, () => s.store.attempts.hit(key, 1_000)));
        expect(counts.map((c) => c.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        await s.advance(1_200);
        expect((await s.store.attempts.get(key)).count).toBe(0);
      });
    });

    describe("signing key sets (one per key space)", () => {
      const storedKey = (kid: string): StoredSigningKey => ({
        kid,
        alg: "ES256",
        createdAt: s.now(),
        activatesAt: s.now() + 1_000,
        publicJwk: { kty: "EC", crv: "P-256", x: "x", y: "y", kid, alg: "ES256", use: "sig" },
        sealedPrivateJwk: `v1.kek.iv.tag.${kid}`,
      });
      const next = (current: SigningKeySet | undefined, kid: string): SigningKeySet => ({
        generation: (current?.generation ?? 0) + 1,
        keys: [...(current?.keys ?? []), storedKey(kid)],
      });

      it("are written by compare-and-set on the generation and read back", async () => {
        const before = await s.store.signingKeys.read();
        const written = next(before, unique("k"));
        expect(await s.store.signingKeys.replace(before?.generation ?? 0, written, 60_000)).toEqual({ kind: "written", set: written });
        expect(await s.store.signingKeys.read()).toEqual(written);
      });
      it("a write from a generation that is not the stored one is a conflict that returns the stored set", async () => {
        const current = await s.store.signingKeys.read();
        const stale = { generation: current!.generation, keys: [storedKey(unique("k"))] };
        expect(await s.store.signingKeys.replace(current!.generation - 1, stale, 60_000)).toEqual({ kind: "conflict", set: current });
        expect(await s.store.signingKeys.read()).toEqual(current);
      });
      it("of 10 concurrent writes from one generation exactly one is written; the others see the winner's set", async () => {
        const current = await s.store.signingKeys.read();
        const attempts = Array.from({ length: 10 }, () => next(current, unique("k")));
        const results = await Promise.all(attempts.map((set) => s.store.signingKeys.replace(current?.generation ?? 0, set, 60_000)));
        const winners = results.filter((r) => r.kind === "written");
        expect(winners).toHaveLength(1);
        for (const loser of results.filter((r) => r.kind === "conflict")) expect(loser.set).toEqual(winners[0]!.set);
        expect(await s.store.signingKeys.read()).toEqual(winners[0]!.set);
      });
      it("a write that does not name the next generation is refused", async () => {
        const current = await s.store.signingKeys.read();
        await expect(s.store.signingKeys.replace(current!.generation, { ...current!, generation: current!.generation + 2 }, 60_000)).rejects.toThrow(/must be generation/);
      });
      it("of 10 concurrent claims of a slot exactly one wins until the claim expires; slots are independent", async () => {
        const slot = unique("slot");
        const claims = await Promise.all(Array.from({ length: 10 }, () => s.store.signingKeys.claim(slot, 200)));
        expect(claims.filter(Boolean)).toHaveLength(1);
        expect(await s.store.signingKeys.claim(unique("slot"), 200)).toBe(true);
        expect(await s.store.signingKeys.claim(slot, 200)).toBe(false);
        await s.advance(300);
        expect(await s.store.signingKeys.claim(slot, 200)).toBe(true);
      });
      it("expire when not rewritten within their TTL", async () => {
        const current = await s.store.signingKeys.read();
        const written = next(current, unique("k"));
        await s.store.signingKeys.replace(current!.generation, written, 200);
        await s.advance(300);
        expect(await s.store.signingKeys.read()).toBeUndefined();
        // Gone means generation 0 again: the next write starts over.
        expect((await s.store.signingKeys.replace(0, { generation: 1, keys: written.keys }, 60_000)).kind).toBe("written");
      });
    });

    describe("client assertions (RFC 7523 §3: jti single use)", () => {
      it("RFC 7523 §3: a jti is used once until the assertion expires; of concurrent uses exactly one wins; then it is forgotten", async () => {
        const jti = unique("jti-");
        const expiresAt = s.now() + 1_000;
        const uses = await Promise.all(Array.from({ length: 10 }, () => s.store.clientAssertions.use("svc", jti, expiresAt)));
        expect(uses.filter(Boolean)).toHaveLength(1);
        expect(await s.store.clientAssertions.use("svc", jti, expiresAt)).toBe(false);
        // Another client's assertion with the same jti is another assertion.
        expect(await s.store.clientAssertions.use("other-svc", jti, expiresAt)).toBe(true);
        await s.advance(1_200);
        expect(await s.store.clientAssertions.use("svc", jti, s.now() + 1_000)).toBe(true);
      });
    });

    describe("registered clients (RFC 7591, RFC 7592)", () => {
      const registered = (clientId = unique("dyn-")): RegisteredClient => ({
        clientId,
        metadata: { redirect_uris: ["http://127.0.0.1/cb"], token_endpoint_auth_method: "none", grant_types: ["authorization_code"], response_types: ["code"], scope: "read", client_name: "CLI" },
        registrationAccessTokenHash: unique("rat"),
        issuedAt: 1_700_000_000,
        lastUsedAt: s.now(),
      });
      it("RFC 7591 §3.2.1: a created client reads back as stored; an id is created once, of 10 concurrent creations one wins", async () => {
        const client = registered();
        const results = await Promise.all(Array.from({ length: 10 }, () => s.store.registeredClients.create(client, 60_000)));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await s.store.registeredClients.get(client.clientId)).toEqual(client);
        expect(await s.store.registeredClients.get(unique("dyn-"))).toBeUndefined();
      });
      it("RFC 7592 §2.2, §2.3: replace changes only an existing client; delete removes it once", async () => {
        const client = registered();
        expect(await s.store.registeredClients.replace(client, 60_000)).toBe(false);
        await s.store.registeredClients.create(client, 60_000);
        const updated = { ...client, metadata: { ...client.metadata, client_name: "CLI 2" } };
        expect(await s.store.registeredClients.replace(updated, 60_000)).toBe(true);
        expect((await s.store.registeredClients.get(client.clientId))?.metadata.client_name).toBe("CLI 2");
        expect(await s.store.registeredClients.delete(client.clientId)).toBe(true);
        expect(await s.store.registeredClients.delete(client.clientId)).toBe(false);
        expect(await s.store.registeredClients.get(client.clientId)).toBeUndefined();
        expect(await s.store.registeredClients.replace(updated, 60_000)).toBe(false);
      });
      it("a client not touched within its TTL is gone; a touch records the use and renews the TTL", async () => {
        const kept = registered();
        const dropped = registered();
        await s.store.registeredClients.create(kept, 400);
        await s.store.registeredClients.create(dropped, 400);
        await s.advance(200);
        await s.store.registeredClients.touch(kept.clientId, s.now(), 400);
        await s.advance(300);
        expect(await s.store.registeredClients.get(dropped.clientId)).toBeUndefined();
        expect((await s.store.registeredClients.get(kept.clientId))?.lastUsedAt).toBe(kept.lastUsedAt + 200);
        // A touch of a client that is gone does not bring it back.
        await s.store.registeredClients.touch(dropped.clientId, s.now(), 400);
        expect(await s.store.registeredClients.get(dropped.clientId)).toBeUndefined();
      });
    });

    it("answers ping", async () => {
      await s.store.ping();
    });
  });
}
