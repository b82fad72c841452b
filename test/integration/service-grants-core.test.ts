import { configurationSource, createDirectory } from "../../services/authz/oauth/directory.js";
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthorizationServer, type AuthorizationServer, type ClientCall } from "../../services/authz/oauth/authorization-server.js";
import { JWT_BEARER_CLIENT_ASSERTION } from "../../services/authz/oauth/client-assertion.js";
import type { OAuthContext } from "../../services/authz/oauth/context.js";
import { OAuthError } from "../../services/authz/oauth/errors.js";
import { ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE, type TokenExchangeRequest } from "../../services/authz/oauth/grants/token-exchange.js";
import { issueAccessToken } from "../../services/authz/oauth/issue-tokens.js";
import { createKeyRing } from "../../services/authz/oauth/key-ring.js";
import { revokeGrant } from "../../services/authz/oauth/revoke.js";
import { cryptoRandom, hashSecret } from "../../services/authz/oauth/secrets.js";
import type { AccessTokenClaims } from "../../services/authz/oauth/tokens.js";
import { createMemoryStore } from "../../services/authz/store/memory-store.js";
import { ISSUER, testConfig, testSigningKeys } from "../support/authz.js";

/**
 * The service grants in the protocol core, over the memory store and a clock
 * the test moves: client credentials (RFC 6749 §4.4), private_key_jwt
 * (RFC 7523) and token exchange (RFC 8693), with every refusal's RFC code.
 */
const SECRET = "service-secret-0123456789abcdefghijklmnopqrstuvwxyz";
const TE = "urn:ietf:params:oauth:grant-type:token-exchange";

let now = 1_800_000_000_000;
let ctx: OAuthContext;
let server: AuthorizationServer;
let signer: { privateKey: CryptoKey; publicJwk: JWK };
let foreignSigner: { privateKey: CryptoKey };

const secretCall = (clientId: string): ClientCall => ({ credentials: { authorization: undefined, clientId, clientSecret: SECRET }, clientAddress: "10.0.0.1" });
const assertionCall = (assertion: string, clientId = ""): ClientCall => ({
  credentials: { authorization: undefined, clientId, clientSecret: "", clientAssertionType: JWT_BEARER_CLIENT_ASSERTION, clientAssertion: assertion },
  clientAddress: "10.0.0.2",
});

beforeAll(async () => {
  const pair = await generateKeyPair("ES256", { extractable: true });
  signer = { privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid: "svc-1", alg: "ES256" } };
  foreignSigner = { privateKey: (await generateKeyPair("ES256")).privateKey };
  const hash = `sha256:${hashSecret(SECRET)}`;
  const config = await testConfig({
    patch(file) {
      const clients = file.clients as Array<Record<string, unknown>>;
      const service = (id: string, extra: Record<string, unknown>) => ({
        id,
        name: id,
        type: "confidential",
        secretHashes: [hash],
        responseTypes: [],
        scopes: ["read", "write"],
        ...extra,
      });
      clients.push(
        service("inventory", {
          grantTypes: ["client_credentials"],
          defaultScopes: ["read"],
          service: { audiences: ["https://orders.test", "https://billing.test"], defaultAudience: "https://orders.test", accessTokenLifetime: 120, tokenRateLimit: { max: 3, windowSeconds: 60 } },
        }),
        service("reporter", { secretHashes: [], grantTypes: ["client_credentials"], service: { jwks: { keys: [signer.publicJwk] } } }),
        service("web-bff", {
          grantTypes: [TE],
          service: { tokenExchange: { audiences: ["https://orders.test"], scopes: ["read"] } },
        }),
        service("orders", {
          grantTypes: [TE, "client_credentials"],
          scopes: ["read"],
          service: { tokenExchange: { audiences: ["https://billing.test"], scopes: ["read"], subjectAudiences: ["https://orders.test"] } },
        }),
        service("proxy", {
          grantTypes: [TE],
          service: { tokenExchange: { audiences: ["https://orders.test"], scopes: ["read", "write"], impersonate: true } },
        }),
      );
    },
  });
  const keys = await createKeyRing({ jwks: await testSigningKeys(), activeKid: undefined, issuer: ISSUER });
  ctx = { policy: config, directory: createDirectory([configurationSource(config)]), store: createMemoryStore({ clock: () => now }), keys, clock: () => now, random: cryptoRandom, sleep: async () => {} };
  server = createAuthorizationServer(ctx);
});
afterAll(() => ctx.store.close());

