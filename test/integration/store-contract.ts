import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CodeGrant, RefreshFamily, Revocation, Store } from "../../services/authz/oauth/store.js";
import type { SigningKeySet, StoredSigningKey } from "../../services/authz/oauth/signing-key-store.js";
import { AUDIT_EVENTS_KEPT, type StoredScope, type StoredUser } from "../../services/authz/oauth/registry.js";

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

      it("RFC 8707: keep the grant's resources through rotations; a family without them reads back without them", async () => {
        const f = family({ resources: ["https://a.example/mcp", "https://b.example/mcp"] });
        await s.store.grants.create(f);
        expect(await s.store.grants.get(f.grantId)).toEqual(f);
        await s.store.grants.rotate(rotation(f, f.tokenHash));
        expect((await s.store.grants.get(f.grantId))?.resources).toEqual(["https://a.example/mcp", "https://b.example/mcp"]);
        const plain = family();
        await s.store.grants.create(plain);
        expect((await s.store.grants.get(plain.grantId))?.resources).toBeUndefined();
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

    describe("issue 12: a subject's sessions, grants and state", () => {
      it("sessions are indexed by subject: listed while live, all ended at once, each once under concurrency; others' untouched", async () => {
        const alice = unique("subject-alice-");
        const bob = unique("subject-bob-");
        const [a1, a2, a3, b1] = [unique("s"), unique("s"), unique("s"), unique("s")];
        await s.store.sessions.create(a1, { subject: alice, authTime: 1 }, 60);
        await s.store.sessions.create(a2, { subject: alice, authTime: 2 }, 60);
        await s.store.sessions.create(a3, { subject: alice, authTime: 3 }, 60);
        await s.store.sessions.create(b1, { subject: bob, authTime: 4 }, 60);
        const listed = await s.store.sessions.listOfSubject(alice);
        expect(listed.map((x) => x.sessionHash).sort()).toEqual([a1, a2, a3].sort());
        expect(listed.find((x) => x.sessionHash === a2)!.session).toEqual({ subject: alice, authTime: 2 });
        // A session ended by logout is no longer listed, nor ended again.
        await s.store.sessions.delete(a3);
        expect((await s.store.sessions.listOfSubject(alice)).map((x) => x.sessionHash).sort()).toEqual([a1, a2].sort());
        const ended = await Promise.all([s.store.sessions.deleteAllOfSubject(alice), s.store.sessions.deleteAllOfSubject(alice)]);
        expect(ended.flat().sort()).toEqual([a1, a2].sort());
        expect(await s.store.sessions.get(a1)).toBeUndefined();
        expect(await s.store.sessions.get(a2)).toBeUndefined();
        expect(await s.store.sessions.listOfSubject(alice)).toEqual([]);
        expect(await s.store.sessions.get(b1)).toEqual({ subject: bob, authTime: 4 });
        expect((await s.store.sessions.listOfSubject(bob)).map((x) => x.sessionHash)).toEqual([b1]);
        // A session opened after the sweep is indexed anew.
        const a4 = unique("s");
        await s.store.sessions.create(a4, { subject: alice, authTime: 5 }, 60);
        expect((await s.store.sessions.listOfSubject(alice)).map((x) => x.sessionHash)).toEqual([a4]);
      });

      it("an expired session is neither listed nor reported ended", async () => {
        const subject = unique("subject-");
        const id = unique("s");
        await s.store.sessions.create(id, { subject, authTime: 1 }, 1);
        await s.advance(1_200);
        expect(await s.store.sessions.listOfSubject(subject)).toEqual([]);
        expect(await s.store.sessions.deleteAllOfSubject(subject)).toEqual([]);
      });

      it("refresh families are indexed by subject: live ones listed (rotations included), revoked ones not", async () => {
        const subject = unique("subject-");
        const [f1, f2, f3] = [family({ subject }), family({ subject }), family({ subject })];
        const other = family({ subject: unique("subject-") });
        for (const f of [f1, f2, f3, other]) expect(await s.store.grants.create(f)).toBe(true);
        expect((await s.store.grants.listOfSubject(subject)).map((f) => f.grantId).sort()).toEqual([f1, f2, f3].map((f) => f.grantId).sort());
        const next = unique("n");
        expect((await s.store.grants.rotate(rotation(f1, f1.tokenHash, 0, next))).kind).toBe("rotated");
        await s.store.grants.revoke(f2.grantId, 60_000);
        const listed = await s.store.grants.listOfSubject(subject);
        expect(listed.map((f) => f.grantId).sort()).toEqual([f1, f3].map((f) => f.grantId).sort());
        expect(listed.find((f) => f.grantId === f1.grantId)!.tokenHash).toBe(next);
        expect((await s.store.grants.listOfSubject(other.subject)).map((f) => f.grantId)).toEqual([other.grantId]);
        expect(await s.store.grants.listOfSubject(unique("nobody-"))).toEqual([]);
      });

      it("user state is stored by subject, replaced, deleted, and does not expire with the protocol's state", async () => {
        const subject = unique("subject-");
        expect(await s.store.userStates.get(subject)).toBeUndefined();
        await s.store.userStates.put(subject, { disabled: true });
        expect(await s.store.userStates.get(subject)).toEqual({ disabled: true });
        await s.store.userStates.put(subject, { disabled: false, groups: ["staff", "ops"] });
        expect(await s.store.userStates.get(subject)).toEqual({ disabled: false, groups: ["staff", "ops"] });
        expect(await s.store.userStates.get(unique("subject-"))).toBeUndefined();
        await s.advance(1_200);
        expect(await s.store.userStates.get(subject)).toEqual({ disabled: false, groups: ["staff", "ops"] });
        await s.store.userStates.delete(subject);
        expect(await s.store.userStates.get(subject)).toBeUndefined();
      });

      it("the revocation feed carries a subject whose rights changed", async () => {
        const received: Revocation[] = [];
        const subscription = await s.store.revocationFeed.subscribe((r) => received.push(r), () => {});
        await s.store.revocationFeed.announce({ subject: "user-alice" });
        await expect.poll(() => received).toContainEqual({ subject: "user-alice" });
        subscription.unsubscribe();
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

    describe("the registry (clients, scopes, users created at run time; issue 12)", () => {
      const meta = { createdAt: 1, updatedAt: 1, source: "admin" as const, createdBy: "ops", revision: 0 };
      const scope = (name: string, description = "d"): StoredScope => ({ ...meta, name, description });
      const user = (username: string, subject: string): StoredUser => ({ ...meta, username, subject, passwordHash: "", groups: ["staff"], disabled: false });

      it("creates an entry once: of 10 concurrent creates of one id exactly one wins, at revision 1", async () => {
        const id = unique("scope-");
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => s.store.registry.scopes.create(id, scope(id, `d${i}`))));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await s.store.registry.scopes.get(id)).toMatchObject({ name: id, revision: 1 });
        expect(await s.store.registry.scopes.get(unique("none-"))).toBeUndefined();
      });
      it("replaces by compare-and-set on the revision: of concurrent replaces from one revision exactly one wins", async () => {
        const id = unique("scope-");
        await s.store.registry.scopes.create(id, scope(id));
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => s.store.registry.scopes.replace(id, 1, scope(id, `new${i}`))));
        expect(results.filter((r) => r === "replaced")).toHaveLength(1);
        expect(results.filter((r) => r === "conflict")).toHaveLength(9);
        const stored = await s.store.registry.scopes.get(id);
        expect(stored?.revision).toBe(2);
        expect(stored?.description).toMatch(/^new\d$/);
        expect(await s.store.registry.scopes.replace(unique("none-"), 1, scope("x"))).toBe("missing");
      });
      it("an alias is unique beside the id, finds its entry, and goes with it", async () => {
        const [a, b, subject] = [unique("u-"), unique("u-"), unique("sub-")];
        expect(await s.store.registry.users.create(a, user(a, subject), subject)).toBe(true);
        expect(await s.store.registry.users.create(b, user(b, subject), subject)).toBe(false);
        expect(await s.store.registry.users.getByAlias(subject)).toMatchObject({ username: a });
        expect(await s.store.registry.users.delete(a, subject)).toBe(true);
        expect(await s.store.registry.users.delete(a, subject)).toBe(false);
        expect(await s.store.registry.users.getByAlias(subject)).toBeUndefined();
        expect(await s.store.registry.users.create(b, user(b, subject), subject)).toBe(true);
      });
      it("lists in byte order of the ids, a page at a time after the last id seen", async () => {
        const base = unique("list-");
        const ids = ["b", "a", "c", "B", "a-2", "é"].map((suffix) => `${base}${suffix}`);
        for (const id of ids) await s.store.registry.clients.create(id, { ...meta, id } as never);
        const seen: string[] = [];
        let after: string | undefined = base;
        for (;;) {
          const page = await s.store.registry.clients.list(after, 2);
          seen.push(...page.map((e) => e.id).filter((id) => id.startsWith(base)));
          if (page.length < 2) break;
          after = page[page.length - 1]!.id;
        }
        expect(seen).toEqual([...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
        await s.store.registry.clients.delete(`${base}c`);
        expect((await s.store.registry.clients.list(`${base}b`, 10)).map((e) => e.id).filter((id) => id.startsWith(base))).toEqual([`${base}é`]);
      });
    });

    describe("the audit log (issue 12)", () => {
      it("lists newest first, pages by id, filters by resource and what lies below it", async () => {
        const tag = unique("res");
        const appended = [];
        for (const resource of [`clients/${tag}`, `users/${tag}`, `users/${tag}/grants/g1`, `users/${tag}x`, `clients/${tag}`]) {
          appended.push(await s.store.audit.append({ actor: "ops", action: "Change", resource, after: { n: appended.length } }));
        }
        const ids = appended.map((e) => e.id);
        expect(new Set(ids).size).toBe(5);
        const newest = await s.store.audit.list(undefined, 5);
        expect(newest.map((e) => e.id)).toEqual([...ids].reverse());
        expect(newest[0]).toMatchObject({ actor: "ops", action: "Change", resource: `clients/${tag}`, after: { n: 4 } });
        expect((await s.store.audit.list(ids[3], 2)).map((e) => e.id)).toEqual([ids[2], ids[1]]);
        expect((await s.store.audit.list(undefined, 10, `users/${tag}`)).map((e) => e.id)).toEqual([ids[2], ids[1]]);
        expect((await s.store.audit.list(ids[2], 10, `users/${tag}`)).map((e) => e.id)).toEqual([ids[1]]);
      });
      it(`keeps the last ${AUDIT_EVENTS_KEPT} events`, async () => {
        const tag = unique("bulk");
        const first = await s.store.audit.append({ actor: "ops", action: "First", resource: `scopes/${tag}` });
        for (let i = 0; i < AUDIT_EVENTS_KEPT; i += 500) {
          await Promise.all(Array.from({ length: 500 }, (_, j) => s.store.audit.append({ actor: "ops", action: "Bulk", resource: `scopes/${tag}/${i + j}` })));
        }
        const all = await s.store.audit.list(undefined, 1_000_000);
        expect(all).toHaveLength(AUDIT_EVENTS_KEPT);
        expect(all.some((e) => e.id === first.id)).toBe(false);
      });
    });

    describe("remembered consents by subject (issue 12)", () => {
      it("lists a subject's consents by client, forgets one, and leaves out expired ones", async () => {
        const subject = unique("subject-");
        await s.store.consents.remember(subject, "web", ["read"], 60);
        await s.store.consents.remember(subject, "web", ["write"], 60);
        await s.store.consents.remember(subject, "spa", ["read"], 1);
        await s.store.consents.remember(unique("other-"), "web", ["read"], 60);
        const sorted = async () => (await s.store.consents.listOfSubject(subject)).map((c) => ({ ...c, scopes: [...c.scopes].sort() })).sort((a, b) => a.clientId.localeCompare(b.clientId));
        expect(await sorted()).toEqual([
          { clientId: "spa", scopes: ["read"] },
          { clientId: "web", scopes: ["read", "write"] },
        ]);
        await s.advance(1_200);
        expect(await sorted()).toEqual([{ clientId: "web", scopes: ["read", "write"] }]);
        await s.store.consents.forget(subject, "web");
        expect(await s.store.consents.get(subject, "web")).toEqual([]);
        expect(await s.store.consents.listOfSubject(subject)).toEqual([]);
      });
    });

    it("answers ping", async () => {
      await s.store.ping();
    });
  });
}
