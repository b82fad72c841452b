import { describe, expect, it } from "vitest";
import { openTokenPair, sealTokenPair, type TokenPair } from "../../services/authz/oauth/grace-seal.js";

const PAIR: TokenPair = {
  accessToken: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkZW1vIn0.c2lnbmF0dXJl",
  refreshToken: "gr4nt1d-0123456789.s3cr3t-abcdefghijklmnopqrstuvwxyz012345",
  expiresIn: 600,
  scope: "read write",
  issuedAt: 1_700_000_000_123,
};
const ROTATED_OUT = "gr4nt1d-0123456789.0ld-s3cr3t-ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const GRANT_ID = "gr4nt1d-0123456789";

/** Flips one bit of the byte at `index` of the sealed bytes. */
function flipByte(sealed: string, index: number): string {
  const raw = Buffer.from(sealed, "base64url");
  raw[index] = raw[index]! ^ 0x01;
  return raw.toString("base64url");
}

describe("sealTokenPair / openTokenPair", () => {
  it("the rotated-out refresh token and its grant open the sealed pair unchanged", () => {
    const sealed = sealTokenPair(PAIR, ROTATED_OUT, GRANT_ID);
    expect(openTokenPair(sealed, ROTATED_OUT, GRANT_ID)).toEqual(PAIR);
  });

  it("the seal is base64url text that does not contain the tokens it protects", () => {
    const sealed = sealTokenPair(PAIR, ROTATED_OUT, GRANT_ID);
    expect(sealed).toMatch(/^[A-Za-z0-9_-]+$/);
    const raw = Buffer.from(sealed, "base64url");
    expect(raw.includes(PAIR.accessToken)).toBe(false);
    expect(raw.includes(PAIR.refreshToken)).toBe(false);
  });

  it("sealing the same pair twice gives different seals (a fresh IV each time)", () => {
    const first = sealTokenPair(PAIR, ROTATED_OUT, GRANT_ID);
    const second = sealTokenPair(PAIR, ROTATED_OUT, GRANT_ID);
    expect(first).not.toBe(second);
    expect(openTokenPair(second, ROTATED_OUT, GRANT_ID)).toEqual(PAIR);
  });

  const sealed = sealTokenPair(PAIR, ROTATED_OUT, GRANT_ID);
  const length = Buffer.from(sealed, "base64url").length;

  it.each<[string, string, string, string]>([
    ["another refresh token", sealed, `${ROTATED_OUT}x`, GRANT_ID],
    ["the new refresh token of the pair itself", sealed, PAIR.refreshToken, GRANT_ID],
    ["an empty token", sealed, "", GRANT_ID],
    ["the right token under another grant id", sealed, ROTATED_OUT, `${GRANT_ID}x`],
    ["the right token under an empty grant id", sealed, ROTATED_OUT, ""],
    ["a flipped bit in the IV", flipByte(sealed, 0), ROTATED_OUT, GRANT_ID],
    ["a flipped bit in the authentication tag", flipByte(sealed, 20), ROTATED_OUT, GRANT_ID],
    ["a flipped bit in the first ciphertext byte", flipByte(sealed, 28), ROTATED_OUT, GRANT_ID],
    ["a flipped bit in the last ciphertext byte", flipByte(sealed, length - 1), ROTATED_OUT, GRANT_ID],
    ["a truncated ciphertext", Buffer.from(sealed, "base64url").subarray(0, length - 1).toString("base64url"), ROTATED_OUT, GRANT_ID],
    ["an extended ciphertext", Buffer.concat([Buffer.from(sealed, "base64url"), Buffer.from([0])]).toString("base64url"), ROTATED_OUT, GRANT_ID],
    ["IV and tag only", Buffer.from(sealed, "base64url").subarray(0, 28).toString("base64url"), ROTATED_OUT, GRANT_ID],
    ["a seal shorter than IV and tag", Buffer.from(sealed, "base64url").subarray(0, 20).toString("base64url"), ROTATED_OUT, GRANT_ID],
    ["an empty seal", "", ROTATED_OUT, GRANT_ID],
    ["text that is not base64url", "not a seal!", ROTATED_OUT, GRANT_ID],
  ])("opening with %s gives undefined", (_name, seal, token, grantId) => {
    expect(openTokenPair(seal, token, grantId)).toBeUndefined();
  });
});
