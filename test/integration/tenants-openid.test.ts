import { decodeJwt } from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { basic, SECRETS, WEB_REDIRECT } from "../support/authz.js";
import { UserAgent } from "../support/gateway-oauth-flow.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { authorizeAt, signInAt, tenantSection } from "../support/tenants.js";

/**
 * Issue 11 × issue 13: each tenant is its own OpenID Provider. Discovery at
 * `{issuer}/.well-known/openid-configuration` (Discovery 1.0 §4) names the
 * tenant's issuer and endpoints; its ID Tokens carry that issuer; its
 * UserInfo answers its own access tokens only.
 */
let stack: TestStack;
const TENANTS = ["acme", "globex"] as const;
type Tenant = (typeof TENANTS)[number];

beforeAll(async () => {
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      file.tenants = TENANTS.map((name) => {
        const section = tenantSection(name) as { scopes: object[]; clients: Array<Record<string, unknown>>; users: Array<Record<string, unknown>> };
        section.scopes.push({ name: "openid", description: "Sign you in" }, { name: "profile", description: "Your name" });
        section.clients[0]!.scopes = ["read", "openid", "profile"];
        section.users[0]!.claims = { name: `Alice of ${name}` };
        return section;
      });
    },
  });
});
afterAll(() => stack?.close());

const issuerOf = (tenant: Tenant) => `${stack.issuer}/${tenant}`;

async function signIn(tenant: Tenant): Promise<{ idToken: string; accessToken: string }> {
  const agent = new UserAgent(stack.gateway.url);
  await signInAt(agent, `/${tenant}`);
  const verifier = oauth.generateRandomCodeVerifier();
  const location = await authorizeAt(agent, `/${tenant}`, {
    response_type: "code",
    client_id: "web",
    redirect_uri: WEB_REDIRECT,
    scope: "openid profile",
    state: "s",
    nonce: `n-${tenant}`,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  });
  const response = await fetch(`${issuerOf(tenant)}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...basic("web", SECRETS.web).headers },
    body: new URLSearchParams({ grant_type: "authorization_code", code: location.searchParams.get("code")!, redirect_uri: WEB_REDIRECT, code_verifier: verifier }).toString(),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { id_token: string; access_token: string };
  return { idToken: body.id_token, accessToken: body.access_token };
}

describe("tenants as OpenID Providers", () => {
  it.each(TENANTS)("Discovery 1.0 §4: %s's document is at its issuer's well-known path, names its issuer and its own endpoints, and equals its RFC 8414 document", async (tenant) => {
    const response = await fetch(`${issuerOf(tenant)}/.well-known/openid-configuration`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as Record<string, unknown>;
    expect(document.issuer).toBe(issuerOf(tenant));
    for (const member of ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint"]) {
      expect(String(document[member]), member).toMatch(new RegExp(`^${issuerOf(tenant)}/`));
    }
    const rfc8414 = await (await fetch(`${stack.issuer}/.well-known/oauth-authorization-server/${tenant}`)).json();
    expect(rfc8414).toEqual(document);
  });

  it("an unknown tenant has no OpenID configuration (404, never another tenant's)", async () => {
    expect((await fetch(`${stack.issuer}/initech/.well-known/openid-configuration`)).status).toBe(404);
  });

  it("OpenID Connect Core §3.1.3.7: an ID Token names its tenant's issuer; UserInfo, found by the tenant's discovery, gives the tenant's user's claims and answers the tenant's own tokens only", async () => {
    const acme = await signIn("acme");
    const globex = await signIn("globex");
    for (const [tenant, tokens] of [["acme", acme], ["globex", globex]] as const) {
      const claims = decodeJwt(tokens.idToken);
      // Core §5.4: on the code flow the profile claims come from UserInfo, not in the ID Token.
      expect(claims).toMatchObject({ iss: issuerOf(tenant), aud: "web", nonce: `n-${tenant}` });
      const as = await oauth.processDiscoveryResponse(new URL(issuerOf(tenant)), await oauth.discoveryRequest(new URL(issuerOf(tenant)), { algorithm: "oidc", [oauth.allowInsecureRequests]: true }));
      const userinfo = await fetch(as.userinfo_endpoint!, { headers: { authorization: `Bearer ${tokens.accessToken}` } });
      expect(userinfo.status).toBe(200);
      expect(await userinfo.json()).toMatchObject({ sub: claims.sub, name: `Alice of ${tenant}` });
    }
    // acme's access token at globex's UserInfo: not a token of globex.
    const crossed = await fetch(`${issuerOf("globex")}/oauth2/userinfo`, { headers: { authorization: `Bearer ${acme.accessToken}` } });
    expect(crossed.status).toBe(401);
    expect(crossed.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });
});
