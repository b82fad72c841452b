import { describe, expect, it } from "vitest";
import { decoyPasswordHash, hashPassword, verifyPassword } from "../../services/authz/oauth/password.js";
import { cryptoRandom } from "../../services/authz/oauth/secrets.js";

/** A low cost, so the tests are fast; production uses N = 2^15. */
const LOW_COST = { N: 1024, r: 8, p: 1 };
const PASSWORD = "correct horse battery staple";

const encoded = await hashPassword(PASSWORD, LOW_COST);
const [, , , , salt, hash] = encoded.split("$") as [string, string, string, string, string, string];

describe("hashPassword", () => {
  it("encodes scrypt$N$r$p$salt$hash with a 16-byte salt and a 32-byte hash, base64url", () => {
    expect(encoded).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  });

  it("salts each hash: the same password hashes differently twice", async () => {
    const again = await hashPassword(PASSWORD, LOW_COST);
    expect(again).not.toBe(encoded);
    expect(again.split("$")[4]).not.toBe(salt);
  });

  it("uses N = 2^15, r = 8, p = 1 by default", async () => {
    const byDefault = await hashPassword(PASSWORD);
    expect(byDefault).toMatch(/^scrypt\$32768\$8\$1\$/);
    await expect(verifyPassword(PASSWORD, byDefault)).resolves.toBe(true);
  });
});

describe("verifyPassword", () => {
  it("accepts the password it was made from", async () => {
    await expect(verifyPassword(PASSWORD, encoded)).resolves.toBe(true);
  });

  it("compares passwords in NFC: the NFD spelling of a password matches its NFC hash", async () => {
    const stored = await hashPassword("café".normalize("NFC"), LOW_COST);
    await expect(verifyPassword("café".normalize("NFD"), stored)).resolves.toBe(true);
  });

  it.each<[string, string]>([
    ["a different password", "correct horse battery stapler"],
    ["the password in another case", PASSWORD.toUpperCase()],
    ["the password with a trailing space", `${PASSWORD} `],
    ["a prefix of the password", PASSWORD.slice(0, -1)],
    ["an empty password", ""],
  ])("rejects %s", async (_name, password) => {
    await expect(verifyPassword(password, encoded)).resolves.toBe(false);
  });

  it.each<[string, string]>([
    ["an empty encoding", ""],
    ["a plaintext password as the encoding", PASSWORD],
    ["another algorithm's prefix", `bcrypt$1024$8$1$${salt}$${hash}`],
    ["the algorithm name in upper case", `SCRYPT$1024$8$1$${salt}$${hash}`],
    ["five parts", `scrypt$1024$8$1$${salt}`],
    ["seven parts", `${encoded}$extra`],
    ["N that is not a power of two", `scrypt$1000$8$1$${salt}$${hash}`],
    ["N = 1", `scrypt$1$8$1$${salt}$${hash}`],
    ["N = 0", `scrypt$0$8$1$${salt}$${hash}`],
    ["an empty N", `scrypt$$8$1$${salt}$${hash}`],
    ["a non-numeric N", `scrypt$abc$8$1$${salt}$${hash}`],
    ["a fractional r", `scrypt$1024$1.5$1$${salt}$${hash}`],
    ["a fractional p", `scrypt$1024$8$0.5$${salt}$${hash}`],
    ["an empty hash", `scrypt$1024$8$1$${salt}$`],
    ["a hash shorter than 16 bytes", `scrypt$1024$8$1$${salt}$${hash.slice(0, 20)}`],
    ["a different salt", `scrypt$1024$8$1$${"A".repeat(22)}$${hash}`],
    ["a hash of the right length with its last two characters changed", `scrypt$1024$8$1$${salt}$${hash.slice(0, -2)}${hash.endsWith("AA") ? "BA" : "AA"}`],
    ["a negative r", `scrypt$1024$-1$1$${salt}$${hash}`],
    ["r = 0 (Node would take its default)", `scrypt$1024$0$1$${salt}$${hash}`],
    ["p = 0 (Node would take its default)", `scrypt$1024$8$0$${salt}$${hash}`],
    ["N in hexadecimal", `scrypt$0x400$8$1$${salt}$${hash}`],
    ["an r past the memory bound", `scrypt$1024$99999999$1$${salt}$${hash}`],
    ["a p past the memory bound", `scrypt$1024$8$99999999$${salt}$${hash}`],
    ["N = 2^31 (past the cost bound)", `scrypt$2147483648$8$1$${salt}$${hash}`],
    ["N = 3·2^32 (not a power of two; wraps in 32-bit arithmetic)", `scrypt$12884901888$8$1$${salt}$${hash}`],
  ])("returns false, without throwing, for %s", async (_name, stored) => {
    await expect(verifyPassword(PASSWORD, stored)).resolves.toBe(false);
  });
});

describe("decoyPasswordHash", () => {
  it("has the shape of hashPassword's output at the default cost, so verifying against it runs the same scrypt (unknown users cost what wrong passwords cost)", async () => {
    const decoy = decoyPasswordHash(cryptoRandom);
    const real = await hashPassword(PASSWORD);
    const shape = (encoded: string) => encoded.replace(/[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/, "<salt>$<hash>");
    expect(shape(decoy)).toBe(shape(real));
    expect(shape(decoy)).toBe("scrypt$32768$8$1$<salt>$<hash>");
  });

  it("matches no password, and differs from one server to the next", async () => {
    const decoy = decoyPasswordHash(cryptoRandom, LOW_COST);
    await expect(verifyPassword(PASSWORD, decoy)).resolves.toBe(false);
    await expect(verifyPassword("", decoy)).resolves.toBe(false);
    expect(decoyPasswordHash(cryptoRandom)).not.toBe(decoyPasswordHash(cryptoRandom));
  });
});
