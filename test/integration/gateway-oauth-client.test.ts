import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SECRETS, SPA_REDIRECT, WEB_REDIRECT } from "../support/authz.js";
import { authorizeThroughGateway, signIn, UserAgent } from "../support/gateway-oauth-flow.js";
import { startTestStack, type TestStack } from "../support/stack.js";

/**
 * A standards client library (oauth4webapi) against the gateway: it checks
 * every response it receives (discovery, the authorization response with
 * iss, token, refresh, introspection, revocation), so these tests fail on
 * anything that is not exactly what the RFCs ask for.
 */
let stack: TestStack;
let as: oauth.AuthorizationServer;
/** The test issuer is http://127.0.0.1:<port>: oauth4webapi must be told that plain http is intended. */
const insecure = { [oauth.allowInsecureRequests]: true } as const;

beforeAll(async () => {
  stack = await startTestStack({ redisUrl: inject("redisUrl") });
  const issuer = new URL(stack.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
});
afterAll(() => stack.close());

async function codeFlow(clientId: string, redirectUri: string, scope: string) {
  const agent = new UserAgent(stack.gateway.url);
  await signIn(agent);
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const { location } = await authorizeThroughGateway(agent, {
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
  });
  return { location, state, codeVerifier, agent };
}

/** A code flow for the web client, then one refresh: the first token response and the rotated one. */
async function tokensThenRefresh(auth: oauth.ClientAuth) {
  const client: oauth.Client = { client_id: "web" };
  const { location, state, codeVerifier } = await codeFlow("web", WEB_REDIRECT, "read");
  const callback = oauth.validateAuthResponse(as, client, location, state);
  const first = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, callback, WEB_REDIRECT, codeVerifier, insecure),
  );
  const refreshed = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, first.refresh_token!, insecure));
  return { client, first, refreshed };
}

/** RFC 7662 §2.1: introspection as a resource server, which authenticates. */
async function introspect(token: string) {
  const resourceServer: oauth.Client = { client_id: "resource-server" };
  return oauth.processIntrospectionResponse(
    as,
    resourceServer,
    await oauth.introspectionRequest(as, resourceServer, oauth.ClientSecretBasic(SECRETS.resourceServer), token, insecure),
  );
}