/** A user's access token from the code grant: the subject token of an exchange. */
async function userToken(scopes = ["read", "write"]) {
  const grantId = cryptoRandom(16);
  const { accessToken } = await issueAccessToken(ctx, { grantId, clientId: "web", subject: "user-alice", scopes, authTime: Math.floor(now / 1000) - 5 }, scopes);
  return { accessToken, grantId };
}

const exchange = (overrides: Partial<TokenExchangeRequest>): TokenExchangeRequest => ({
  subjectToken: "",
  subjectTokenType: ACCESS_TOKEN_TYPE,
  actorToken: "",
  actorTokenType: "",
  requestedTokenType: "",
  resource: "",
  audience: "https://orders.test",
  scope: "",
  ...overrides,
});

async function refusal(promise: Promise<unknown>): Promise<{ code: string; description: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OAuthError) return { code: error.code, description: error.description };
    throw error;
  }
  throw new Error("expected an OAuthError");
}

function assertion(claims: Record<string, unknown>, options: { key?: CryptoKey; kid?: string; alg?: string } = {}) {
  const seconds = Math.floor(now / 1000);
  return new SignJWT({ iss: "reporter", sub: "reporter", aud: ISSUER, jti: cryptoRandom(16), iat: seconds, exp: seconds + 60, ...claims })
    .setProtectedHeader({ alg: options.alg ?? "ES256", kid: options.kid ?? "svc-1" })
    .sign(options.key ?? signer.privateKey);
}

describe("client credentials (RFC 6749 §4.4)", () => {
  it("RFC 9068 §2.2: sub is the client, aud the default audience, no refresh token, no auth_time; the per-client lifetime applies", async () => {
    const tokens = await server.clientCredentials(secretCall("inventory"), { scope: "", resource: "" });
    expect(tokens.refreshToken).toBe("");
    expect(tokens.expiresIn).toBe(120);
    expect(tokens.scope).toBe("read");
    const claims = decodeJwt(tokens.accessToken);
    expect(claims).toMatchObject({ sub: "inventory", client_id: "inventory", aud: "https://orders.test", scope: "read", iss: ISSUER });
    expect(claims.auth_time).toBeUndefined();
    expect(claims.exp! - claims.iat!).toBe(120);
  });

  it("RFC 8707 §2: resource names the audience when the client may name it; otherwise invalid_target", async () => {
    const tokens = await server.clientCredentials(secretCall("inventory"), { scope: "write", resource: "https://billing.test" });
    expect(decodeJwt(tokens.accessToken).aud).toBe("https://billing.test");
    expect(await refusal(server.clientCredentials(secretCall("inventory"), { scope: "", resource: "https://elsewhere.test" }))).toMatchObject({ code: "invalid_target" });
    expect(await refusal(server.clientCredentials(secretCall("inventory"), { scope: "", resource: "not a uri" }))).toMatchObject({ code: "invalid_target" });
    expect(await refusal(server.clientCredentials(secretCall("inventory"), { scope: "", resource: "https://orders.test#x" }))).toMatchObject({ code: "invalid_target" });
  });

  it("RFC 6749 §3.3: a scope beyond the client's is invalid_scope; a client without the grant is unauthorized_client", async () => {
    expect(await refusal(server.clientCredentials(secretCall("inventory"), { scope: "admin", resource: "" }))).toMatchObject({ code: "invalid_scope" });
    expect(await refusal(server.clientCredentials(secretCall("web-bff"), { scope: "", resource: "" }))).toMatchObject({ code: "unauthorized_client" });
  });

  it("RFC 7662 / RFC 7009: the token introspects active, and revoking it (by jti, in its own grant) makes it inactive", async () => {
    const { accessToken } = await server.clientCredentials(secretCall("orders"), { scope: "read", resource: "" });
    const resourceServer = { credentials: { authorization: undefined, clientId: "resource-server", clientSecret: "resource-server-secret-0123456789abcdefghijklm" }, clientAddress: "10.0.0.3" };
    expect(await server.introspect(resourceServer, accessToken, "")).toMatchObject({ active: true, sub: "orders", clientId: "orders" });
    await server.revoke(secretCall("orders"), accessToken, "");
    expect(await server.introspect(resourceServer, accessToken, "")).toEqual({ active: false });
  });

  it("a per-client rate limit counted in the store: past it, too_many_attempts with Retry-After", async () => {
    // inventory has issued 2 tokens in this window above; its limit is 3.
    await server.clientCredentials(secretCall("inventory"), { scope: "", resource: "" });
    const refused = server.clientCredentials(secretCall("inventory"), { scope: "", resource: "" });
    await expect(refused).rejects.toMatchObject({ code: "too_many_attempts" });
    await expect(refused).rejects.toHaveProperty("retryAfter", expect.any(Number));
  });
});

