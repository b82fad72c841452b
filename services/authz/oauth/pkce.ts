import { hash } from "node:crypto";
import { OAuthError } from "./errors.js";
import { constantTimeEqual } from "./secrets.js";

/** The transformations of RFC 7636 §4.2. `plain` is offered only to clients that opt in (RFC 9700 §2.1.1). */
export type CodeChallengeMethod = "S256" | "plain";

/** RFC 7636 §4.1: code-verifier = 43*128unreserved; the plain challenge has the same syntax (§4.2). */
const UNRESERVED_43_128 = /^[A-Za-z0-9\-._~]{43,128}$/;
/** BASE64URL(SHA256(...)) without padding is exactly 43 characters of the URL-safe alphabet (RFC 7636 §4.2, Appendix A). */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export interface PkcePolicy {
  /** The client must send a code_challenge (RFC 7636 §4.4.1; RFC 9700 §2.1.1). */
  required: boolean;
  /** The client may use the `plain` method. */
  allowPlain: boolean;
}

export interface CodeChallenge {
  codeChallenge: string;
  codeChallengeMethod: CodeChallengeMethod;
}

/**
 * Validates the PKCE parameters of an authorization request (RFC 7636 §4.3,
 * §4.4.1) against the client's policy. Returns the challenge to park, or
 * `undefined` when the client sent none and none is required.
 */
export function parseCodeChallenge(
  codeChallenge: string,
  codeChallengeMethod: string,
  policy: PkcePolicy,
): CodeChallenge | undefined {
  if (codeChallenge === "") {
    if (codeChallengeMethod !== "") {
      throw new OAuthError("invalid_request", "code_challenge_method without code_challenge");
    }
    // RFC 7636 §4.4.1: a server that requires PKCE answers invalid_request.
    if (policy.required) throw new OAuthError("invalid_request", "code_challenge required");
    return undefined;
  }
  // RFC 7636 §4.3: "defaults to plain if not present in the request".
  const method = codeChallengeMethod === "" ? "plain" : codeChallengeMethod;
  if (method === "S256") {
    if (!S256_CHALLENGE.test(codeChallenge)) {
      throw new OAuthError("invalid_request", "code_challenge is not a BASE64URL-encoded SHA-256 digest");
    }
    return { codeChallenge, codeChallengeMethod: "S256" };
  }
  if (method === "plain") {
    // RFC 9700 §2.1.1: plain leaks the verifier with the request; only by opt-in.
    if (!policy.allowPlain) throw new OAuthError("invalid_request", "code_challenge_method plain is not allowed for this client; use S256");
    if (!UNRESERVED_43_128.test(codeChallenge)) {
      throw new OAuthError("invalid_request", "code_challenge must be 43 to 128 unreserved characters");
    }
    return { codeChallenge, codeChallengeMethod: "plain" };
  }
  // RFC 7636 §4.4.1: an unsupported transformation is invalid_request.
  throw new OAuthError("invalid_request", "code_challenge_method must be S256");
}

/**
 * BASE64URL(SHA256(ASCII(code_verifier))), RFC 7636 §4.2. A verifier is
 * unreserved characters (checked first, verifyCodeVerifier), whose ASCII and
 * UTF-8 octets are the same; anything else is taken as its latin1 octets.
 */
export function computeS256Challenge(codeVerifier: string): string {
  return hash("sha256", UNRESERVED_43_128.test(codeVerifier) ? codeVerifier : Buffer.from(codeVerifier, "latin1"), "base64url");
}

/**
 * Checks a token request's code_verifier against the challenge bound to the
 * code (RFC 7636 §4.6). Every failure is invalid_grant (RFC 7636 §4.6), and the
 * comparison is constant-time.
 */
export function verifyCodeVerifier(codeVerifier: string, challenge: CodeChallenge | undefined): void {
  if (challenge === undefined) {
    // RFC 9700 §2.1.1: a code_verifier for a code issued without a challenge is
    // a PKCE downgrade attempt and MUST be rejected.
    if (codeVerifier !== "") throw new OAuthError("invalid_grant", "code_verifier sent for a code issued without code_challenge");
    return;
  }
  if (codeVerifier === "") throw new OAuthError("invalid_grant", "code_verifier required");
  if (!UNRESERVED_43_128.test(codeVerifier)) {
    throw new OAuthError("invalid_grant", "code_verifier must be 43 to 128 unreserved characters");
  }
  const derived =
    challenge.codeChallengeMethod === "S256" ? computeS256Challenge(codeVerifier) : codeVerifier;
  if (!constantTimeEqual(derived, challenge.codeChallenge)) {
    throw new OAuthError("invalid_grant", "code_verifier does not match code_challenge");
  }
}
