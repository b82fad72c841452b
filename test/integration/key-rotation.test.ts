import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { SignJWT, decodeProtectedHeader, generateKeyPair } from "jose";
import { pino, type Logger } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { createAuthzDeps, type AuthzDeps } from "../../services/authz/deps.js";
import { createEphemeralKeyEncryptionKey, createKeyEncryptionKey, openPrivateJwk } from "../../services/authz/oauth/key-sealing.js";
import { SUPPORTED_ALGORITHMS } from "../../services/authz/oauth/key-ring.js";
import { createRotatingKeyRing } from "../../services/authz/oauth/rotating-key-ring.js";
import { cryptoRandom } from "../../services/authz/oauth/secrets.js";
import { createMemoryStore } from "../../services/authz/store/memory-store.js";
import type { SigningKeySet } from "../../services/authz/oauth/signing-key-store.js";
import { buildAccessTokenClaims } from "../../services/authz/oauth/tokens.js";
import { ISSUER, SECRETS, basic, issueTokens, startTestAuthz, testConfig, type TestAuthz } from "../support/authz.js";
import { runTs } from "../support/process.js";
import { startRedisServer } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

/**
 * Self-rotating signing keys (issue 11) on a real Redis, replicas as separate
 * deps (own Redis connections) over one key space. Time is the shared test
 * clock; replicas read the store when the test says so (`refreshSigningKeys`,
 * what their heartbeat does), so nothing here waits for time to pass.
 */
const HOUR = 3_600_000;
const ROTATION = { rotateEverySeconds: 3_600, publishAheadSeconds: 600, retireMarginSeconds: 60, heartbeatSeconds: 60 };
/** The test configuration's access token lifetime (the default, 600 s). */
const ACCESS_TOKEN_MS = 600_000;

let now = Date.UTC(2027, 0, 1);
const clock = () => now;
const redisUrl = () => inject("redisUrl");

function kekFile(bytes: Buffer = randomBytes(32)): { path: string; bytes: Buffer } {
  const path = join(mkdtempSync(join(tmpdir(), "gatehouse-kek-")), "kek");
  writeFileSync(path, `${bytes.toString("base64")}\n`);
  return { path, bytes };
}

/** The test configuration with self-rotating keys instead of operator keys, the KEK from a mounted file. */
const rotating = (kekPath: string, rotation: Record<string, unknown> = ROTATION) => (file: Record<string, unknown>) => {
  const authz = file.authz as Record<string, unknown>;
  delete authz.signingKeys;
  authz.keyRotation = { ...rotation, keyEncryptionKey: { file: kekPath } };
};

/** A logger whose lines the test reads. */
function capturedLog(): { log: Logger; lines: Array<{ msg: string; [key: string]: unknown }>; generated(): number } {
  const lines: Array<{ msg: string }> = [];
  const log = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
  return { log, lines, generated: () => lines.filter((l) => l.msg === "signing key generated and published").length };
}

const opened: Array<{ close(): Promise<void> }> = [];
async function replica(prefix: string, kekPath: string, log: Logger = pino({ level: "silent" })): Promise<AuthzDeps> {
  const config = await testConfig({ redisUrl: redisUrl(), keyPrefix: prefix, patch: rotating(kekPath) });
  const deps = await createAuthzDeps(config, log, { clock });
  opened.push(deps);
  return deps;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((d) => d.close()));
});

const prefix = () => `rotation-${randomBytes(4).toString("hex")}:`;
const kidOf = (token: string) => decodeProtectedHeader(token).kid;
const kids = (deps: AuthzDeps) => deps.keys.publicJwks.keys.map((k) => k.kid);
const sign = (deps: AuthzDeps, jti = randomBytes(8).toString("hex")) =>
  deps.keys.sign(
    buildAccessTokenClaims({ issuer: ISSUER, audience: ISSUER, subject: "user-alice", clientId: "web", scopes: ["read"], jti, grantId: "g", authTime: 1, now, ttlSeconds: 600 }),
  );