describe("private_key_jwt (RFC 7523 §2.2, §3)", () => {
  it("RFC 7523 §3: a signed assertion with aud the issuer authenticates the client; its jti is single use", async () => {
    const signed = await assertion({});
    const tokens = await server.clientCredentials(assertionCall(signed), { scope: "read", resource: "" });
    expect(decodeJwt(tokens.accessToken).sub).toBe("reporter");
    expect(await refusal(server.clientCredentials(assertionCall(signed), { scope: "read", resource: "" }))).toEqual({
      code: "invalid_client",
      description: expect.stringContaining("replay"),
    });
  });

  it("RFC 7523 §3: the endpoint URL the gateway reports is an accepted aud; another is not", async () => {
    const signed = await assertion({ aud: `${ISSUER}/oauth2/token` });
    const call = { ...assertionCall(signed), endpointUrl: `${ISSUER}/oauth2/token` };
    await server.clientCredentials(call, { scope: "read", resource: "" });
    const elsewhere = await assertion({ aud: `${ISSUER}/oauth2/token` });
    expect(await refusal(server.clientCredentials(assertionCall(elsewhere), { scope: "read", resource: "" }))).toMatchObject({
      code: "invalid_client",
      description: expect.stringContaining("aud"),
    });
  });

  it.each<[string, () => Promise<string>, string]>([
    ["alg none", async () => `${b64({ alg: "none" })}.${b64({ iss: "reporter", sub: "reporter", aud: ISSUER, exp: Math.floor(now / 1000) + 60, jti: "x" })}.`, "alg"],
    [
      "HMAC keyed with the client's public key",
      async () => {
        const seconds = Math.floor(now / 1000);
        return new SignJWT({ iss: "reporter", sub: "reporter", aud: ISSUER, exp: seconds + 60, jti: cryptoRandom(16) })
          .setProtectedHeader({ alg: "HS256", kid: "svc-1" })
          .sign(new TextEncoder().encode(JSON.stringify(signer.publicJwk)));
      },
      "alg",
    ],
    ["wrong aud", () => assertion({ aud: "https://someone-else.test" }), "aud"],
    ["expired", () => assertion({ iat: Math.floor(now / 1000) - 400, exp: Math.floor(now / 1000) - 100 }), "expired"],
    ["exp far in the future", () => assertion({ exp: Math.floor(now / 1000) + 3_600 }), "exp"],
    ["unknown kid", () => assertion({}, { kid: "svc-9" }), "kid"],
    ["signed by another key", () => assertion({}, { key: foreignSigner.privateKey }), "signature"],
    ["iss and sub another client", () => assertion({ iss: "inventory", sub: "inventory" }), "keys"],
    ["no jti", () => assertion({ jti: undefined }), "jti"],
  ])("RFC 7523 §3: %s is invalid_client, never a server error", async (_name, make, why) => {
    const refused = await refusal(server.clientCredentials(assertionCall(await make()), { scope: "read", resource: "" }));
    expect(refused.code).toBe("invalid_client");
    expect(refused.description).toContain(why);
  });

  it("RFC 6749 §2.3: an assertion and a secret together are invalid_request", async () => {
    const call = assertionCall(await assertion({}));
    call.credentials.clientSecret = SECRET;
    expect(await refusal(server.clientCredentials(call, { scope: "read", resource: "" }))).toMatchObject({ code: "invalid_request" });
  });
});

