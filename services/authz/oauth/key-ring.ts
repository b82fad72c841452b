import { compactVerify, exportJWK, generateKeyPair, importJWK, jwtVerify, type CryptoKey, type JWK } from "jose";
import { createJwsSigner, type JwsSigner } from "./jws-sign.js";
import type { AccessTokenClaims, IdTokenClaims, LogoutTokenClaims } from "./tokens.js";

/** Algorithms a signing key may use; ES256 is the default (../shared/DESIGN.md, Tokens). */
export const SUPPORTED_ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256", "PS256"] as const;
export type SigningAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

/**
 * The access token signing keys: one active key signs; every key verifies, so
 * that keys rotate without downtime (publish the new key, make it active once
 * caches have it, drop the old one when its tokens have expired).
 */
export interface KeyRing {
  /** The kid of the key that signs now (it changes when a self-rotating ring rotates). */
  readonly activeKid: string;
  /** Signs an RFC 9068 access token (`typ: at+jwt`). */
  sign(claims: AccessTokenClaims): Promise<string>;
  /**
   * Verifies signature, `typ`, `iss` and `exp` at `now` (ms). Throws on any
   * failure. Successful verifications are cached by token, so a token is
   * checked cryptographically once per process; `exp` is re-checked on every
   * hit.
   */
  verify(token: string, now: number): Promise<AccessTokenClaims>;
  /** The public JWK Set (RFC 7517 §5), served by the gateway: every key that is published, active or retiring now. */
  readonly publicJwks: { keys: JWK[] };
  /** The active key's algorithm: ID Tokens use it unless the client registered another. */
  readonly activeAlg: string;
  /** OpenID Connect Discovery `id_token_signing_alg_values_supported`: the algorithms of the published keys (never `none`). */
  readonly idTokenAlgorithms: readonly string[];
  /**
   * Signs an OpenID Connect ID Token (Core §2, §3.1.3.7): with the active key,
   * or, for a client that registered another algorithm, a published key of
   * that algorithm. Rejects with KeyRingError when there is none.
   */
  signIdToken(claims: IdTokenClaims, alg: string): Promise<string>;
  /**
   * Verifies an ID Token this server issued, presented back as `id_token_hint`
   * (Core §3.1.2.1, RP-Initiated Logout §2): the signature of a published key
   * and `iss`. `exp` is not checked: the hint of an expired token still names
   * the user. Access and Logout Tokens are refused. Throws on any failure.
   */
  verifyIdTokenHint(token: string): Promise<IdTokenClaims>;
  /** Signs a Back-Channel Logout 1.0 §2.4 Logout Token (`typ: logout+jwt`) with the key signIdToken would use. */
  signLogoutToken(claims: LogoutTokenClaims, alg: string): Promise<string>;
}

/** A key imported for signing and verifying. */
export interface RingKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  /**
   * The public half for verifying, imported at its first use (the same
   * promise after): a deployment of 1,000 tenants imports 1,000 key pairs at
   * start, and WebCrypto's JWK import of each half costs about 0.25 ms of CPU
   * (issue 11).
   */
  publicKey(): Promise<CryptoKey>;
  publicJwk: JWK;
}

export class KeyRingError extends Error {
  override readonly name = "KeyRingError";
}

/**
 * Builds a key ring from a JWK Set holding private keys. Each key needs a
 * `kid` and an `alg`; `activeKid` picks the signer (default: the first key).
 */
export async function createKeyRing(options: {
  jwks: string;
  activeKid: string | undefined;
  issuer: string;
  verifyCacheSize?: number;
}): Promise<KeyRing> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(options.jwks);
  } catch {
    throw new KeyRingError("signing keys: not JSON; expected a JWK Set {\"keys\": [...]}");
  }
  const jwks = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(jwks) || jwks.length === 0) throw new KeyRingError("signing keys: expected a JWK Set with at least one key");
  const keys: RingKey[] = [];
  for (const [i, jwk] of (jwks as JWK[]).entries()) {
    if (typeof jwk.kid !== "string" || jwk.kid === "") throw new KeyRingError(`signing keys: keys[${i}] has no kid`);
    if (!SUPPORTED_ALGORITHMS.includes(jwk.alg as (typeof SUPPORTED_ALGORITHMS)[number])) {
      throw new KeyRingError(`signing keys: keys[${i}] (${jwk.kid}) needs alg, one of ${SUPPORTED_ALGORITHMS.join(", ")}`);
    }
    if (jwk.d === undefined) throw new KeyRingError(`signing keys: keys[${i}] (${jwk.kid}) is not a private key`);
    if (keys.some((k) => k.kid === jwk.kid)) throw new KeyRingError(`signing keys: kid ${jwk.kid} appears twice`);
    try {
      keys.push(await importRingKey(jwk));
    } catch (error) {
      throw new KeyRingError(`signing keys: keys[${i}] (${jwk.kid}) cannot be imported: ${(error as Error).message}`);
    }
  }
  const active = options.activeKid === undefined ? keys[0]! : keys.find((k) => k.kid === options.activeKid);
  if (active === undefined) throw new KeyRingError(`signing keys: activeKid ${options.activeKid} is not in the set`);
  const view = createKeyView(keys, active);
  return buildKeyRing({ view: () => view, issuer: options.issuer, verifyCacheSize: options.verifyCacheSize });
}