/** The instant the next key is due to be generated: publishAhead before the active key's term ends. */
const activeKey = (deps: AuthzDeps) => (deps.keys as unknown as { keySet: SigningKeySet }).keySet.keys.find((k) => k.kid === deps.keys.activeKid)!;

describe("keys that rotate themselves: one replica", () => {
  it("a new key is published ahead of use, then signs; a token signed before the rotation verifies after it; the old key retires once no unexpired token can carry it", async () => {
    const a = await replica(prefix(), kekFile().path);
    const first = a.keys.activeKid;
    expect(kids(a)).toEqual([first]);
    const termEnds = activeKey(a).activatesAt + HOUR;

    // Publish-ahead window: the successor is in the JWKS but does not sign yet.
    now = termEnds - 600_000;
    await a.refreshSigningKeys();
    const second = kids(a).find((kid) => kid !== first)!;
    expect(kids(a)).toEqual([first, second]);
    expect(a.keys.activeKid).toBe(first);
    now = termEnds - 1;
    const before = await sign(a);
    expect(kidOf(before)).toBe(first);

    // At the activation instant the successor signs, by the clock alone (no store read).
    now = termEnds;
    expect(a.keys.activeKid).toBe(second);
    expect(kidOf(await sign(a))).toBe(second);
    expect((await a.keys.verify(before, now)).sub).toBe("user-alice");
    expect(kids(a)).toEqual([first, second]);

    // Retired once the last token it could have signed has expired (lifetime + margin).
    now = termEnds + ACCESS_TOKEN_MS + 60_000 - 1;
    expect(kids(a)).toEqual([first, second]);
    now = termEnds + ACCESS_TOKEN_MS + 60_000;
    expect(kids(a)).toEqual([second]);
    await a.refreshSigningKeys();
    expect((a.keys as unknown as { keySet: SigningKeySet }).keySet.keys.map((k) => k.kid)).toEqual([second]);
  });
});

describe("keys that rotate themselves: unknown kids", () => {
  it("tokens naming unknown kids make the ring read the store at most once a second (by the clock), so forged kids cannot drive it", async () => {
    const store = createMemoryStore({ clock });
    let reads = 0;
    const counted = { ...store.signingKeys, read: () => (reads++, store.signingKeys.read()) };
    const ring = await createRotatingKeyRing({
      store: counted,
      policy: { rotateEveryMs: HOUR, publishAheadMs: 600_000, accessTokenTtlMs: ACCESS_TOKEN_MS, retireMarginMs: 60_000 },
      algorithm: "ES256",
      kek: createEphemeralKeyEncryptionKey(),
      issuer: ISSUER,
      clock,
      random: cryptoRandom,
      sleep: async () => {},
    });
    const { privateKey } = await generateKeyPair("ES256");
    const forged = (kid: string) =>
      new SignJWT({ sub: "mallory", client_id: "web", jti: kid })
        .setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" })
        .setIssuer(ISSUER)
        .setIssuedAt(Math.floor(now / 1000))
        .setExpirationTime(Math.floor(now / 1000) + 600)
        .sign(privateKey);
    const afterStart = reads;
    for (let i = 0; i < 20; i++) await expect(ring.verify(await forged(`forged-${i}`), now)).rejects.toThrow(/unknown signing key/);
    expect(reads - afterStart).toBe(1);
    now += 1_000;
    await expect(ring.verify(await forged("forged-later"), now)).rejects.toThrow(/unknown signing key/);
    expect(reads - afterStart).toBe(2);
    await store.close();
  });
});

