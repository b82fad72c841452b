import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createKeyRing } from "../../services/authz/oauth/key-ring.js";
import type { AccessTokenClaims } from "../../services/authz/oauth/tokens.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { ROOT } from "./support.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-jwks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `npm run generate-jwks -- ARGS`, as the README tells an operator to run it.
 * One run takes about 0.9 s on a quiet machine, nearly all of it tsx starting;
 * the budget (10 s quiet, scaled by TEST_TIME_SCALE) only stops a run that hangs.
 */
function generateJwks(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "scripts/generate-jwks.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout: scaledBudget(10_000) });
}
const read = (path: string) => JSON.parse(readFileSync(path, "utf8")) as { keys: Array<Record<string, string>> };

const ISSUER = "https://auth.example.com";
const claims = (now: number): AccessTokenClaims =>
  ({ iss: ISSUER, sub: "alice", aud: ISSUER, client_id: "web", scope: "notes:read", jti: "j1", iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 600 }) as unknown as AccessTokenClaims;

/**
 * Each test's budget: up to four runs of the script (about 0.9 s each on a
 * quiet machine, 10 s at a load average of 15: starting tsx suffers most from
 * a busy machine); 20 s quiet, scaled by TEST_TIME_SCALE.
 */
const GENERATE_JWKS_TEST_BUDGET_MS = scaledBudget(20_000);

describe("scripts/generate-jwks.ts: signing keys and their rotation", { timeout: GENERATE_JWKS_TEST_BUDGET_MS }, () => {
  const path = join(dir, "jwks.json");

  it("makes a JWK Set of one private ES256 key that the authz service's key ring loads and signs with", async () => {
    const result = generateJwks("--kid", "2026-11", "--out", path);
    expect(result.status, result.stderr).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const { keys } = read(path);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kid: "2026-11", alg: "ES256", kty: "EC", crv: "P-256", use: "sig" });
    const ring = await createKeyRing({ jwks: readFileSync(path, "utf8"), activeKid: undefined, issuer: ISSUER });
    expect(ring.activeKid).toBe("2026-11");
    const now = Date.now();
    expect((await ring.verify(await ring.sign(claims(now)), now)).sub).toBe("alice");
    expect(JSON.stringify(ring.publicJwks)).not.toMatch(/"d"/);
  });

  it("rotates without downtime: the new key is appended, the old one keeps signing until activeKid names the new, and verifies its tokens after", async () => {
    const old = await createKeyRing({ jwks: readFileSync(path, "utf8"), activeKid: undefined, issuer: ISSUER });
    const now = Date.now();
    const issuedBefore = await old.sign(claims(now));

    const added = generateJwks("--in", path, "--out", path, "--kid", "2026-12");
    expect(added.status, added.stderr).toBe(0);
    expect(read(path).keys.map((k) => k.kid)).toEqual(["2026-11", "2026-12"]);
    // Step 1: both keys published, the first still signing (no activeKid).
    const step1 = await createKeyRing({ jwks: readFileSync(path, "utf8"), activeKid: undefined, issuer: ISSUER });
    expect(step1.activeKid).toBe("2026-11");
    expect(step1.publicJwks.keys.map((k) => k.kid)).toEqual(["2026-11", "2026-12"]);
    // Step 2: activeKid switches; tokens signed by the old key still verify.
    const step2 = await createKeyRing({ jwks: readFileSync(path, "utf8"), activeKid: "2026-12", issuer: ISSUER });
    const issuedAfter = await step2.sign(claims(now));
    expect(JSON.parse(Buffer.from(issuedAfter.split(".")[0]!, "base64url").toString()).kid).toBe("2026-12");
    expect((await step2.verify(issuedBefore, now)).sub).toBe("alice");

    // Step 3: after the access token lifetime, the old key goes.
    const removed = generateJwks("--in", path, "--out", path, "--remove", "2026-11");
    expect(removed.status, removed.stderr).toBe(0);
    const step3 = await createKeyRing({ jwks: readFileSync(path, "utf8"), activeKid: "2026-12", issuer: ISSUER });
    expect(step3.publicJwks.keys.map((k) => k.kid)).toEqual(["2026-12"]);
    expect((await step3.verify(issuedAfter, now)).sub).toBe("alice");
    await expect(step3.verify(issuedBefore, now)).rejects.toThrow();
  });

  it.each(["ES384", "EdDSA", "RS256", "PS256"])("makes %s keys the key ring loads", async (alg) => {
    const result = generateJwks("--alg", alg, "--kid", `k-${alg}`);
    expect(result.status, result.stderr).toBe(0);
    const ring = await createKeyRing({ jwks: result.stdout, activeKid: `k-${alg}`, issuer: ISSUER });
    const now = Date.now();
    expect((await ring.verify(await ring.sign(claims(now)), now)).sub).toBe("alice");
  });

  it.each([
    [["--alg", "HS256"], /--alg must be one of/],
    [["--in", "/nonexistent/jwks.json"], /cannot read a JWK Set/],
    [["--remove", "x"], /--remove needs --in/],
    [["--bogus"], /Unknown option/],
  ])("refuses %j", (args, message) => {
    const result = generateJwks(...(args as string[]));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(message as RegExp);
  });

  it("refuses a kid already in the set, and removing the last key", () => {
    const single = join(dir, "single.json");
    expect(generateJwks("--kid", "only", "--out", single).status).toBe(0);
    const duplicate = generateJwks("--in", single, "--kid", "only");
    expect(duplicate.status).not.toBe(0);
    expect(duplicate.stderr).toMatch(/already in the set/);
    const last = generateJwks("--in", single, "--remove", "only");
    expect(last.status).not.toBe(0);
    expect(last.stderr).toMatch(/last key/);
  });
});
