/**
 * Makes and rotates the access token signing keys: a JWK Set of private keys
 * (RFC 7517 §5), each with a `kid` and an `alg`, as `authz.signingKeys.source`
 * reads it. Keys are generated here and never leave this machine except in
 * the file written; nothing is sent anywhere.
 *
 *   npm run -s generate-jwks                          a new set with one key, on stdout
 *   npm run -s generate-jwks -- --out jwks.json       ... written to a file (mode 0600)
 *   npm run -s generate-jwks -- --in jwks.json --out jwks.json --kid 2026-12
 *                                                     the same set plus a new key, appended
 *                                                     (first step of a rotation)
 *   npm run -s generate-jwks -- --in jwks.json --out jwks.json --remove 2026-11
 *                                                     the same set without one key (last step)
 *
 * Options: --kid KID (default: today's date and a random suffix), --alg ES256
 * (default; or ES384, EdDSA, RS256, PS256). A new key is appended, so a
 * configuration without `activeKid` keeps signing with the first key until
 * `activeKid` names the new one (deploy/README.md, Rotating signing keys).
 * In the image: `gatehouse generate-jwks ...`.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair, type JWK } from "jose";

const ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256", "PS256"] as const;
type Algorithm = (typeof ALGORITHMS)[number];

/** A private signing key as the authz service's key ring reads it. */
export type SigningJwk = JWK & { kid: string; alg: Algorithm; d: string };

function fail(message: string): never {
  process.stderr.write(`generate-jwks: ${message}\n`);
  process.exit(2);
}

/** A new private key with `kid` and `alg`, exportable as a JWK. */
export async function generateSigningKey(kid: string, alg: Algorithm): Promise<SigningJwk> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid, alg, use: "sig" } as SigningJwk;
}

function readSet(path: string): SigningJwk[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    fail(`cannot read a JWK Set from ${path}: ${(error as Error).message}`);
  }
  const keys = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) fail(`${path} is not a JWK Set ({"keys": [...]})`);
  for (const [i, key] of (keys as JWK[]).entries()) {
    if (typeof key.kid !== "string" || key.kid === "") fail(`${path}: keys[${i}] has no kid`);
    if (key.d === undefined) fail(`${path}: keys[${i}] (${key.kid}) is not a private key`);
  }
  return keys as SigningJwk[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kid: { type: "string" },
      alg: { type: "string", default: "ES256" },
      in: { type: "string" },
      out: { type: "string" },
      remove: { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  let keys = values.in === undefined ? [] : readSet(values.in);

  if (values.remove !== undefined) {
    if (values.in === undefined) fail("--remove needs --in");
    if (values.kid !== undefined) fail("--remove and --kid do not go together: remove a key in one run, add one in another");
    if (!keys.some((k) => k.kid === values.remove)) fail(`no key ${JSON.stringify(values.remove)} in ${values.in}`);
    keys = keys.filter((k) => k.kid !== values.remove);
    if (keys.length === 0) fail("that is the last key: the authz service needs at least one");
  } else {
    const alg = values.alg as Algorithm;
    if (!ALGORITHMS.includes(alg)) fail(`--alg must be one of ${ALGORITHMS.join(", ")}`);
    const kid = values.kid ?? `${new Date().toISOString().slice(0, 10)}-${randomBytes(2).toString("hex")}`;
    if (!/^[\x21-\x7E]+$/.test(kid)) fail("--kid must be printable ASCII without spaces");
    if (keys.some((k) => k.kid === kid)) fail(`kid ${JSON.stringify(kid)} is already in the set`);
    keys = [...keys, await generateSigningKey(kid, alg)];
    process.stderr.write(`generate-jwks: added key ${kid} (${alg}); the set has ${keys.map((k) => k.kid).join(", ")}\n`);
  }

  const text = `${JSON.stringify({ keys }, null, 2)}\n`;
  if (values.out === undefined) {
    process.stdout.write(text);
    return;
  }
  // Written whole or not at all, readable only by its owner.
  const temporary = `${values.out}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, values.out);
}

await main();
