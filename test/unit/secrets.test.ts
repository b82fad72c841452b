import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { constantTimeEqual, createPooledRandom, cryptoRandom, hashSecret } from "../../services/authz/oauth/secrets.js";

describe("constantTimeEqual", () => {
  it.each<[string, string, string, boolean]>([
    ["identical strings", "s3cr3t-value", "s3cr3t-value", true],
    ["two empty strings", "", "", true],
    ["identical non-ASCII strings", "pässwörd🔑", "pässwörd🔑", true],
    ["a difference in the last character", "s3cr3t-value", "s3cr3t-valuf", false],
    ["a difference in the first character", "s3cr3t-value", "t3cr3t-value", false],
    ["a difference in case only", "secret", "SECRET", false],
    ["a prefix", "s3cr3t", "s3cr3t-value", false],
    ["an extension", "s3cr3t-value", "s3cr3t", false],
    ["an empty string against a non-empty one", "", "x", false],
    ["NFC against NFD of the same text (bytes differ)", "é".normalize("NFC"), "é".normalize("NFD"), false],
    ["same length in UTF-16 but different in UTF-8", "éa", "ée", false],
  ])("RFC 6749 §10.10: %s → %s", (_name, a, b, expected) => {
    expect(constantTimeEqual(a, b)).toBe(expected);
    expect(constantTimeEqual(b, a)).toBe(expected);
  });
});

describe("hashSecret", () => {
  it.each<[string, string, string]>([
    ["FIPS 180-2 'abc' vector (ba7816bf…15ad)", "abc", "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"],
    ["the empty string (e3b0c442…b855)", "", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"],
  ])("RFC 4648 §5: base64url SHA-256 of %s", (_name, value, expected) => {
    expect(hashSecret(value)).toBe(expected);
  });

  it("hashes UTF-8: a non-ASCII secret hashes as its UTF-8 bytes, not Latin-1", () => {
    const utf8 = createHash("sha256").update(Buffer.from([0xc3, 0xa9])).digest("base64url");
    const latin1 = createHash("sha256").update(Buffer.from([0xe9])).digest("base64url");
    expect(hashSecret("\u00e9")).toBe(utf8);
    expect(hashSecret("\u00e9")).not.toBe(latin1);
  });

  it.each(["a", "client-secret", "x".repeat(1000), "🔑"])("RFC 6819 §5.1.4.1.3: the digest of %j is 43 base64url characters, unpadded", (value) => {
    expect(hashSecret(value)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("different secrets have different digests and the digest is not the secret", () => {
    expect(hashSecret("secret-a")).not.toBe(hashSecret("secret-b"));
    expect(hashSecret("secret-a")).not.toContain("secret-a");
  });
});

describe("cryptoRandom", () => {
  it.each<[number, number]>([
    [16, 22],
    [32, 43],
  ])("RFC 6749 §10.10: %i random bytes are %i base64url characters", (bytes, length) => {
    expect(cryptoRandom(bytes)).toMatch(new RegExp(`^[A-Za-z0-9_-]{${length}}$`));
  });

  it("RFC 6749 §10.10: two draws differ", () => {
    expect(cryptoRandom(32)).not.toBe(cryptoRandom(32));
  });
});

describe("createPooledRandom", () => {
  it.each<[number, number]>([
    [12, 16],
    [16, 22],
    [32, 43],
  ])("RFC 6749 §10.10: %i random bytes are %i base64url characters", (bytes, length) => {
    expect(createPooledRandom()(bytes)).toMatch(new RegExp(`^[A-Za-z0-9_-]{${length}}$`));
  });

  it("hands every pooled byte out once: draws across many refills never repeat, and are not all zero", () => {
    // A small pool refills every few draws; 16-byte draws of a CSPRNG never collide in practice.
    const random = createPooledRandom(64);
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) seen.add(random(16));
    expect(seen.size).toBe(5_000);
    expect(seen.has(Buffer.alloc(16).toString("base64url"))).toBe(false);
  });

  it("a draw larger than the pool is served directly, at its full length", () => {
    expect(createPooledRandom(16)(48)).toMatch(/^[A-Za-z0-9_-]{64}$/);
  });

  it("draws that do not fill the pool exactly still come out whole: the remainder is skipped, not reused", () => {
    const random = createPooledRandom(40);
    const draws = Array.from({ length: 100 }, () => random(16));
    for (const draw of draws) expect(Buffer.from(draw, "base64url")).toHaveLength(16);
    expect(new Set(draws).size).toBe(100);
  });
});
