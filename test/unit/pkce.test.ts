import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OAuthError, type OAuthErrorCode } from "../../services/authz/oauth/errors.js";
import {
  computeS256Challenge,
  parseCodeChallenge,
  verifyCodeVerifier,
  type CodeChallenge,
  type PkcePolicy,
} from "../../services/authz/oauth/pkce.js";

/** RFC 7636 Appendix B: the worked example of the S256 method. */
const RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/** RFC 3986 §2.3 unreserved, the alphabet of a code_verifier (RFC 7636 §4.1). */
const UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

const S256_ONLY: PkcePolicy = { required: true, allowPlain: false };
const OPTIONAL: PkcePolicy = { required: false, allowPlain: false };
const PLAIN_ALLOWED: PkcePolicy = { required: true, allowPlain: true };

/** Computed here, independently of the module under test. */
function s256(verifier: string): string {
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

function oauthError(code: OAuthErrorCode) {
  return expect.objectContaining({ name: "OAuthError", code });
}

describe("computeS256Challenge", () => {
  it("RFC 7636 Appendix B: BASE64URL(SHA256(verifier)) of the RFC's example", () => {
    expect(computeS256Challenge(RFC_VERIFIER)).toBe(RFC_CHALLENGE);
  });
});

describe("parseCodeChallenge", () => {
  it.each<[string, string, string, PkcePolicy, CodeChallenge | undefined]>([
    ["RFC 7636 §4.3: no challenge and PKCE optional: nothing to park", "", "", OPTIONAL, undefined],
    ["RFC 7636 §4.3: an S256 challenge is parked with its method", RFC_CHALLENGE, "S256", S256_ONLY, { codeChallenge: RFC_CHALLENGE, codeChallengeMethod: "S256" }],
    ["RFC 7636 §4.3: an S256 challenge is accepted when PKCE is optional", RFC_CHALLENGE, "S256", OPTIONAL, { codeChallenge: RFC_CHALLENGE, codeChallengeMethod: "S256" }],
    ["RFC 7636 §4.2: plain is accepted when the client opted in", RFC_VERIFIER, "plain", PLAIN_ALLOWED, { codeChallenge: RFC_VERIFIER, codeChallengeMethod: "plain" }],
    ["RFC 7636 §4.3: the method defaults to plain when absent", RFC_VERIFIER, "", PLAIN_ALLOWED, { codeChallenge: RFC_VERIFIER, codeChallengeMethod: "plain" }],
    ["RFC 7636 §4.2: a plain challenge of 43 unreserved characters is the shortest allowed", "a".repeat(43), "plain", PLAIN_ALLOWED, { codeChallenge: "a".repeat(43), codeChallengeMethod: "plain" }],
    ["RFC 7636 §4.2: a plain challenge of 128 unreserved characters is the longest allowed", "~".repeat(128), "plain", PLAIN_ALLOWED, { codeChallenge: "~".repeat(128), codeChallengeMethod: "plain" }],
    ["RFC 7636 §4.2: a plain challenge may use every unreserved character", UNRESERVED.slice(0, 66), "plain", PLAIN_ALLOWED, { codeChallenge: UNRESERVED.slice(0, 66), codeChallengeMethod: "plain" }],
  ])("%s", (_name, codeChallenge, method, policy, expected) => {
    expect(parseCodeChallenge(codeChallenge, method, policy)).toEqual(expected);
  });

  it.each<[string, string, string, PkcePolicy]>([
    ["RFC 7636 §4.4.1: a server that requires PKCE answers a request without challenge with invalid_request", "", "", S256_ONLY],
    ["RFC 7636 §4.3: a code_challenge_method without code_challenge is invalid_request", "", "S256", OPTIONAL],
    ["RFC 7636 §4.3: a plain method without code_challenge is invalid_request", "", "plain", PLAIN_ALLOWED],
    ["RFC 7636 §4.2: an S256 challenge of 42 characters is not a SHA-256 digest", RFC_CHALLENGE.slice(0, 42), "S256", S256_ONLY],
    ["RFC 7636 §4.2: an S256 challenge of 44 characters is not a SHA-256 digest", `${RFC_CHALLENGE}A`, "S256", S256_ONLY],
    ["RFC 7636 §4.2: an S256 challenge with base64 padding is invalid_request", `${RFC_CHALLENGE.slice(0, 42)}=`, "S256", S256_ONLY],
    ["RFC 7636 §4.2: an S256 challenge in the standard base64 alphabet ('+') is invalid_request", `${RFC_CHALLENGE.slice(0, 42)}+`, "S256", S256_ONLY],
    ["RFC 7636 §4.2: an S256 challenge in the standard base64 alphabet ('/') is invalid_request", `${RFC_CHALLENGE.slice(0, 42)}/`, "S256", S256_ONLY],
    ["RFC 7636 §4.2: an S256 challenge with '.' (unreserved but not base64url) is invalid_request", `${RFC_CHALLENGE.slice(0, 42)}.`, "S256", S256_ONLY],
    ["RFC 7636 §4.2: an S256 challenge with '~' (unreserved but not base64url) is invalid_request", `${RFC_CHALLENGE.slice(0, 42)}~`, "S256", S256_ONLY],
    ["RFC 7636 §4.2: a hex SHA-256 digest (64 characters) is not BASE64URL", createHash("sha256").update(RFC_VERIFIER).digest("hex"), "S256", S256_ONLY],
    ["RFC 9700 §2.1.1: plain is refused to a client that did not opt in", RFC_VERIFIER, "plain", S256_ONLY],
    ["RFC 9700 §2.1.1: plain is refused even when PKCE is optional for the client", RFC_VERIFIER, "plain", OPTIONAL],
    ["RFC 7636 §4.3: an absent method means plain, refused to a client that did not opt in", RFC_CHALLENGE, "", S256_ONLY],
    ["RFC 7636 §4.2: a plain challenge of 42 characters is too short", "a".repeat(42), "plain", PLAIN_ALLOWED],
    ["RFC 7636 §4.2: a plain challenge of 129 characters is too long", "a".repeat(129), "plain", PLAIN_ALLOWED],
    ["RFC 7636 §4.2: a plain challenge with a reserved character is invalid_request", `${"a".repeat(42)}+`, "plain", PLAIN_ALLOWED],
    ["RFC 7636 §4.2: a plain challenge with a space is invalid_request", `${"a".repeat(21)} ${"a".repeat(21)}`, "plain", PLAIN_ALLOWED],
    ["RFC 7636 §4.2: a plain challenge with a non-ASCII letter is invalid_request", `${"a".repeat(42)}é`, "plain", PLAIN_ALLOWED],
    ["RFC 7636 §4.4.1: an unknown transformation is invalid_request", RFC_CHALLENGE, "S512", S256_ONLY],
    ["RFC 7636 §4.4.1: the method name is case-sensitive ('s256' is unknown)", RFC_CHALLENGE, "s256", S256_ONLY],
    ["RFC 7636 §4.4.1: the method name is case-sensitive ('PLAIN' is unknown)", RFC_VERIFIER, "PLAIN", PLAIN_ALLOWED],
    ["RFC 7636 §4.4.1: a JOSE algorithm name is not a PKCE method", RFC_CHALLENGE, "RS256", S256_ONLY],
  ])("%s", (_name, codeChallenge, method, policy) => {
    expect(() => parseCodeChallenge(codeChallenge, method, policy)).toThrow(oauthError("invalid_request"));
  });

  it("RFC 7636 §4.3: the errors are OAuthErrors with no redirect URL of their own", () => {
    let caught: unknown;
    try {
      parseCodeChallenge("", "", S256_ONLY);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(OAuthError);
    expect((caught as OAuthError).redirectUrl).toBeUndefined();
  });
});

describe("verifyCodeVerifier", () => {
  const rfcS256: CodeChallenge = { codeChallenge: RFC_CHALLENGE, codeChallengeMethod: "S256" };
  const rfcPlain: CodeChallenge = { codeChallenge: RFC_VERIFIER, codeChallengeMethod: "plain" };
  const shortVerifier = "a".repeat(42);
  const longVerifier = "a".repeat(129);

  it.each<[string, string, CodeChallenge | undefined]>([
    ["RFC 7636 Appendix B: the RFC's verifier matches the RFC's S256 challenge", RFC_VERIFIER, rfcS256],
    ["RFC 7636 §4.6: a plain challenge is matched by the identical verifier", RFC_VERIFIER, rfcPlain],
    ["RFC 7636 §4.6: a code issued without challenge is redeemed without verifier", "", undefined],
    ["RFC 7636 §4.1: a 128-character verifier is accepted", "~".repeat(128), { codeChallenge: s256("~".repeat(128)), codeChallengeMethod: "S256" }],
  ])("%s", (_name, verifier, challenge) => {
    expect(() => verifyCodeVerifier(verifier, challenge)).not.toThrow();
  });

  it.each<[string, string, CodeChallenge | undefined]>([
    ["RFC 9700 §2.1.1: a code_verifier sent for a code issued without challenge is a downgrade: invalid_grant", RFC_VERIFIER, undefined],
    ["RFC 7636 §4.6: a code with a challenge redeemed without verifier is invalid_grant", "", rfcS256],
    ["RFC 7636 §4.6: a plain-challenge code redeemed without verifier is invalid_grant", "", rfcPlain],
    ["RFC 7636 §4.6: a wrong code_verifier is invalid_grant (S256)", `${RFC_VERIFIER.slice(0, 42)}A`, rfcS256],
    ["RFC 7636 §4.6: a wrong code_verifier is invalid_grant (plain)", `${RFC_VERIFIER.slice(0, 42)}A`, rfcPlain],
    ["RFC 7636 §4.6: the challenge itself is not the verifier of an S256 challenge", RFC_CHALLENGE, rfcS256],
    ["RFC 7636 §4.6: an S256 verifier is not compared as plain", RFC_VERIFIER, { codeChallenge: RFC_VERIFIER, codeChallengeMethod: "S256" }],
    ["RFC 7636 §4.6: a plain challenge is compared verbatim, not as an S256 digest", RFC_VERIFIER, { codeChallenge: RFC_CHALLENGE, codeChallengeMethod: "plain" }],
    ["RFC 7636 §4.1: a 42-character verifier is invalid_grant even when its digest matches", shortVerifier, { codeChallenge: s256(shortVerifier), codeChallengeMethod: "S256" }],
    ["RFC 7636 §4.1: a 129-character verifier is invalid_grant even when its digest matches", longVerifier, { codeChallenge: s256(longVerifier), codeChallengeMethod: "S256" }],
    ["RFC 7636 §4.1: a verifier with a reserved character is invalid_grant even when it equals a plain challenge", `${"a".repeat(42)}+`, { codeChallenge: `${"a".repeat(42)}+`, codeChallengeMethod: "plain" }],
    ["RFC 7636 §4.1: a verifier with surrounding space is invalid_grant", ` ${RFC_VERIFIER}`, rfcS256],
    ["RFC 7636 §4.1: a verifier with a non-ASCII character is invalid_grant", `${"a".repeat(42)}é`, { codeChallenge: s256(`${"a".repeat(42)}é`), codeChallengeMethod: "S256" }],
  ])("%s", (_name, verifier, challenge) => {
    expect(() => verifyCodeVerifier(verifier, challenge)).toThrow(oauthError("invalid_grant"));
  });

  const verifierArb = fc.string({ unit: fc.constantFrom(...UNRESERVED), minLength: 43, maxLength: 128 });

  it("RFC 7636 §4.6: every valid verifier matches its own S256 challenge, which parseCodeChallenge accepts", () => {
    fc.assert(
      fc.property(verifierArb, (verifier) => {
        const parked = parseCodeChallenge(s256(verifier), "S256", S256_ONLY);
        expect(parked).toEqual({ codeChallenge: s256(verifier), codeChallengeMethod: "S256" });
        verifyCodeVerifier(verifier, parked);
      }),
    );
  });

  it("RFC 7636 §4.6: any other valid verifier is invalid_grant", () => {
    fc.assert(
      fc.property(
        verifierArb,
        verifierArb,
        (verifier, other) => {
          fc.pre(verifier !== other);
          expect(() => verifyCodeVerifier(other, { codeChallenge: s256(verifier), codeChallengeMethod: "S256" })).toThrow(
            oauthError("invalid_grant"),
          );
        },
      ),
    );
  });

  it("RFC 7636 §4.6: a verifier differing in one character is invalid_grant", () => {
    fc.assert(
      fc.property(verifierArb, fc.nat(), fc.constantFrom(...UNRESERVED), (verifier, at, replacement) => {
        const i = at % verifier.length;
        fc.pre(verifier[i] !== replacement);
        const other = verifier.slice(0, i) + replacement + verifier.slice(i + 1);
        expect(() => verifyCodeVerifier(other, { codeChallenge: s256(verifier), codeChallengeMethod: "S256" })).toThrow(
          oauthError("invalid_grant"),
        );
      }),
    );
  });
});
