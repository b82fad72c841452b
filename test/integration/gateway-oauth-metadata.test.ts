import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startTestStack, type TestStack } from "../support/stack.js";

/** RFC 8414 metadata and the JWKS, as the gateway publishes them. */
let stack: TestStack;
let now = 1_800_000_000_000;

beforeAll(async () => {
  stack = await startTestStack({ redisUrl: inject("redisUrl"), gatewayOverrides: { clock: () => now } });
});
afterAll(() => stack.close());

describe("RFC 8414 metadata and JWKS", () => {
  it("RFC 8414 §2: the document names the issuer, every endpoint, and what the server supports", async () => {
    const response = await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    const ASYMMETRIC = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"];
    expect(await response.json()).toEqual({
      issuer: stack.issuer,
      authorization_endpoint: `${stack.issuer}/oauth2/authorize`,
      token_endpoint: `${stack.issuer}/oauth2/token`,
      jwks_uri: `${stack.issuer}/.well-known/jwks.json`,
      scopes_supported: ["read", "write", "admin"],
      // The test configuration has a client that opted into the implicit grant and plain PKCE.
      response_types_supported: ["code", "token"],
      response_modes_supported: ["query", "fragment"],
      grant_types_supported: ["authorization_code", "refresh_token", "implicit"],
      // RFC 7523 §2.2 private_key_jwt, with asymmetric algorithms only (never none or HMAC), at every endpoint.
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
      token_endpoint_auth_signing_alg_values_supported: ASYMMETRIC,
      introspection_endpoint: `${stack.issuer}/oauth2/introspect`,
      introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "private_key_jwt"],
      introspection_endpoint_auth_signing_alg_values_supported: ASYMMETRIC,
      revocation_endpoint: `${stack.issuer}/oauth2/revoke`,
      revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
      revocation_endpoint_auth_signing_alg_values_supported: ASYMMETRIC,
      code_challenge_methods_supported: ["S256", "plain"],
      authorization_response_iss_parameter_supported: true,
    });
  });

  it("RFC 7517 §5: the JWKS holds public keys only, with kid and alg", async () => {
    const response = await fetch(`${stack.issuer}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/jwk-set\+json(;|$)/);
    const { keys } = (await response.json()) as { keys: Array<Record<string, string>> };
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key).toMatchObject({ kty: "EC", crv: "P-256", kid: "test-1", alg: "ES256" });
      expect(key).not.toHaveProperty("d");
    }
  });

  it("the documents take no parameters", async () => {
    const response = await fetch(`${stack.issuer}/.well-known/jwks.json?callback=x`);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe("invalid_request");
  });

  it("both are cached briefly: served while the authz service is away, refused once the cache has expired", async () => {
    expect((await fetch(`${stack.issuer}/.well-known/jwks.json`)).status).toBe(200);
    expect((await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`)).status).toBe(200);
    await stack.authz.close();
    now += 10_000;
    expect((await fetch(`${stack.issuer}/.well-known/jwks.json`)).status).toBe(200);
    expect((await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`)).status).toBe(200);
    now += 30_000;
    expect((await fetch(`${stack.issuer}/.well-known/jwks.json`)).status).toBe(503);
    expect((await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`)).status).toBe(503);
  });
});
