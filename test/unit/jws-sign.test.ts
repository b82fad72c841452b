import { describe, expect, it } from "vitest";
import { compactVerify, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify, type CryptoKey } from "jose";
import { createJwsSigner } from "../../services/authz/oauth/jws-sign.js";
import { SUPPORTED_ALGORITHMS } from "../../services/authz/oauth/key-ring.js";

/** RFC 7515 compact JWS made with node:crypto (oauth/jws-sign.ts), checked by an independent implementation (jose). */

async function keyPair(alg: string): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }> {
  // As the key ring holds them: imported from a JWK, not extractable.
  const pair = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}) });
  return { privateKey: (await importJWK(await exportJWK(pair.privateKey), alg)) as CryptoKey, publicKey: pair.publicKey };
}

describe("createJwsSigner", () => {
  for (const alg of SUPPORTED_ALGORITHMS) {
    it(`${alg}: jose verifies the signature, the header and the payload`, async () => {
      const { privateKey, publicKey } = await keyPair(alg);
      const claims = { iss: "https://auth.example", sub: "ü-ser 1", aud: ["https://api"], scope: "read write", exp: 2_000_000_000, iat: 1_700_000_000 };
      const token = createJwsSigner(alg, privateKey)({ alg, kid: "k1", typ: "at+jwt" }, claims);
      const { payload, protectedHeader } = await jwtVerify(token, publicKey, { algorithms: [alg], typ: "at+jwt" });
      expect(protectedHeader).toEqual({ alg, kid: "k1", typ: "at+jwt" });
      expect(payload).toEqual(claims);
    });
  }

  it("RFC 7518 §3.4: an ECDSA signature is R || S (64 bytes for ES256, 96 for ES384), not DER", async () => {
    for (const [alg, length] of [["ES256", 64], ["ES384", 96]] as const) {
      const { privateKey } = await keyPair(alg);
      const token = createJwsSigner(alg, privateKey)({ alg, kid: "k" }, { a: 1 });
      expect(Buffer.from(token.split(".")[2]!, "base64url")).toHaveLength(length);
    }
  });

  it("the header names the signer's alg, whatever the caller put there", async () => {
    const { privateKey, publicKey } = await keyPair("ES256");
    const token = createJwsSigner("ES256", privateKey)({ alg: "none", kid: "k" }, { a: 1 });
    expect(decodeProtectedHeader(token).alg).toBe("ES256");
    await expect(compactVerify(token, publicKey)).resolves.toBeDefined();
  });

  it("a tampered payload does not verify", async () => {
    const { privateKey, publicKey } = await keyPair("ES256");
    const [header, , signature] = createJwsSigner("ES256", privateKey)({ alg: "ES256" }, { scope: "read" }).split(".");
    const forged = `${header}.${Buffer.from(JSON.stringify({ scope: "admin" })).toString("base64url")}.${signature}`;
    await expect(compactVerify(forged, publicKey)).rejects.toThrow();
  });

  it("refuses an unknown alg and a public key at once", async () => {
    const { privateKey, publicKey } = await keyPair("ES256");
    expect(() => createJwsSigner("HS256", privateKey)).toThrow(/unsupported alg "HS256"/);
    expect(() => createJwsSigner("ES256", publicKey)).toThrow(/not a private key/);
  });
});
