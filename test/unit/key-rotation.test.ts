import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseAuthzConfig, type Environment } from "../../services/authz/config.js";
import { applyRotationStep, keyPhases, nextPhaseChange, planRotation, type RotationPolicy, type RotationStep } from "../../services/authz/oauth/key-rotation.js";
import { createKeyEncryptionKey, openPrivateJwk, sealPrivateJwk } from "../../services/authz/oauth/key-sealing.js";
import type { SigningKeySet, StoredSigningKey } from "../../services/authz/oauth/signing-key-store.js";
import { configErrorOf } from "../support/config-error-of.js";

/** Small numbers, so the tables read easily: a term of 100, published 20 ahead, tokens live 10, kept 5 more. */
const POLICY: RotationPolicy = { rotateEveryMs: 100, publishAheadMs: 20, accessTokenTtlMs: 10, retireMarginMs: 5 };

const key = (kid: string, activatesAt: number): StoredSigningKey => ({
  kid,
  alg: "ES256",
  createdAt: activatesAt - 20,
  activatesAt,
  publicJwk: { kty: "EC", kid },
  sealedPrivateJwk: "sealed",
});
const set = (...keys: StoredSigningKey[]): SigningKeySet => ({ generation: keys.length, keys });

describe("keyPhases: where each key is at now", () => {
  it.each<[string, StoredSigningKey[], number, Record<string, string>]>([
    ["the only key, from its activation", [key("A", 0)], 0, { A: "active" }],
    ["a successor is published before it activates", [key("A", 0), key("B", 100)], 80, { A: "active", B: "published" }],
    ["the successor signs from its activation instant; the predecessor retires", [key("A", 0), key("B", 100)], 100, { A: "retiring", B: "active" }],
    ["the predecessor stays while a token it signed may live (ttl + margin)", [key("A", 0), key("B", 100)], 114, { A: "retiring", B: "active" }],
    ["and is retired once none can", [key("A", 0), key("B", 100)], 115, { A: "retired", B: "active" }],
    ["three generations", [key("A", 0), key("B", 100), key("C", 200)], 210, { A: "retired", B: "retiring", C: "active" }],
    ["the stored order does not matter", [key("B", 100), key("A", 0)], 50, { A: "active", B: "published" }],
    ["a first key a moment ahead (another replica's clock) is published, not active", [key("A", 10)], 5, { A: "published" }],
  ])("%s", (_name, keys, now, expected) => {
    expect(Object.fromEntries(keyPhases(keys, POLICY, now).map((p) => [p.kid, p.phase]))).toEqual(expected);
  });
});

describe("planRotation: what the stored set needs at now", () => {
  it.each<[string, SigningKeySet | undefined, number, RotationStep]>([
    ["no set: the first key, active at once", undefined, 0, { kind: "create", activatesAt: 0, retire: [] }],
    ["an empty set: likewise", { generation: 3, keys: [] }, 7, { kind: "create", activatesAt: 7, retire: [] }],
    ["mid-term: nothing", set(key("A", 0)), 79, { kind: "none" }],
    ["publishAhead before the term ends: the successor, activating at the term's end", set(key("A", 0)), 80, { kind: "create", activatesAt: 100, retire: [] }],
    ["late (an outage): the successor still published a full publishAhead ahead", set(key("A", 0)), 150, { kind: "create", activatesAt: 170, retire: [] }],
    ["a successor published: nothing", set(key("A", 0), key("B", 100)), 90, { kind: "none" }],
    ["the predecessor retiring: nothing", set(key("A", 0), key("B", 100)), 114, { kind: "none" }],
    ["the predecessor retired: delete it", set(key("A", 0), key("B", 100)), 115, { kind: "prune", retire: ["A"] }],
    ["the next successor due with a retired key: both in one write", set(key("A", 0), key("B", 100)), 180, { kind: "create", activatesAt: 200, retire: ["A"] }],
    ["a first key a moment ahead: nothing (it signs already; see rotating-key-ring)", set(key("A", 10)), 5, { kind: "none" }],
  ])("%s", (_name, stored, now, expected) => {
    expect(planRotation(stored, POLICY, now)).toEqual(expected);
  });

  it("the successor of a term always activates publishAhead after it is created, or later", () => {
    for (let now = 80; now < 400; now += 7) {
      const step = planRotation(set(key("A", 0)), POLICY, now);
      expect(step.kind).toBe("create");
      if (step.kind === "create") expect(step.activatesAt - now).toBeGreaterThanOrEqual(POLICY.publishAheadMs);
    }
  });
});

describe("applyRotationStep", () => {
  it("counts the generation up, deletes retired keys and keeps the set in activation order", () => {
    const next = applyRotationStep(set(key("B", 100), key("A", 0)), { kind: "create", activatesAt: 200, retire: ["A"] }, key("C", 200));
    expect(next.generation).toBe(3);
    expect(next.keys.map((k) => k.kid)).toEqual(["B", "C"]);
  });
  it("the first write is generation 1", () => {
    expect(applyRotationStep(undefined, { kind: "create", activatesAt: 0, retire: [] }, key("A", 0)).generation).toBe(1);
  });
});