/** Imports a private JWK (with kid and alg) for signing, and its public half for verifying and publishing. */
export async function importRingKey(jwk: JWK): Promise<RingKey> {
  const privateKey = (await importJWK(jwk, jwk.alg)) as CryptoKey;
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...publicFields } = jwk;
  const publicJwk: JWK = Object.assign({}, publicFields, { use: "sig" });
  let publicKey: Promise<CryptoKey> | undefined;
  return { kid: jwk.kid!, alg: jwk.alg!, privateKey, publicKey: () => (publicKey ??= importJWK(publicJwk, jwk.alg) as Promise<CryptoKey>), publicJwk };
}

/**
 * Generates a key pair for `alg` and returns it both as a ring key (the
 * generated CryptoKeys themselves) and as the private JWK (with kid and alg)
 * that is stored sealed. Importing the JWK back would cost a WebCrypto import
 * per key, once per tenant at a first start (issue 11). The private
 * CryptoKey is extractable, as it had to be to export the JWK; it never
 * leaves the process but sealed.
 */
export async function generateRingKey(alg: SigningAlgorithm, kid: string): Promise<{ ringKey: RingKey; privateJwk: JWK }> {
  const pair = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}) });
  const privateJwk: JWK = Object.assign(await exportJWK(pair.privateKey), { kid, alg });
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...publicFields } = privateJwk;
  const publicKey = Promise.resolve(pair.publicKey);
  return { ringKey: { kid, alg, privateKey: pair.privateKey, publicKey: () => publicKey, publicJwk: Object.assign({}, publicFields, { use: "sig" }) }, privateJwk };
}

/** The keys as they stand at one instant: the signer, and every key that verifies and is published. */
export interface KeyView {
  readonly active: RingKey;
  readonly byKid: ReadonlyMap<string, RingKey>;
  readonly publicJwks: { keys: JWK[] };
}

export function createKeyView(keys: readonly RingKey[], active: RingKey): KeyView {
  return {
    active,
    byKid: new Map(keys.map((k) => [k.kid, k])),
    publicJwks: { keys: keys.map((k) => k.publicJwk) },
  };
}

/** A fresh ES256 key for development. Tokens die with the process, and replicas cannot share it. */
export async function generateDevelopmentJwks(): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return JSON.stringify({ keys: [Object.assign({}, jwk, { kid: `dev-${Date.now().toString(36)}`, alg: "ES256" })] });
}

/**
 * A key ring over `view()`, asked at every signature and verification: a
 * static ring returns one view; a self-rotating one (rotating-key-ring.ts)
 * the view of its keys at the clock's now, held in memory. A token naming an
 * unknown kid calls `onUnknownKid` (when given) once and is looked up again:
 * a key may have been published since the view was read.
 */