describe("keys that rotate themselves: every algorithm", () => {
  it.each(SUPPORTED_ALGORITHMS)("%s: the replica that generates a key signs with it (its generated CryptoKeys), and a replica that opens it from the store verifies that token, and the other way round", async (algorithm) => {
    const store = createMemoryStore({ clock });
    const kek = createEphemeralKeyEncryptionKey();
    const ring = () =>
      createRotatingKeyRing({
        store: store.signingKeys,
        policy: { rotateEveryMs: HOUR, publishAheadMs: 600_000, accessTokenTtlMs: ACCESS_TOKEN_MS, retireMarginMs: 60_000 },
        algorithm,
        kek,
        issuer: ISSUER,
        clock,
        random: cryptoRandom,
        sleep: async () => {},
      });
    const generator = await ring();
    const opener = await ring();
    expect(opener.activeKid).toBe(generator.activeKid);
    expect(generator.publicJwks.keys.map((k) => k.alg)).toEqual([algorithm]);
    const claims = (jti: string) => buildAccessTokenClaims({ issuer: ISSUER, audience: ISSUER, subject: "user-alice", clientId: "web", scopes: ["read"], jti, grantId: "g", authTime: 1, now, ttlSeconds: 600 });
    expect((await opener.verify(await generator.sign(claims("from-generator")), now)).jti).toBe("from-generator");
    expect((await generator.verify(await opener.sign(claims("from-opener")), now)).jti).toBe("from-opener");
    await store.close();
  });
});