describe("oauth4webapi against the gateway", () => {
  it("RFC 8414: discovery yields a document the library accepts, with every endpoint under the issuer", () => {
    expect(as.issuer).toBe(stack.issuer);
    expect(as.authorization_endpoint).toBe(`${stack.issuer}/oauth2/authorize`);
    expect(as.token_endpoint).toBe(`${stack.issuer}/oauth2/token`);
    expect(as.introspection_endpoint).toBe(`${stack.issuer}/oauth2/introspect`);
    expect(as.revocation_endpoint).toBe(`${stack.issuer}/oauth2/revoke`);
    expect(as.jwks_uri).toBe(`${stack.issuer}/.well-known/jwks.json`);
    expect(as.code_challenge_methods_supported).toContain("S256");
    expect(as.authorization_response_iss_parameter_supported).toBe(true);
  });

  it("RFC 6749 §4.1 + RFC 7636: a confidential client's code flow; iss (RFC 9207), tokens and the RFC 9068 access token all validate", async () => {
    const client: oauth.Client = { client_id: "web" };
    const { location, state, codeVerifier } = await codeFlow("web", WEB_REDIRECT, "read write");
    const callback = oauth.validateAuthResponse(as, client, location, state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(SECRETS.web), callback, WEB_REDIRECT, codeVerifier, insecure);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("pragma")).toBe("no-cache");
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
    expect(tokens.token_type).toBe("bearer"); // oauth4webapi lower-cases it
    expect(tokens.scope).toBe("read write");
    expect(tokens.expires_in).toBeGreaterThan(0);
    expect(tokens.refresh_token).toEqual(expect.any(String));

    // The access token verifies against the JWKS the gateway publishes (RFC 9068 §4).
    const claims = await oauth.validateJwtAccessToken(
      as,
      new Request(`${stack.issuer}/resource`, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
      stack.issuer,
      insecure,
    );
    expect(claims).toMatchObject({ sub: "user-alice", client_id: "web", scope: "read write", iss: stack.issuer });
  });

  it("RFC 6749 §6: refresh with client_secret_post rotates the refresh token; RFC 7662 and RFC 7009 answer as the library expects", async () => {
    const { client, first, refreshed } = await tokensThenRefresh(oauth.ClientSecretPost(SECRETS.web));
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(first.refresh_token);

    // Introspection as a resource server (RFC 7662 §2.1: the caller authenticates).
    const live = await introspect(refreshed.access_token);
    expect(live).toMatchObject({ active: true, sub: "user-alice", client_id: "web", scope: "read", token_type: "Bearer", iss: stack.issuer });
    expect(live.exp).toBeGreaterThan(Date.now() / 1000);
    expect(await introspect(refreshed.refresh_token!)).toMatchObject({ active: true, token_type: "refresh_token" });

    // RFC 7009: revoking the refresh token ends the grant, its access tokens too.
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, oauth.ClientSecretBasic(SECRETS.web), refreshed.refresh_token!, insecure));
    expect(await introspect(refreshed.access_token)).toEqual({ active: false });
    expect(await introspect(refreshed.refresh_token!)).toEqual({ active: false });
    const afterRevocation = oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretBasic(SECRETS.web), refreshed.refresh_token!, insecure),
    );
    await expect(afterRevocation).rejects.toMatchObject({ error: "invalid_grant", status: 400 });
  });

  it("RFC 7009 §2.1 at /oauth2/revoke: revoking a rotated-out refresh token revokes its family; the current refresh token and the access tokens are dead", async () => {
    const { client, first, refreshed } = await tokensThenRefresh(oauth.ClientSecretBasic(SECRETS.web));
    expect(await introspect(refreshed.refresh_token!)).toMatchObject({ active: true });

    // The old, rotated-out token is the one revoked.
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, oauth.ClientSecretBasic(SECRETS.web), first.refresh_token!, insecure));
    for (const token of [refreshed.refresh_token!, refreshed.access_token, first.access_token]) expect(await introspect(token)).toEqual({ active: false });
    const afterRevocation = oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretBasic(SECRETS.web), refreshed.refresh_token!, insecure),
    );
    await expect(afterRevocation).rejects.toMatchObject({ error: "invalid_grant", status: 400 });
  });

  it("RFC 7009 §2.2: revoking an unknown token is still a 200 the library accepts", async () => {
    const client: oauth.Client = { client_id: "web" };
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, oauth.ClientSecretBasic(SECRETS.web), "not-a-token-we-issued", insecure));
  });

  it("RFC 6749 §2.1: a public client authenticates with client_id alone ('none') and PKCE binds its code", async () => {
    const client: oauth.Client = { client_id: "spa", token_endpoint_auth_method: "none" };
    const { location, state, codeVerifier } = await codeFlow("spa", SPA_REDIRECT, "read");
    const callback = oauth.validateAuthResponse(as, client, location, state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), callback, SPA_REDIRECT, codeVerifier, insecure),
    );
    expect(tokens.access_token).toEqual(expect.any(String));
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, oauth.None(), tokens.refresh_token!, insecure));
  });

  it("RFC 7636 §4.6: the wrong code_verifier is invalid_grant, and the library surfaces it", async () => {
    const client: oauth.Client = { client_id: "web" };
    const { location, state } = await codeFlow("web", WEB_REDIRECT, "read");
    const callback = oauth.validateAuthResponse(as, client, location, state);
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic(SECRETS.web),
      callback,
      WEB_REDIRECT,
      oauth.generateRandomCodeVerifier(),
      insecure,
    );
    await expect(oauth.processAuthorizationCodeResponse(as, client, response)).rejects.toMatchObject({ error: "invalid_grant", status: 400 });
  });

  it("RFC 9207: an authorization response is refused by the library when its iss is another issuer's", async () => {
    const client: oauth.Client = { client_id: "web" };
    const { location, state } = await codeFlow("web", WEB_REDIRECT, "read");
    expect(location.searchParams.get("iss")).toBe(stack.issuer);
    location.searchParams.set("iss", "https://attacker.example");
    expect(() => oauth.validateAuthResponse(as, client, location, state)).toThrow(/iss/);
  });

  it("seed 002: the implicit grant, for a client configured for it only: token in the fragment, never a refresh token", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    // legacy is first-party and allows response_type=token.
    const { location } = await authorizeThroughGateway(agent, { response_type: "token", client_id: "legacy", scope: "read", state: "imp-1" });
    expect(location.origin + location.pathname).toBe("https://legacy.test/cb");
    expect(location.search).toBe("");
    const fragment = new URLSearchParams(location.hash.slice(1));
    expect(fragment.get("token_type")).toBe("Bearer");
    expect(fragment.get("access_token")).toEqual(expect.any(String));
    expect(fragment.get("state")).toBe("imp-1");
    expect(fragment.get("iss")).toBe(stack.issuer);
    expect(fragment.has("refresh_token")).toBe(false);

    // A client that did not opt in gets unauthorized_client, in the fragment, at its verified redirect URI.
    const refused = await agent.get(
      `/oauth2/authorize?${new URLSearchParams({ response_type: "token", client_id: "web", redirect_uri: WEB_REDIRECT, state: "imp-2" })}`,
    );
    expect(refused.status).toBe(302);
    const refusedAt = new URL(refused.headers.get("location")!);
    expect(refusedAt.origin + refusedAt.pathname).toBe(WEB_REDIRECT);
    expect(Object.fromEntries(new URLSearchParams(refusedAt.hash.slice(1)))).toMatchObject({ error: "unauthorized_client", state: "imp-2" });
  });
});
