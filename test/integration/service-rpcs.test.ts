import { Code } from "@connectrpc/connect";
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { basic, failureOf, ISSUER, issueTokens, SECRETS, startTestAuthz, type TestAuthz } from "../support/authz.js";

/**
 * The service grants as RPCs, for services that speak Connect or gRPC rather
 * than HTTP forms: ClientCredentials and ExchangeToken against a real authz
 * service on Redis, with client assertions in the request's fields.
 */
const TE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SVC_SECRET = "svc-client-secret-0123456789abcdefghijklmnopqrstu";

let t: TestAuthz;
let key: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair("ES256", { extractable: true });
  key = pair.privateKey;
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: "svc-jwt-1", alg: "ES256" };
  t = await startTestAuthz({
    redisUrl: inject("redisUrl"),
    patch(file) {
      // Few failures per address, so that the limit is reached in a test.
      file.attempts = { windowSeconds: 60, maxFailuresPerUser: 3, maxFailuresPerAddress: 3, delayPerFailureMs: 0, maxDelayMs: 0 };
      const clients = file.clients as Array<Record<string, unknown>>;
      const web = clients.find((c) => c.id === "web")!;
      web.grantTypes = ["authorization_code", "refresh_token", TE];
      web.service = { tokenExchange: { audiences: ["https://orders.test"], scopes: ["read"] } };
      const service = { type: "confidential", grantTypes: ["client_credentials"], responseTypes: [], scopes: ["read"] };
      clients.push(
        { ...service, id: "svc", name: "svc", secretHashes: [`sha256:${hashSecret(SVC_SECRET)}`] },
        { ...service, id: "svc-jwt", name: "svc-jwt", service: { jwks: { keys: [publicJwk] } } },
      );
    },
  });
});
afterAll(() => t.close());

function assertion(claims: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: "svc-jwt", sub: "svc-jwt", aud: ISSUER, jti: crypto.randomUUID(), iat: now, exp: now + 60, ...claims })
    .setProtectedHeader({ alg: "ES256", kid: "svc-jwt-1" })
    .sign(key);
}

describe("ClientCredentials and ExchangeToken RPCs", () => {
  it("RFC 6749 §4.4: ClientCredentials with the client's secret in Basic metadata", async () => {
    const { token } = await t.authz.clientCredentials({ scope: "read" }, basic("svc", SVC_SECRET));
    expect(token!.refreshToken).toBe("");
    expect(decodeJwt(token!.accessToken)).toMatchObject({ sub: "svc", client_id: "svc", aud: ISSUER, scope: "read" });
  });

  it("RFC 7523 §2.2: ClientCredentials with client_assertion_type and client_assertion in the request's fields", async () => {
    const { token } = await t.authz.clientCredentials({ scope: "read", clientAssertionType: JWT_BEARER, clientAssertion: await assertion() });
    expect(decodeJwt(token!.accessToken).sub).toBe("svc-jwt");
  });

  it("RFC 8693: ExchangeToken returns issued_token_type and a token naming web as the actor", async () => {
    const user = await issueTokens(t, { scope: "read" });
    const { token } = await t.authz.exchangeToken(
      { subjectToken: user.accessToken, subjectTokenType: ACCESS_TOKEN_TYPE, audience: "https://orders.test" },
      basic("web", SECRETS.web),
    );
    expect(token!.issuedTokenType).toBe(ACCESS_TOKEN_TYPE);
    expect(decodeJwt(token!.accessToken)).toMatchObject({ sub: "user-alice", aud: "https://orders.test", act: { sub: "web" } });
  });

  it("RFC 8693 §2.2.2: an unsupported requested_token_type is InvalidArgument with invalid_request in the detail", async () => {
    const user = await issueTokens(t, { scope: "read" });
    const failure = await failureOf(
      t.authz.exchangeToken(
        { subjectToken: user.accessToken, subjectTokenType: ACCESS_TOKEN_TYPE, audience: "https://orders.test", requestedTokenType: "urn:ietf:params:oauth:token-type:saml2" },
        basic("web", SECRETS.web),
      ),
    );
    expect(failure.code).toBe(Code.InvalidArgument);
    expect(failure.oauth?.error).toBe("invalid_request");
  });

  it("failed assertions count toward the client-authentication limit per address: past it, too_many_attempts", async () => {
    const bad = async () => t.authz.clientCredentials({ scope: "read", clientAssertionType: JWT_BEARER, clientAssertion: await assertion({ aud: "https://wrong.test" }) });
    for (let i = 0; i < 3; i++) {
      const failure = await failureOf(bad());
      expect(failure.code).toBe(Code.Unauthenticated);
      expect(failure.oauth?.error).toBe("invalid_client");
    }
    const limited = await failureOf(bad());
    expect(limited.code).toBe(Code.ResourceExhausted);
    expect(limited.oauth?.error).toBe("too_many_attempts");
  });
});
