import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SECRETS, WEB_REDIRECT } from "../support/authz.js";
import { UserAgent } from "../support/gateway-oauth-flow.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { authorizeAt, signInAt, tenantSection } from "../support/tenants.js";

/**
 * Seed 003 (The Identity Hub): `GET /{tenant}/oauth2/v1/auth/` and
 * `POST /{tenant}/oauth2/v1/token/`, chosen through gateway.paths; the
 * standards client finds them through the tenant's metadata.
 */
let stack: TestStack;
const insecure = { [oauth.allowInsecureRequests]: true } as const;
const PATHS = { authorize: "/oauth2/v1/auth/", token: "/oauth2/v1/token/" };

beforeAll(async () => {
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      file.tenants = [tenantSection("identity-hub")];
      if (file.gateway !== undefined) (file.gateway as Record<string, unknown>).paths = PATHS;
    },
  });
});
afterAll(() => stack?.close());

describe("the seed's path layout (seed 003, issue 11)", () => {
  it("GET /{tenant}/oauth2/v1/auth/ and POST /{tenant}/oauth2/v1/token/ serve the code flow; metadata names them", async () => {
    const issuer = new URL(`${stack.issuer}/identity-hub`);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
    expect(as.authorization_endpoint).toBe(`${issuer.href}/oauth2/v1/auth/`);
    expect(as.token_endpoint).toBe(`${issuer.href}/oauth2/v1/token/`);
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "/identity-hub");
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const location = await authorizeAt(
      agent,
      "/identity-hub",
      { response_type: "code", client_id: "web", redirect_uri: WEB_REDIRECT, scope: "read", state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" },
      { authorize: PATHS.authorize, consent: "/oauth2/consent" },
    );
    const client: oauth.Client = { client_id: "web" };
    const callback = oauth.validateAuthResponse(as, client, location, state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(SECRETS.web), callback, WEB_REDIRECT, verifier, insecure),
    );
    expect(tokens.access_token).toEqual(expect.any(String));
    // The default tenant keeps the configured paths at the root; the old spelling is no endpoint.
    expect((await fetch(`${stack.issuer}/identity-hub/oauth2/token`, { method: "POST" })).status).toBe(404);
    expect((await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`).then((r) => r.json())) as Record<string, unknown>).toMatchObject({
      token_endpoint: `${stack.issuer}/oauth2/v1/token/`,
    });
  });
});
