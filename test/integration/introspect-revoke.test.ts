import { Code } from "@connectrpc/connect";
import { SignJWT, decodeJwt, generateKeyPair, importJWK, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ISSUER, SECRETS, basic, failureOf, issueTokens, startTestAuthz, testSigningKeys, type TestAuthz } from "../support/authz.js";

let t: TestAuthz;
let now = Date.now();
beforeAll(async () => {
  t = await startTestAuthz({ redisUrl: inject("redisUrl"), overrides: { clock: () => now } });
});
afterAll(() => t.close());

const web = () => basic("web", SECRETS.web);
const grace = () => basic("grace", SECRETS.grace);
const asResourceServer = () => basic("resource-server", SECRETS.resourceServer);

describe("Introspect: RFC 7662", () => {
  it("an active access token carries the RFC 7662 §2.2 fields", async () => {
    const tokens = await issueTokens(t);
    const claims = decodeJwt(tokens.accessToken);
    const result = await t.authz.introspect({ token: tokens.accessToken, tokenTypeHint: "access_token" }, asResourceServer());
    expect(result).toMatchObject({
      active: true,
      scope: "read write",
      clientId: "web",
      username: "user-alice",
      sub: "user-alice",
      tokenType: "Bearer",
      iss: ISSUER,
      aud: [ISSUER],
      jti: claims.jti,
      exp: BigInt(claims.exp!),
      iat: BigInt(claims.iat!),
      grantId: claims.gid,
    });
  });

  it("an active refresh token is reported as such", async () => {
    const tokens = await issueTokens(t);
    const result = await t.authz.introspect({ token: tokens.refreshToken }, asResourceServer());
    expect(result).toMatchObject({ active: true, tokenType: "refresh_token", clientId: "web", sub: "user-alice", scope: "read write" });
  });

  it("the hint does not limit the search (RFC 7662 §2.1)", async () => {
    const tokens = await issueTokens(t);
    expect((await t.authz.introspect({ token: tokens.accessToken, tokenTypeHint: "refresh_token" }, asResourceServer())).active).toBe(true);
  });

  it("a client may introspect its own tokens; another client's token is inactive to it (RFC 7662 §4)", async () => {
    const tokens = await issueTokens(t);
    expect((await t.authz.introspect({ token: tokens.accessToken }, web())).active).toBe(true);
    expect(await t.authz.introspect({ token: tokens.accessToken }, grace())).toMatchObject({ active: false, clientId: "", sub: "" });
  });

  it.each([
    ["malformed", () => "garbage"],
    ["a JWT with a broken signature", async () => `${(await issueTokens(t)).accessToken.slice(0, -4)}AAAA`],
    [
      "a JWT signed by a foreign key with our kid",
      async () => {
        const { privateKey } = await generateKeyPair("ES256");
        const claims = decodeJwt((await issueTokens(t)).accessToken);
        return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "test-1", typ: "at+jwt" }).sign(privateKey);
      },
    ],
    [
      "an unsigned JWT (alg none)",
      async () => {
        const claims = decodeJwt((await issueTokens(t)).accessToken);
        const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
        return `${encode({ alg: "none", typ: "at+jwt" })}.${encode(claims)}.`;
      },
    ],
    [
      "a JWT signed by our key but of the wrong type (typ JWT, e.g. an ID token; RFC 9068 §4)",
      async () => {
        const [jwk] = (JSON.parse(await testSigningKeys()) as { keys: JWK[] }).keys;
        const claims = decodeJwt((await issueTokens(t)).accessToken);
        return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "test-1", typ: "JWT" }).sign(await importJWK(jwk!, "ES256"));
      },
    ],
    [
      "a JWT signed by our key with another issuer",
      async () => {
        const [jwk] = (JSON.parse(await testSigningKeys()) as { keys: JWK[] }).keys;
        const claims = { ...decodeJwt((await issueTokens(t)).accessToken), iss: "https://elsewhere.test" };
        return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "test-1", typ: "at+jwt" }).sign(await importJWK(jwk!, "ES256"));
      },
    ],
  ])("%s is inactive", async (_name, makeToken) => {
    const result = await t.authz.introspect({ token: await makeToken() }, asResourceServer());
    expect(result.active).toBe(false);
  });

  it("an expired access token is inactive (RFC 7519 §4.1.4)", async () => {
    const tokens = await issueTokens(t);
    const saved = now;
    now += 601_000;
    try {
      expect((await t.authz.introspect({ token: tokens.accessToken }, asResourceServer())).active).toBe(false);
    } finally {
      now = saved;
    }
  });

  it("the caller must authenticate as a confidential client", async () => {
    const tokens = await issueTokens(t);
    expect((await failureOf(t.authz.introspect({ token: tokens.accessToken }))).code).toBe(Code.Unauthenticated);
    expect((await failureOf(t.authz.introspect({ token: tokens.accessToken }, basic("web", "wrong")))).oauth?.error).toBe("invalid_client");
    expect((await failureOf(t.authz.introspect({ token: tokens.accessToken, clientId: "spa" }))).oauth?.error).toBe("invalid_client");
  });

  it("a missing token is invalid_request", async () => {
    expect((await failureOf(t.authz.introspect({}, asResourceServer()))).oauth?.error).toBe("invalid_request");
  });
});