describe("token exchange (RFC 8693)", () => {
  it("§4.1: web → orders → billing keeps the user's sub, names each audience and nests act; §2.2.1 issued_token_type", async () => {
    const { accessToken } = await userToken();
    const forOrders = await server.exchangeToken(secretCall("web-bff"), exchange({ subjectToken: accessToken }));
    expect(forOrders).toMatchObject({ issuedTokenType: ACCESS_TOKEN_TYPE, refreshToken: "", scope: "read" });
    const first = decodeJwt(forOrders.accessToken) as unknown as AccessTokenClaims;
    expect(first).toMatchObject({ sub: "user-alice", aud: "https://orders.test", client_id: "web-bff", act: { sub: "web-bff" } });

    const forBilling = await server.exchangeToken(secretCall("orders"), exchange({ subjectToken: forOrders.accessToken, audience: "", resource: "https://billing.test" }));
    const second = decodeJwt(forBilling.accessToken) as unknown as AccessTokenClaims;
    expect(second).toMatchObject({ sub: "user-alice", aud: "https://billing.test", client_id: "orders", act: { sub: "orders", act: { sub: "web-bff" } } });
    // It hangs off the user's grant and lives no longer than the token it came from.
    expect(second.gid).toBe(first.gid);
    expect(second.exp).toBeLessThanOrEqual(first.exp);
  });

  it("revoking the user's grant kills the exchanged token, and it cannot be exchanged again", async () => {
    const { accessToken, grantId } = await userToken();
    const forOrders = await server.exchangeToken(secretCall("web-bff"), exchange({ subjectToken: accessToken }));
    await revokeGrant(ctx, grantId);
    expect(await ctx.store.grants.isRevoked(grantId)).toBe(true);
    expect(await refusal(server.exchangeToken(secretCall("orders"), exchange({ subjectToken: forOrders.accessToken, audience: "https://billing.test" })))).toMatchObject({
      code: "invalid_request",
      description: expect.stringContaining("revoked"),
    });
  });

  it("RFC 7009: revoking a client-credentials token revokes its grant, and so the tokens exchanged from it", async () => {
    // orders' own token (aud: the server's audience) is a subject token web-bff accepts.
    const { accessToken } = await server.clientCredentials(secretCall("orders"), { scope: "read", resource: "" });
    const exchanged = await server.exchangeToken(secretCall("web-bff"), exchange({ subjectToken: accessToken }));
    expect(decodeJwt(exchanged.accessToken)).toMatchObject({ sub: "orders", act: { sub: "web-bff" } });
    await server.revoke(secretCall("orders"), accessToken, "");
    const { gid } = decodeJwt(exchanged.accessToken) as unknown as AccessTokenClaims;
    expect(await ctx.store.grants.isRevoked(gid)).toBe(true);
    // Revoking an exchanged token (it has an actor) revokes that token alone, never the user's grant.
    const user = await userToken();
    const forOrders = await server.exchangeToken(secretCall("web-bff"), exchange({ subjectToken: user.accessToken }));
    await server.revoke(secretCall("web-bff"), forOrders.accessToken, "");
    expect(await ctx.store.grants.isRevoked(user.grantId)).toBe(false);
  });

  it("§1.1: a client allowed to impersonate gets a token with no act; §4.1 an actor token names the actor", async () => {
    const { accessToken } = await userToken();
    const impersonated = decodeJwt((await server.exchangeToken(secretCall("proxy"), exchange({ subjectToken: accessToken }))).accessToken);
    expect(impersonated.act).toBeUndefined();
    expect(impersonated.sub).toBe("user-alice");

    const actorToken = (await server.clientCredentials(secretCall("orders"), { scope: "read", resource: "" })).accessToken;
    const { accessToken: forOrders } = await server.exchangeToken(secretCall("web-bff"), exchange({ subjectToken: accessToken }));
    const delegated = await server.exchangeToken(
      secretCall("orders"),
      exchange({ subjectToken: forOrders, audience: "https://billing.test", actorToken, actorTokenType: ACCESS_TOKEN_TYPE }),
    );
    expect(decodeJwt(delegated.accessToken).act).toEqual({ sub: "orders", act: { sub: "web-bff" } });
  });

  it.each<[string, () => Promise<[string, TokenExchangeRequest]>, string, string]>([
    ["an audience outside the client's policy", async () => ["web-bff", exchange({ subjectToken: (await userToken()).accessToken, audience: "https://billing.test" })], "invalid_target", "billing"],
    ["no audience or resource", async () => ["web-bff", exchange({ subjectToken: (await userToken()).accessToken, audience: "" })], "invalid_target", "resource or audience"],
    ["a scope the client may not carry over", async () => ["web-bff", exchange({ subjectToken: (await userToken()).accessToken, scope: "write" })], "invalid_scope", "carry"],
    ["a scope the subject token lacks", async () => ["proxy", exchange({ subjectToken: (await userToken(["read"])).accessToken, scope: "write" })], "invalid_scope", "subject"],
    ["a client without the grant", async () => ["inventory", exchange({ subjectToken: (await userToken()).accessToken })], "unauthorized_client", "exchange"],
    ["a refresh token as subject", async () => ["web-bff", exchange({ subjectToken: `${cryptoRandom(16)}.${cryptoRandom(32)}` })], "invalid_request", "refresh"],
    ["subject_token_type refresh_token", async () => ["web-bff", exchange({ subjectToken: (await userToken()).accessToken, subjectTokenType: REFRESH_TOKEN_TYPE })], "invalid_request", "refresh"],
    [
      "an unsupported requested_token_type",
      async () => ["web-bff", exchange({ subjectToken: (await userToken()).accessToken, requestedTokenType: "urn:ietf:params:oauth:token-type:saml2" })],
      "invalid_request",
      "requested_token_type",
    ],
    [
      "a token of another issuer (another tenant's key ring)",
      async () => {
        const seconds = Math.floor(now / 1000);
        const foreign = await new SignJWT({ iss: "https://other-tenant.test", sub: "user-alice", aud: ISSUER, client_id: "web", scope: "read", jti: "j", iat: seconds, exp: seconds + 60, gid: "g" })
          .setProtectedHeader({ alg: "ES256", kid: "test-1", typ: "at+jwt" })
          .sign(foreignSigner.privateKey);
        return ["web-bff", exchange({ subjectToken: foreign })];
      },
      "invalid_request",
      "not issued by this server",
    ],
    ["a subject token addressed to someone else", async () => ["orders", exchange({ subjectToken: (await userToken()).accessToken, audience: "https://billing.test" })], "invalid_request", "aud"],
    ["an actor token without its type", async () => ["web-bff", exchange({ subjectToken: (await userToken()).accessToken, actorToken: "a.b.c" })], "invalid_request", "actor_token_type"],
  ])("RFC 8693 §2.2.2: %s is refused with the RFC's code", async (_name, make, code, why) => {
    const [clientId, request] = await make();
    const refused = await refusal(server.exchangeToken(secretCall(clientId), request));
    expect(refused.code).toBe(code);
    expect(refused.description).toContain(why);
  });

  it("RFC 8693 §2.2.2: an expired subject token is invalid_request", async () => {
    const { accessToken } = await userToken();
    now += 11 * 60_000;
    expect(await refusal(server.exchangeToken(secretCall("web-bff"), exchange({ subjectToken: accessToken })))).toMatchObject({ code: "invalid_request" });
  });
});

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}
