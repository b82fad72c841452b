import { constants, KeyObject, sign, type SignKeyObjectInput } from "node:crypto";
import type { CryptoKey } from "jose";

/**
 * A JWS in the compact serialization (RFC 7515 §7.1) of a JSON payload, the
 * signature made by node:crypto in the calling thread.
 *
 * Why not jose's SignJWT, which verification still uses: on Node it signs
 * through WebCrypto, whose every call is a job on the libuv thread pool plus
 * promise and key bookkeeping. Measured here for ES256: 57-61 µs of CPU per
 * signature that way, 31-34 µs with crypto.sign, and every code exchange and
 * refresh signs at least once.
 *
 * The header's `alg` (§4.1.1) is always the signer's own: callers name the
 * other parameters (kid, typ).
 */
export type JwsSigner = (protectedHeader: Readonly<Record<string, unknown>>, payload: object) => string;

/** RFC 7518 §3.1: the node:crypto digest and options of each `alg` the key ring supports. */
const PARAMETERS: Readonly<Record<string, { digest: string | null; options: Pick<SignKeyObjectInput, "dsaEncoding" | "padding" | "saltLength"> }>> = {
  // §3.4: an ECDSA signature is R || S, each as wide as the curve's order (IEEE P1363), not DER.
  ES256: { digest: "sha256", options: { dsaEncoding: "ieee-p1363" } },
  ES384: { digest: "sha384", options: { dsaEncoding: "ieee-p1363" } },
  // RFC 8037 §3.1: EdDSA hashes internally.
  EdDSA: { digest: null, options: {} },
  // §3.3: RSASSA-PKCS1-v1_5.
  RS256: { digest: "sha256", options: { padding: constants.RSA_PKCS1_PADDING } },
  // §3.5: RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash.
  PS256: { digest: "sha256", options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
};

/** A signer for `alg` with `privateKey`; an `alg` it does not know is refused here, not at the first signature. */
export function createJwsSigner(alg: string, privateKey: CryptoKey | KeyObject): JwsSigner {
  const parameters = PARAMETERS[alg];
  if (parameters === undefined) throw new Error(`JWS signing: unsupported alg ${JSON.stringify(alg)}`);
  const key = privateKey instanceof KeyObject ? privateKey : KeyObject.from(privateKey as Parameters<typeof KeyObject.from>[0]);
  if (key.type !== "private") throw new Error("JWS signing: the key is not a private key");
  const input: SignKeyObjectInput = { key, ...parameters.options };
  return (protectedHeader, payload) => {
    // §5.1: BASE64URL(UTF8(JWS Protected Header)) || '.' || BASE64URL(JWS Payload), signed as ASCII.
    const signingInput = `${encode(JSON.stringify(Object.assign({}, protectedHeader, { alg })))}.${encode(JSON.stringify(payload))}`;
    return `${signingInput}.${sign(parameters.digest, Buffer.from(signingInput, "ascii"), input).toString("base64url")}`;
  };
}

function encode(json: string): string {
  return Buffer.from(json, "utf8").toString("base64url");
}