describe("Revoke: RFC 7009", () => {
  it("revoking a refresh token revokes its family and the access tokens issued from it (RFC 7009 §2.1)", async () => {
    const first = await issueTokens(t);
    const { token: second } = await t.authz.refresh({ refreshToken: first.refreshToken }, web());
    await t.authz.revoke({ token: second!.refreshToken, tokenTypeHint: "refresh_token" }, web());
    for (const token of [first.accessToken, second!.accessToken, second!.refreshToken]) {
      expect((await t.authz.introspect({ token }, asResourceServer())).active).toBe(false);
    }
    expect((await failureOf(t.authz.refresh({ refreshToken: second!.refreshToken }, web()))).oauth?.error).toBe("invalid_grant");
  });

  it("RFC 7009 §2.1, RFC 9700 §4.14.2: revoking a rotated-out refresh token revokes its whole family, the current refresh token and the access tokens included", async () => {
    const first = await issueTokens(t);
    const { token: second } = await t.authz.refresh({ refreshToken: first.refreshToken }, web());
    const { token: third } = await t.authz.refresh({ refreshToken: second!.refreshToken }, web());
    await t.authz.revoke({ token: first.refreshToken, tokenTypeHint: "refresh_token" }, web());
    for (const token of [third!.refreshToken, third!.accessToken, second!.accessToken, first.accessToken]) {
      expect((await t.authz.introspect({ token }, asResourceServer())).active).toBe(false);
    }
    expect((await failureOf(t.authz.refresh({ refreshToken: third!.refreshToken }, web()))).oauth?.error).toBe("invalid_grant");
  });

  it("a rotated-out refresh token of another client is refused and its family stays active (RFC 7009 §2.1)", async () => {
    const first = await issueTokens(t);
    const { token: second } = await t.authz.refresh({ refreshToken: first.refreshToken }, web());
    expect((await failureOf(t.authz.revoke({ token: first.refreshToken }, grace()))).oauth?.error).toBe("unauthorized_client");
    expect((await t.authz.introspect({ token: second!.refreshToken }, asResourceServer())).active).toBe(true);
  });

  it("a forged refresh token naming a live grant revokes nothing", async () => {
    const tokens = await issueTokens(t);
    const forged = `${tokens.refreshToken.slice(0, -4)}${tokens.refreshToken.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    await t.authz.revoke({ token: forged }, web());
    expect((await t.authz.introspect({ token: tokens.refreshToken }, asResourceServer())).active).toBe(true);
  });

  it("revoking an access token revokes that token only", async () => {
    const tokens = await issueTokens(t);
    await t.authz.revoke({ token: tokens.accessToken }, web());
    expect((await t.authz.introspect({ token: tokens.accessToken }, asResourceServer())).active).toBe(false);
    expect((await t.authz.introspect({ token: tokens.refreshToken }, asResourceServer())).active).toBe(true);
  });

  it("an invalid or unknown token is not an error (RFC 7009 §2.2)", async () => {
    await t.authz.revoke({ token: "garbage" }, web());
    await t.authz.revoke({ token: `${"A".repeat(22)}.${"B".repeat(43)}` }, web());
  });

  it("a token of another client is refused and stays active (RFC 7009 §2.1)", async () => {
    const tokens = await issueTokens(t);
    const failure = await failureOf(t.authz.revoke({ token: tokens.refreshToken }, grace()));
    expect(failure.oauth?.error).toBe("unauthorized_client");
    expect((await t.authz.introspect({ token: tokens.refreshToken }, asResourceServer())).active).toBe(true);
  });

  it("the caller must authenticate", async () => {
    const tokens = await issueTokens(t);
    expect((await failureOf(t.authz.revoke({ token: tokens.refreshToken }, basic("web", "wrong")))).oauth?.error).toBe("invalid_client");
  });

  it("a missing token is invalid_request", async () => {
    expect((await failureOf(t.authz.revoke({}, web()))).oauth?.error).toBe("invalid_request");
  });
});

describe("GetJwks and GetMetadata", () => {
  it("publishes only public keys, each with kid and alg (RFC 7517)", async () => {
    const jwks = JSON.parse((await t.authz.getJwks({})).jwksJson) as { keys: Array<Record<string, string>> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid: "test-1", alg: "ES256", kty: "EC", crv: "P-256", use: "sig" });
    expect(jwks.keys[0]).not.toHaveProperty("d");
  });

  it("states the server's RFC 8414 facts", async () => {
    const metadata = await t.authz.getMetadata({});
    expect(metadata.issuer).toBe(ISSUER);
    expect(metadata.scopesSupported).toEqual(["read", "write", "admin"]);
    expect(metadata.codeChallengeMethodsSupported).toEqual(["S256", "plain"]);
    expect(metadata.responseTypesSupported).toEqual(["code", "token"]);
  });
});