export function buildKeyRing(options: {
  view: () => KeyView;
  issuer: string;
  verifyCacheSize?: number | undefined;
  onUnknownKid?: (() => Promise<void>) | undefined;
}): KeyRing {
  const { view, issuer, onUnknownKid } = options;
  const verified = new BoundedCache<AccessTokenClaims>(options.verifyCacheSize ?? 20_000);
  /** Each key's signer, made at its first signature (keys live as long as the ring holds them). */
  const signers = new WeakMap<RingKey, JwsSigner>();
  const signerOf = (key: RingKey): JwsSigner => {
    let signer = signers.get(key);
    if (signer === undefined) signers.set(key, (signer = createJwsSigner(key.alg, key.privateKey)));
    return signer;
  };
  /** The key for ID Tokens of `alg`: the active one, or a published one of that algorithm. */
  const idTokenSigner = (alg: string): RingKey => {
    const { active, byKid } = view();
    const key = active.alg === alg ? active : [...byKid.values()].find((k) => k.alg === alg);
    if (key === undefined) throw new KeyRingError(`no signing key for ID Token algorithm ${alg}`);
    return key;
  };
  /** A published key by kid, the header's alg its own. */
  const publishedKey = async (kid: string | undefined, alg: string | undefined): Promise<CryptoKey> => {
    if (kid === undefined) throw new KeyRingError("unknown signing key");
    let key = view().byKid.get(kid);
    if (key === undefined && onUnknownKid !== undefined) {
      await onUnknownKid();
      key = view().byKid.get(kid);
    }
    if (key === undefined || key.alg !== alg) throw new KeyRingError("unknown signing key");
    return key.publicKey();
  };

  return {
    get activeKid() {
      return view().active.kid;
    },
    get publicJwks() {
      return view().publicJwks;
    },
    get activeAlg() {
      return view().active.alg;
    },
    get idTokenAlgorithms() {
      const { active, byKid } = view();
      return [...new Set([active.alg, ...[...byKid.values()].map((k) => k.alg)])];
    },

    async signIdToken(claims, alg) {
      const key = idTokenSigner(alg);
      // Core §2: an ID Token is a JWS; typ JWT, so that it is never mistaken for an at+jwt or a logout+jwt.
      return signerOf(key)({ kid: key.kid, typ: "JWT" }, claims);
    },

    async signLogoutToken(claims, alg) {
      const key = idTokenSigner(alg);
      return signerOf(key)({ kid: key.kid, typ: "logout+jwt" }, claims);
    },

    async verifyIdTokenHint(token) {
      // The signature only (an expired hint still names its user), then iss and the claims a hint needs.
      const { payload, protectedHeader } = await compactVerify(token, (header) => publishedKey(header.kid, header.alg), { algorithms: [...SUPPORTED_ALGORITHMS] });
      if (protectedHeader.typ !== undefined && protectedHeader.typ.toUpperCase() !== "JWT") throw new KeyRingError("not an ID Token");
      let claims: Record<string, unknown>;
      try {
        claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
      } catch {
        throw new KeyRingError("not an ID Token");
      }
      if (claims.iss !== issuer || typeof claims.sub !== "string" || claims.aud === undefined || "client_id" in claims || "events" in claims) {
        throw new KeyRingError("not an ID Token");
      }
      return claims as unknown as IdTokenClaims;
    },

    async sign(claims) {
      const { active } = view();
      // RFC 9068 §2.1: typ at+jwt.
      return signerOf(active)({ kid: active.kid, typ: "at+jwt" }, claims);
    },

    async verify(token, now) {
      let claims = verified.get(token);
      if (claims === undefined) {
        const { payload } = await jwtVerify(
          token,
          async (header) => {
            if (header.kid === undefined) throw new KeyRingError("unknown signing key");
            let key = view().byKid.get(header.kid);
            if (key === undefined && onUnknownKid !== undefined) {
              await onUnknownKid();
              key = view().byKid.get(header.kid);
            }
            if (key === undefined || key.alg !== header.alg) throw new KeyRingError("unknown signing key");
            return key.publicKey();
          },
          {
            // RFC 9068 §4: check typ, iss, exp. The algorithm must be the named key's own (checked
            // above, against a key that may have been published a moment ago, so not listed here).
            typ: "at+jwt",
            issuer,
            algorithms: [...SUPPORTED_ALGORITHMS],
            currentDate: new Date(now),
            requiredClaims: ["sub", "client_id", "jti", "exp", "iat"],
          },
        );
        claims = payload as unknown as AccessTokenClaims;
        verified.set(token, claims);
      }
      // RFC 7519 §4.1.4: not valid at or after exp.
      if (claims.exp * 1000 <= now) {
        verified.delete(token);
        throw new KeyRingError("token expired");
      }
      return claims;
    },
  };
}

/** A Map that forgets its oldest entries beyond `capacity`. */
class BoundedCache<V> {
  readonly #entries = new Map<string, V>();
  constructor(private readonly capacity: number) {}
  get(key: string): V | undefined {
    return this.#entries.get(key);
  }
  set(key: string, value: V): void {
    if (this.#entries.size >= this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, value);
  }
  delete(key: string): void {
    this.#entries.delete(key);
  }
}