describe("nextPhaseChange: until when a replica's view of its keys stands", () => {
  it.each<[StoredSigningKey[], number, number]>([
    [[key("A", 0)], 50, Infinity],
    [[key("A", 0), key("B", 100)], 50, 100],
    [[key("A", 0), key("B", 100)], 100, 115],
    [[key("A", 0), key("B", 100)], 115, Infinity],
  ])("%j at %d: %d", (keys, now, expected) => {
    expect(nextPhaseChange(keys, POLICY, now)).toBe(expected);
  });
});

describe("sealing private keys under the key-encryption key (AES-256-GCM, kid as associated data)", () => {
  const kek = createKeyEncryptionKey(randomBytes(32));
  const jwk = { kty: "EC", crv: "P-256", x: "x", y: "y", d: "the-private-part", kid: "k1", alg: "ES256" };

  it("opens what it sealed, and the sealed form holds no private material", () => {
    const sealed = sealPrivateJwk(kek, "k1", jwk);
    expect(sealed).not.toContain("the-private-part");
    expect(openPrivateJwk(kek, "k1", sealed)).toEqual(jwk);
  });
  it("a sealed key moved to another kid does not open", () => {
    expect(() => openPrivateJwk(kek, "k2", sealPrivateJwk(kek, "k1", jwk))).toThrow(/does not open/);
  });
  it("another KEK is named as such", () => {
    const other = createKeyEncryptionKey(randomBytes(32));
    expect(() => openPrivateJwk(other, "k1", sealPrivateJwk(kek, "k1", jwk))).toThrow(new RegExp(`sealed under key-encryption key ${kek.id}, but this replica has ${other.id}`));
  });
  it("an altered ciphertext does not open", () => {
    const parts = sealPrivateJwk(kek, "k1", jwk).split(".");
    parts[4] = Buffer.from(Buffer.from(parts[4]!, "base64url").map((b, i) => (i === 0 ? b ^ 1 : b))).toString("base64url");
    expect(() => openPrivateJwk(kek, "k1", parts.join("."))).toThrow(/does not open/);
  });
});

describe("parseAuthzConfig: authz.keyRotation", () => {
  const ISSUER = "https://as.example";
  const KEK = randomBytes(32);
  const parse = (keyRotation: unknown, env: Environment = {}, redis?: unknown) =>
    parseAuthzConfig(stringify({ issuer: ISSUER, authz: { keyRotation, ...(redis === undefined ? {} : { redis }) } }), env);
  const problems = (keyRotation: unknown, env: Environment = {}, redis?: unknown) => configErrorOf(() => parse(keyRotation, env, redis)).problems;

  it("takes the defaults: ES256, 30 days, published a day ahead, a 10 s heartbeat", () => {
    expect(parse({})).toMatchObject({
      keyRotation: { algorithm: "ES256", rotateEverySeconds: 2_592_000, publishAheadSeconds: 86_400, retireMarginSeconds: 600, heartbeatSeconds: 10, keyEncryptionKey: undefined },
    });
  });
  it.each([
    ["base64", KEK.toString("base64")],
    ["base64url", KEK.toString("base64url")],
    ["hex", KEK.toString("hex")],
  ])("reads a 32-byte KEK in %s from the environment", (_name, value) => {
    expect(parse({ keyEncryptionKey: { env: "KEK" } }, { KEK: value }).keyRotation).toMatchObject({ keyEncryptionKey: KEK.toString("base64url"), keyEncryptionKeySource: "env KEK" });
  });
  it.each<[string, unknown, Environment, unknown, string]>([
    ["a KEK that is not 32 bytes", { keyEncryptionKey: { env: "KEK" } }, { KEK: randomBytes(16).toString("base64") }, undefined, "authz.keyRotation.keyEncryptionKey: the referenced value must be 32 random bytes in base64 (44 characters) or hex (64); make one with openssl rand -base64 32"],
    ["an unset KEK variable", { keyEncryptionKey: { env: "KEK" } }, {}, undefined, "authz.keyRotation.keyEncryptionKey: environment variable KEK is not set"],
    ["no KEK with Redis", {}, {}, { url: "redis://r" }, "authz.keyRotation.keyEncryptionKey: required with Redis, where private signing keys are stored sealed under it; give { env: NAME } or { file: PATH } holding 32 random bytes (openssl rand -base64 32)"],
    ["publishAhead not shorter than the term", { rotateEverySeconds: 3_600, publishAheadSeconds: 3_600 }, {}, undefined, "authz.keyRotation.publishAheadSeconds: must be shorter than rotateEverySeconds (3600), since each key is published ahead within its predecessor's term"],
    ["publishAhead shorter than a JWKS cache", { publishAheadSeconds: 30 }, {}, undefined, "authz.keyRotation.publishAheadSeconds: must be at least 60: longer than any cache of the JWKS should live (the gateway's is 30 s)"],
    ["a heartbeat too slow for publishAhead", { publishAheadSeconds: 600, heartbeatSeconds: 301 }, {}, undefined, "authz.keyRotation.heartbeatSeconds: must be at most half of publishAheadSeconds (600), so that every replica reads a new key well before it signs"],
    ["an unknown algorithm", { algorithm: "HS256" }, {}, undefined, "authz.keyRotation.algorithm:"],
  ])("refuses %s, at its path", (_name, keyRotation, env, redis, problem) => {
    expect(problems(keyRotation, env, redis)[0]).toContain(problem);
  });
});
