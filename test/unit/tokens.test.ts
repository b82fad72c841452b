import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildAccessTokenClaims,
  formatRefreshToken,
  looksLikeJwt,
  parseRefreshToken,
  type AccessTokenInput,
} from "../../services/authz/oauth/tokens.js";

const INPUT: AccessTokenInput = {
  issuer: "https://as.example",
  audience: "https://api.example",
  subject: "user-42",
  clientId: "web",
  scopes: ["read", "write"],
  jti: "jti-0123456789",
  grantId: "grant-0123456789ab",
  authTime: 1_699_999_000,
  now: 1_700_000_000_999,
  ttlSeconds: 600,
};

describe("buildAccessTokenClaims", () => {
  it("RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti, plus scope (§2.2.3), auth_time (§2.2.1) and the grant id, nothing else", () => {
    expect(buildAccessTokenClaims(INPUT)).toStrictEqual({
      iss: "https://as.example",
      sub: "user-42",
      aud: "https://api.example",
      client_id: "web",
      scope: "read write",
      jti: "jti-0123456789",
      iat: 1_700_000_000,
      exp: 1_700_000_600,
      auth_time: 1_699_999_000,
      gid: "grant-0123456789ab",
    });
  });

  it.each<[string, number, number]>([
    ["a whole second", 1_700_000_000_000, 1_700_000_000],
    ["one millisecond past a second (floored, never rounded up)", 1_700_000_000_001, 1_700_000_000],
    ["the last millisecond of a second", 1_700_000_000_999, 1_700_000_000],
  ])("RFC 7519 §2: iat is a NumericDate in whole seconds: %s", (_name, now, iat) => {
    const claims = buildAccessTokenClaims({ ...INPUT, now });
    expect(claims.iat).toBe(iat);
    expect(claims.exp).toBe(iat + INPUT.ttlSeconds);
  });

  it.each<[string, readonly string[], string]>([
    ["one scope", ["read"], "read"],
    ["no scope", [], ""],
    ["scopes in grant order", ["write", "read", "profile:read"], "write read profile:read"],
  ])("RFC 9068 §2.2.3: scope is the space-delimited list (%s)", (_name, scopes, scope) => {
    expect(buildAccessTokenClaims({ ...INPUT, scopes }).scope).toBe(scope);
  });

  it("RFC 9068 §2.2: exp is iat plus the access token lifetime", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.integer({ min: 1, max: 86_400 }), (now, ttlSeconds) => {
        const claims = buildAccessTokenClaims({ ...INPUT, now, ttlSeconds });
        expect(claims.iat).toBe(Math.floor(now / 1000));
        expect(claims.exp - claims.iat).toBe(ttlSeconds);
        expect(claims.iat * 1000).toBeLessThanOrEqual(now);
      }),
    );
  });
});

describe("looksLikeJwt", () => {
  it.each<[string, string, boolean]>([
    ["RFC 7515 §7.1: three base64url parts", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", true],
    ["RFC 7515 §7.1: minimal three parts", "a.b.c", true],
    ["RFC 7515 §7.1: '-' and '_' are base64url", "a-_.b-_.c-_", true],
    ["an opaque token", "SplxlOBeZQQYbYS6WxSbIA", false],
    ["a refresh token (two parts)", "grant-0123456789ab.secret", false],
    ["RFC 7516 §7.1: a JWE (five parts)", "a.b.c.d.e", false],
    ["four parts", "a.b.c.d", false],
    ["an empty payload", "a..c", false],
    ["an empty signature (unsecured JWT)", "a.b.", false],
    ["base64 padding", "a.b.c=", false],
    ["standard base64 '+'", "a+.b.c", false],
    ["standard base64 '/'", "a.b/.c", false],
    ["surrounding whitespace", " a.b.c", false],
    ["a trailing newline", "a.b.c\n", false],
    ["an empty string", "", false],
  ])("%s → %s", (_name, token, expected) => {
    expect(looksLikeJwt(token)).toBe(expected);
  });
});

describe("formatRefreshToken / parseRefreshToken", () => {
  const grantId = "grant-0123456789ab";
  const secret = "s".repeat(43);

  it("a refresh token is <grantId>.<secret> and yields its grant id back", () => {
    const token = formatRefreshToken(grantId, secret);
    expect(token).toBe(`${grantId}.${secret}`);
    expect(parseRefreshToken(token)).toEqual({ grantId });
  });

  it("any grant id of 16–64 and secret of 32–128 base64url characters round-trips", () => {
    const base64url = fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
    fc.assert(
      fc.property(
        fc.string({ unit: base64url, minLength: 16, maxLength: 64 }),
        fc.string({ unit: base64url, minLength: 32, maxLength: 128 }),
        (id, s) => {
          expect(parseRefreshToken(formatRefreshToken(id, s))).toEqual({ grantId: id });
        },
      ),
    );
  });

  it.each<[string, string]>([
    ["an empty token", ""],
    ["no dot", `${grantId}${secret}`],
    ["a grant id of 15 characters", `${"g".repeat(15)}.${secret}`],
    ["a grant id of 65 characters", `${"g".repeat(65)}.${secret}`],
    ["a secret of 31 characters", `${grantId}.${"s".repeat(31)}`],
    ["a secret of 129 characters", `${grantId}.${"s".repeat(129)}`],
    ["an empty grant id", `.${secret}`],
    ["an empty secret", `${grantId}.`],
    ["three parts (a JWT access token)", `${grantId}.${secret}.${secret}`],
    ["standard base64 '+' in the secret", `${grantId}.${secret.slice(1)}+`],
    ["base64 padding in the secret", `${grantId}.${secret}=`],
    ["a '/' in the grant id", `grant/0123456789ab.${secret}`],
    ["a leading space", ` ${grantId}.${secret}`],
    ["a trailing newline", `${grantId}.${secret}\n`],
    ["a Redis hash-tag brace in the grant id", `{grant-01234567}.${secret}`],
  ])("a malformed refresh token is refused: %s", (_name, token) => {
    expect(parseRefreshToken(token)).toBeUndefined();
  });
});