describe("keys that rotate themselves: replicas", () => {
  it("replicas racing converge on the same active key and never both generate one", async () => {
    const space = prefix();
    const kek = kekFile().path;
    const logs = [capturedLog(), capturedLog(), capturedLog(), capturedLog()];
    // Four replicas start at once on an empty key space: one generates the first key.
    const replicas = await Promise.all(logs.map((l) => replica(space, kek, l.log)));
    const generated = () => logs.reduce((sum, l) => sum + l.generated(), 0);
    expect(generated()).toBe(1);
    expect(new Set(replicas.map((r) => r.keys.activeKid)).size).toBe(1);

    for (let rotation = 1; rotation <= 3; rotation++) {
      now = activeKey(replicas[0]!).activatesAt + HOUR - 600_000;
      // Every replica's heartbeat comes at once, twice; a replica that lost the claim reads the winner's key at its next one.
      await Promise.all([...replicas, ...replicas].map((r) => r.refreshSigningKeys()));
      expect(generated()).toBe(1 + rotation);
      await Promise.all(replicas.map((r) => r.refreshSigningKeys()));
      expect(generated()).toBe(1 + rotation);
      const sets = replicas.map((r) => JSON.stringify((r.keys as unknown as { keySet: SigningKeySet }).keySet));
      expect(new Set(sets).size).toBe(1);
      now += 600_000;
      expect(new Set(replicas.map((r) => r.keys.activeKid)).size).toBe(1);
      expect(new Set(replicas.map((r) => JSON.stringify(r.keys.publicJwks))).size).toBe(1);
    }
  });

  it("key spaces rotate independently (one set per key space, as each tenant will have)", async () => {
    const kek = kekFile().path;
    const [a, b] = await Promise.all([replica(prefix(), kek), replica(prefix(), kek)]);
    expect(a.keys.activeKid).not.toBe(b.keys.activeKid);
    const aKids = kids(a);
    now = activeKey(b).activatesAt + HOUR - 600_000;
    await b.refreshSigningKeys();
    expect(kids(b)).toHaveLength(2);
    await a.refreshSigningKeys();
    // a's term started at the same instant, so it rotates too, but with a key of its own.
    expect(kids(a).filter((kid) => kids(b).includes(kid))).toEqual([]);
    expect(kids(a)).toEqual(expect.arrayContaining(aKids));
  });

  it("a replica that starts mid-rotation signs with the right key", async () => {
    const space = prefix();
    const kek = kekFile().path;
    const a = await replica(space, kek);
    const first = a.keys.activeKid;
    const termEnds = activeKey(a).activatesAt + HOUR;
    now = termEnds - 600_000;
    await a.refreshSigningKeys();
    const second = kids(a).find((kid) => kid !== first)!;
    now = termEnds - 300_000;

    // Started while the successor is only published: the current key signs; both verify.
    const b = await replica(space, kek);
    expect(b.keys.activeKid).toBe(first);
    expect(kids(b)).toEqual([first, second]);
    expect(kidOf(await sign(b))).toBe(first);

    // Started after the successor's activation: it signs; a token of the old key still verifies there.
    const old = await sign(a);
    now = termEnds + 1;
    const c = await replica(space, kek);
    expect(c.keys.activeKid).toBe(second);
    expect(kidOf(await sign(c))).toBe(second);
    expect((await c.keys.verify(old, now)).jti).toBeDefined();
    // And the replica started before switched by the clock, without reading the store again.
    expect(b.keys.activeKid).toBe(second);
  });

  it("a replica that has not read the newest key yet reads it on meeting its kid in a token", async () => {
    const space = prefix();
    const kek = kekFile().path;
    const a = await replica(space, kek);
    const b = await replica(space, kek);
    const termEnds = activeKey(a).activatesAt + HOUR;
    now = termEnds - 600_000;
    await a.refreshSigningKeys(); // b misses this heartbeat
    now = termEnds;
    const token = await sign(a);
    expect(kids(b)).not.toContain(kidOf(token));
    expect((await b.keys.verify(token, now)).sub).toBe("user-alice");
    expect(b.keys.activeKid).toBe(a.keys.activeKid);
  });

  it("two replicas under load across three rotations: no verification fails", async () => {
    const space = prefix();
    const kek = kekFile().path;
    // A 20-minute term, published 5 minutes ahead: three rotations in an hour of test time.
    const patch = rotating(kek, { ...ROTATION, rotateEverySeconds: 1_200, publishAheadSeconds: 300 });
    const a = await startTestAuthz({ redisUrl: redisUrl(), keyPrefix: space, patch, overrides: { clock } });
    const b = await startTestAuthz({ redisUrl: redisUrl(), keyPrefix: space, patch, overrides: { clock } });
    try {
      const replicas: TestAuthz[] = [a, b];
      const asResourceServer = basic("resource-server", SECRETS.resourceServer);
      const startKid = a.running.deps.keys.activeKid;
      const failures: string[] = [];
      const seenKids = new Set<string>();
      let completed = 0;
      let running = true;

      // Four workers: a token from one replica, introspected at the other, again and again.
      const worker = async (w: number) => {
        for (let i = 0; running; i++) {
          const issuer = replicas[(w + i) % 2]!;
          const verifier = replicas[(w + i + 1) % 2]!;
          const tokens = await issueTokens(issuer);
          seenKids.add(String(kidOf(tokens.accessToken)));
          const result = await verifier.authz.introspect({ token: tokens.accessToken, tokenTypeHint: "access_token" }, asResourceServer);
          if (!result.active) failures.push(`${String(kidOf(tokens.accessToken))} at ${now}`);
          completed++;
        }
      };
      // The driver: time moves a minute per ten completed flows (tokens live ten minutes), and both replicas' heartbeats run.
      const driver = async () => {
        const end = activeKey(a.running.deps).activatesAt + 3 * 1_200_000 + 60_000;
        while (now < end) {
          const target = completed + 10;
          while (completed < target) await new Promise((resolve) => setImmediate(resolve));
          now += 60_000;
          await Promise.all(replicas.map((r) => r.running.deps.refreshSigningKeys()));
        }
        running = false;
      };
      await Promise.all([driver(), ...[0, 1, 2, 3].map(worker)]);

      expect(failures).toEqual([]);
      expect(completed).toBeGreaterThan(500);
      expect(seenKids.size).toBe(4);
      expect(seenKids.has(startKid)).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe("keys that rotate themselves: the key-encryption key", () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl());
  });
  afterAll(() => redis.disconnect());

  it("a replica with another KEK refuses to start, saying so, and leaves the stored keys as they are", async () => {
    const space = prefix();
    const a = await replica(space, kekFile().path);
    const stored = await redis.hgetall(`${space}signing-keys`);
    await expect(replica(space, kekFile().path)).rejects.toThrow(/sealed under key-encryption key \S+, but this replica has \S+: the configured key-encryption key is not the one in use/);
    expect(await redis.hgetall(`${space}signing-keys`)).toEqual(stored);
    expect(a.keys.activeKid).toBeDefined();
  });

  it("the authz process with another KEK stops at start with a clear error, and generates nothing", { timeout: scaledBudget(20_000) }, async () => {
    const space = prefix();
    await replica(space, kekFile().path);
    const stored = await redis.hgetall(`${space}signing-keys`);
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-config-"));
    writeFileSync(
      join(dir, "authz.yaml"),
      stringify({ issuer: "https://auth.example.com", authz: { port: 0, keyPrefix: space, keyRotation: { keyEncryptionKey: { file: kekFile().path } } } }),
    );
    const run = runTs("services/authz/main.ts", { env: { GATEHOUSE_CONFIG: join(dir, "authz.yaml"), REDIS_URL: redisUrl() } });
    expect((await run.exited).code).toBe(1);
    expect(run.output()).toMatch(/authz\.keyRotation \(key space "rotation-[0-9a-f]+:"\): signing key \S+ was sealed under key-encryption key \S+, but this replica has \S+/);
    expect(await redis.hgetall(`${space}signing-keys`)).toEqual(stored);
  });

  it("Redis holds no private key material in the clear, and every key has a TTL", async () => {
    const space = prefix();
    const kek = kekFile();
    const a = await replica(space, kek.path);
    now = activeKey(a).activatesAt + HOUR - 600_000;
    await a.refreshSigningKeys();

    const set = JSON.parse((await redis.hget(`${space}signing-keys`, "set"))!) as SigningKeySet;
    expect(set.keys).toHaveLength(2);
    // The private parts, opened with the KEK as the service does, must appear nowhere in Redis.
    const privates = set.keys.map((k) => openPrivateJwk(createKeyEncryptionKey(kek.bytes), k.kid, k.sealedPrivateJwk).d!);
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, "MATCH", `${space}*`, "COUNT", 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
    expect(keys.length).toBeGreaterThanOrEqual(1);
    for (const key of keys) {
      expect(await redis.pttl(key), key).toBeGreaterThan(0);
      const dump = (await redis.type(key)) === "hash" ? JSON.stringify(await redis.hgetall(key)) : String(await redis.get(key));
      expect(dump).not.toMatch(/"d"\s*:/);
      for (const d of privates) {
        expect(dump.includes(d), `${key} holds a private key`).toBe(false);
        expect(dump.includes(Buffer.from(d, "base64url").toString("base64")), `${key} holds a private key`).toBe(false);
        expect(dump.includes(Buffer.from(d, "base64url").toString("hex")), `${key} holds a private key`).toBe(false);
      }
    }
  });

  it("a reload with another KEK is refused and the keys in force stay; a reload that keeps the keys keeps the ring", async () => {
    const space = prefix();
    const kek = kekFile();
    const a = await replica(space, kek.path);
    const ring = a.keys;
    const sameKeys = await testConfig({ redisUrl: redisUrl(), keyPrefix: space, patch: rotating(kek.path) });
    await a.reload({ ...sameKeys, users: new Map() });
    expect(a.keys).toBe(ring);

    const otherKek = await testConfig({ redisUrl: redisUrl(), keyPrefix: space, patch: rotating(kekFile().path) });
    await expect(a.reload(otherKek)).rejects.toThrow(/key-encryption key/);
    expect(a.keys).toBe(ring);

    const longerMargin = await testConfig({ redisUrl: redisUrl(), keyPrefix: space, patch: rotating(kek.path, { ...ROTATION, retireMarginSeconds: 120 }) });
    await a.reload(longerMargin);
    expect(a.keys).not.toBe(ring);
    expect(a.keys.activeKid).toBe(ring.activeKid);
  });
});

describe("keys that rotate themselves: through the gateway", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ redisUrl: redisUrl(), patch: rotating(kekFile().path), authzOverrides: { clock }, gatewayOverrides: { clock } });
  });
  afterAll(() => stack.close());

  it("the JWKS endpoint publishes the next key ahead of use (RFC 7517 §5)", async () => {
    const jwks = async () => ((await (await fetch(`${stack.issuer}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string; d?: string }> }).keys;
    const deps = stack.authz.running.deps;
    const first = deps.keys.activeKid;
    expect((await jwks()).map((k) => k.kid)).toEqual([first]);

    now = activeKey(deps).activatesAt + HOUR - 600_000;
    await deps.refreshSigningKeys();
    now += 31_000; // past the gateway's JWKS cache
    const published = await jwks();
    expect(published).toHaveLength(2);
    for (const key of published) expect(key.d).toBeUndefined();
    const next = published.find((k) => k.kid !== first)!.kid;
    // Published, not signing: a token issued now still carries the current key.
    expect(kidOf((await issueTokens(stack.authz)).accessToken)).toBe(first);

    now = activeKey(deps).activatesAt + HOUR;
    expect(deps.keys.activeKid).toBe(next);
    expect(kidOf((await issueTokens(stack.authz)).accessToken)).toBe(next);
  });
});

describe("keys that rotate themselves: which keys sign", () => {
  it("the embedded default (memory store, no keys configured, as `npm start` runs) rotates under an ephemeral KEK, and says so", async () => {
    const { log, lines } = capturedLog();
    const config = await testConfig({ patch: (file) => void delete (file.authz as Record<string, unknown>).signingKeys });
    const deps = await createAuthzDeps(config, log, { clock });
    opened.push(deps);
    expect(lines.map((l) => l.msg)).toContain("self-rotating signing keys on the memory store with no key-encryption key configured: using an ephemeral one (keys and tokens die with this process). Development only.");
    expect(kids(deps)).toEqual([deps.keys.activeKid]);
    expect((await deps.keys.verify(await sign(deps), now)).sub).toBe("user-alice");
    // A reload that rebuilds the ring (another access token lifetime) opens the same keys.
    const activeKid = deps.keys.activeKid;
    await deps.reload({ ...config, lifetimes: { ...config.lifetimes, accessToken: 300 } });
    expect(deps.keys.activeKid).toBe(activeKid);
  });

  it("operator keys win over keyRotation", async () => {
    const { log, lines } = capturedLog();
    const config = await testConfig({
      redisUrl: redisUrl(),
      keyPrefix: prefix(),
      patch: (file) => void ((file.authz as Record<string, unknown>).keyRotation = { ...ROTATION, keyEncryptionKey: { file: kekFile().path } }),
    });
    const deps = await createAuthzDeps(config, log, { clock });
    opened.push(deps);
    expect(deps.keys.activeKid).toBe("test-1");
    expect(lines.some((l) => l.msg.startsWith("authz.signingKeys and authz.keyRotation are both set"))).toBe(true);
  });
});

describe("keys that rotate themselves: Redis not there yet", () => {
  it("the start waits for a Redis that comes up meanwhile, rather than fail or serve without keys", async () => {
    const redis = await startRedisServer();
    await redis.stop();
    try {
      const { log, lines } = capturedLog();
      const config = await testConfig({ redisUrl: redis.url, keyPrefix: prefix(), patch: rotating(kekFile().path) });
      const starting = createAuthzDeps(config, log, { clock });
      await waitFor(() => lines.some((l) => l.msg.startsWith("signing keys could not be refreshed")), { budgetMs: 15_000, what: "the first failed read of the keys" });
      await redis.start();
      const deps = await starting;
      opened.push(deps);
      expect(kids(deps)).toEqual([deps.keys.activeKid]);
    } finally {
      await redis.stop();
    }
  });
});
