import { Code } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { TENANT_HEADER } from "../../contract/metadata.js";
import { basic, failureOf, SECRETS, WEB_REDIRECT } from "../support/authz.js";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { UserAgent } from "../support/gateway-oauth-flow.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { authorizeAt, signInAt, tenantSection } from "../support/tenants.js";

/**
 * Issue 11: two tenants, acme and globex, beside the default tenant, each
 * with a client "web" (same id, same secret) and a user "alice" (same name,
 * same password). Nothing of one tenant is accepted by another: codes,
 * refresh tokens, access tokens, sessions and CSRF tokens, at every endpoint,
 * at the guard and over the RPCs.
 */
let stack: TestStack;
let upstream: EchoUpstream;
const insecure = { [oauth.allowInsecureRequests]: true } as const;
const TENANTS = ["acme", "globex"] as const;
type Tenant = (typeof TENANTS)[number] | "default";
const baseOf = (tenant: Tenant) => (tenant === "default" ? "" : `/${tenant}`);
const rpcAs = (tenant: Tenant, headers: Record<string, string> = {}) => ({ headers: tenant === "default" ? headers : { ...headers, [TENANT_HEADER]: tenant } });

beforeAll(async () => {
  upstream = await startEchoUpstream();
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      file.tenants = TENANTS.map(tenantSection);
      if (file.gateway !== undefined) {
        (file.gateway as Record<string, unknown>).guard = { defaultUpstream: upstream.url, cacheTtlSeconds: 0 };
      }
      file.routes = [
        { name: "acme-api", path: "/acme-api/**", scopes: ["read"], tenants: ["acme"] },
        { name: "shared-api", path: "/shared-api/**", scopes: ["read"], tenants: ["acme", "globex"] },
        { name: "default-api", path: "/default-api/**", scopes: ["read"] },
      ];
    },
  });
});
afterAll(async () => {
  await stack?.close();
  await upstream?.close();
});

/** What one tenant's code flow through the gateway leaves: an unredeemed code, tokens, and the browser. */
interface Issued {
  code: string;
  accessToken: string;
  refreshToken: string;
  agent: UserAgent;
}

async function issue(tenant: Tenant): Promise<Issued> {
  const agent = new UserAgent(stack.gateway.url);
  await signInAt(agent, baseOf(tenant));
  const codeFor = async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const location = await authorizeAt(agent, baseOf(tenant), {
      response_type: "code",
      client_id: "web",
      redirect_uri: WEB_REDIRECT,
      scope: "read",
      state: "s",
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    });
    expect(location.searchParams.get("iss")).toBe(`${stack.issuer}${baseOf(tenant)}`);
    return { code: location.searchParams.get("code")!, verifier };
  };
  const redeemed = await codeFor();
  const tokens = await tokenRequest(tenant, { grant_type: "authorization_code", code: redeemed.code, redirect_uri: WEB_REDIRECT, code_verifier: redeemed.verifier });
  expect(tokens.status).toBe(200);
  const body = (await tokens.json()) as { access_token: string; refresh_token: string };
  const unredeemed = await codeFor();
  return { code: unredeemed.code, accessToken: body.access_token, refreshToken: body.refresh_token, agent };
}

const form = (fields: Record<string, string>) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...basic("web", SECRETS.web).headers },
  body: new URLSearchParams(fields).toString(),
});
const tokenRequest = (tenant: Tenant, fields: Record<string, string>) => fetch(`${stack.issuer}${baseOf(tenant)}/oauth2/token`, form(fields));
async function introspectAt(tenant: Tenant, token: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${stack.issuer}${baseOf(tenant)}/oauth2/introspect`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...basic("resource-server", SECRETS.resourceServer).headers },
    body: new URLSearchParams({ token }).toString(),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}
const guarded = (path: string, token: string) => fetch(`${stack.issuer}${path}`, { headers: { authorization: `Bearer ${token}` } });

describe("tenants: the isolation matrix (issue 11)", () => {
  let issued: Record<Tenant, Issued>;
  beforeAll(async () => {
    issued = { acme: await issue("acme"), globex: await issue("globex"), default: await issue("default") };
  });

  const pairs: Array<[Tenant, Tenant]> = [
    ["acme", "globex"],
    ["globex", "acme"],
    ["acme", "default"],
    ["default", "acme"],
  ];

  it.each(pairs)("RFC 6749 §4.1.3: a code of %s is invalid_grant at %s's token endpoint (same client id and secret)", async (from, at) => {
    const response = await tokenRequest(at, { grant_type: "authorization_code", code: issued[from].code, redirect_uri: WEB_REDIRECT, code_verifier: "x".repeat(43) });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_grant" });
  });

  it.each(pairs)("RFC 6749 §6: a refresh token of %s is invalid_grant at %s's token endpoint", async (from, at) => {
    const response = await tokenRequest(at, { grant_type: "refresh_token", refresh_token: issued[from].refreshToken });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_grant" });
  });

  it.each(pairs)("RFC 7662: the access and refresh tokens of %s are inactive at %s's introspection endpoint, active at their own", async (from, at) => {
    expect(await introspectAt(at, issued[from].accessToken)).toEqual({ active: false });
    expect(await introspectAt(at, issued[from].refreshToken)).toEqual({ active: false });
    expect(await introspectAt(from, issued[from].accessToken)).toMatchObject({ active: true, iss: `${stack.issuer}${baseOf(from)}` });
  });

  it("RFC 7009 §2.2: revoking a tenant's token at another tenant's endpoint is a 200 that revokes nothing", async () => {
    const victim = await issue("acme");
    const response = await fetch(`${stack.issuer}/globex/oauth2/revoke`, form({ token: victim.refreshToken }));
    expect(response.status).toBe(200);
    expect(await introspectAt("acme", victim.refreshToken)).toMatchObject({ active: true });
    expect(await introspectAt("acme", victim.accessToken)).toMatchObject({ active: true });
  });

  it("the guard: a route accepts only the tenants it names; the identity headers carry the tenant", async () => {
    expect((await guarded("/acme-api/x", issued.acme.accessToken)).status).toBe(200);
    expect(upstream.last()?.headers["x-gatehouse-tenant"]).toBe("acme");
    expect(upstream.last()?.headers["x-gatehouse-subject"]).toBe("user-alice");
    for (const other of ["globex", "default"] as const) {
      const refused = await guarded("/acme-api/x", issued[other].accessToken);
      expect(refused.status).toBe(401);
      expect(refused.headers.get("www-authenticate")).toContain('error="invalid_token"');
    }
    expect((await guarded("/shared-api/x", issued.globex.accessToken)).status).toBe(200);
    expect(upstream.last()?.headers["x-gatehouse-tenant"]).toBe("globex");
    expect((await guarded("/shared-api/x", issued.default.accessToken)).status).toBe(401);
    expect((await guarded("/default-api/x", issued.default.accessToken)).status).toBe(200);
    expect(upstream.last()?.headers["x-gatehouse-tenant"]).toBe("default");
    expect((await guarded("/default-api/x", issued.acme.accessToken)).status).toBe(401);
    // A caller's own claim of a tenant never reaches the upstream.
    await fetch(`${stack.issuer}/acme-api/x`, { headers: { authorization: `Bearer ${issued.acme.accessToken}`, "x-gatehouse-tenant": "globex" } });
    expect(upstream.last()?.headers["x-gatehouse-tenant"]).toBe("acme");
  });

  it("a session cookie of one tenant is no session at another: the second tenant asks for its own login", async () => {
    const agent = issued.acme.agent;
    const names = [...agent.cookies.keys()];
    expect(names).toContain("gatehouse_session-acme");
    expect(names).not.toContain("gatehouse_session-globex");
    const parameters = new URLSearchParams({ response_type: "code", client_id: "web", redirect_uri: WEB_REDIRECT, scope: "read", state: "s", code_challenge: "c".repeat(43), code_challenge_method: "S256" });
    const atGlobex = await agent.get(`/globex/oauth2/authorize?${parameters}`);
    expect(atGlobex.status).toBe(200);
    expect(await atGlobex.text()).toContain('action="/globex/login"');
    // The acme session's value under globex's cookie name names no session in globex's store.
    const copied = new UserAgent(stack.gateway.url);
    copied.cookies.set("gatehouse_session-globex", agent.cookies.get("gatehouse_session-acme")!);
    const withCopied = await copied.get(`/globex/oauth2/authorize?${parameters}`);
    expect(await withCopied.text()).toContain('action="/globex/login"');
  });

  it("a consent form of one tenant is refused at another (CSRF keys and sessions are per tenant)", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "/acme");
    await signInAt(agent, "/globex");
    const parameters = new URLSearchParams({ response_type: "code", client_id: "web", redirect_uri: WEB_REDIRECT, scope: "read write", state: "s", code_challenge: "c".repeat(43), code_challenge_method: "S256" });
    const page = await agent.get(`/acme/oauth2/authorize?${parameters}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('action="/acme/oauth2/consent"');
    const fields = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]));
    // Posted to globex with the browser's globex session (the cookie paths send each tenant its own).
    const crossed = await agent.post("/globex/oauth2/consent", { request_id: fields.request_id!, csrf_token: fields.csrf_token!, decision: "allow" }, {
      cookie: `gatehouse_session-globex=${agent.cookies.get("gatehouse_session-globex")}`,
    });
    expect(crossed.status).toBe(403);
  });

  it("RPCs: the tenant header selects the tenant; the token's iss does without it; an unknown tenant is NotFound", async () => {
    const { authz } = stack.authz;
    const asResourceServer = (tenant: Tenant) => rpcAs(tenant, basic("resource-server", SECRETS.resourceServer).headers);
    const acmeToken = issued.acme.accessToken;
    expect((await authz.introspect({ token: acmeToken }, asResourceServer("acme"))).active).toBe(true);
    expect((await authz.introspect({ token: acmeToken }, asResourceServer("globex"))).active).toBe(false);
    // No tenant named: acme's issuer in the token leads to acme, whose keys verify it.
    const byIssuer = await authz.introspect({ token: acmeToken }, basic("resource-server", SECRETS.resourceServer));
    expect(byIssuer).toMatchObject({ active: true, iss: `${stack.issuer}/acme` });
    expect((await authz.introspect({ token: issued.acme.refreshToken }, basic("resource-server", SECRETS.resourceServer))).active).toBe(false);
    const unknown = await failureOf(authz.introspect({ token: acmeToken }, asResourceServer("nope" as Tenant)));
    expect(unknown.code).toBe(Code.NotFound);
    expect(unknown.oauth?.error).toBe("unknown_tenant");
    // Credentials are checked within the tenant: the gateway's own client exists only at the top level.
    expect((await failureOf(authz.introspect({ token: acmeToken }, rpcAs("acme", basic("gatehouse-gateway", SECRETS.gateway).headers)))).code).toBe(Code.Unauthenticated);
    // The gateway, with its service credential alone, introspects in any named tenant.
    expect((await authz.introspect({ token: acmeToken }, rpcAs("acme", stack.authz.asGateway.headers))).active).toBe(true);
    expect((await failureOf(authz.exchangeCode({ code: issued.acme.code, redirectUri: WEB_REDIRECT, codeVerifier: "x".repeat(43) }, rpcAs("globex", basic("web", SECRETS.web).headers)))).oauth?.error).toBe(
      "invalid_grant",
    );
    expect(JSON.parse((await authz.getJwks({}, rpcAs("acme"))).jwksJson)).not.toEqual(JSON.parse((await authz.getJwks({}, rpcAs("globex"))).jwksJson));
  });

  it("WatchRevocations: the gateway's stream names the tenant of each revocation; a client's carries its own tenant's only", async () => {
    const { authz } = stack.authz;
    const all = authz.watchRevocations({}, stack.authz.asGateway)[Symbol.asyncIterator]();
    const acmeOnly = authz.watchRevocations({}, rpcAs("acme", basic("resource-server", SECRETS.resourceServer).headers))[Symbol.asyncIterator]();
    expect((await all.next()).value?.event.case).toBe("subscribed");
    expect((await acmeOnly.next()).value?.event.case).toBe("subscribed");
    const globexTokens = await issue("globex");
    const acmeTokens = await issue("acme");
    await authz.revoke({ token: globexTokens.accessToken }, rpcAs("globex", basic("web", SECRETS.web).headers));
    await authz.revoke({ token: acmeTokens.accessToken }, rpcAs("acme", basic("web", SECRETS.web).headers));
    const first = (await all.next()).value?.event;
    const second = (await all.next()).value?.event;
    expect(first).toMatchObject({ case: "revocation", value: { tenant: "globex", target: { case: "jti", value: decodeJwt(globexTokens.accessToken).jti } } });
    expect(second).toMatchObject({ case: "revocation", value: { tenant: "acme", target: { case: "jti", value: decodeJwt(acmeTokens.accessToken).jti } } });
    expect((await acmeOnly.next()).value?.event).toMatchObject({ case: "revocation", value: { tenant: "acme", target: { value: decodeJwt(acmeTokens.accessToken).jti } } });
    await all.return?.();
    await acmeOnly.return?.();
  });

  it("an unknown tenant is a 404, never another tenant's answer", async () => {
    for (const path of ["/nope/oauth2/token", "/.well-known/oauth-authorization-server/nope", "/nope/.well-known/jwks.json"]) {
      const response = await fetch(`${stack.issuer}${path}`, { method: path.includes("token") ? "POST" : "GET" });
      expect(response.status, path).toBe(404);
    }
    const page = await fetch(`${stack.issuer}/nope/oauth2/authorize?client_id=web`);
    expect(page.status).toBe(404);
  });
});

describe("tenants: oauth4webapi against each tenant's issuer (issue 11)", () => {
  it.each([...TENANTS])("RFC 8414 §3.1 discovery, the code flow, refresh, introspection and revocation at %s", async (tenant) => {
    const issuer = new URL(`${stack.issuer}/${tenant}`);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
    expect(as.issuer).toBe(issuer.href);
    expect(as.token_endpoint).toBe(`${issuer.href}/oauth2/token`);
    expect(as.jwks_uri).toBe(`${issuer.href}/.well-known/jwks.json`);
    const client: oauth.Client = { client_id: "web" };
    const auth = oauth.ClientSecretBasic(SECRETS.web);
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, `/${tenant}`);
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const location = await authorizeAt(agent, `/${tenant}`, {
      response_type: "code",
      client_id: "web",
      redirect_uri: WEB_REDIRECT,
      scope: "read",
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    });
    const callback = oauth.validateAuthResponse(as, client, location, state);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, auth, callback, WEB_REDIRECT, verifier, insecure));
    const claims = await oauth.validateJwtAccessToken(as, new Request(`${stack.issuer}/r`, { headers: { authorization: `Bearer ${tokens.access_token}` } }), issuer.href, insecure);
    expect(claims).toMatchObject({ iss: issuer.href, sub: "user-alice", client_id: "web" });
    const refreshed = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, insecure));
    const resourceServer: oauth.Client = { client_id: "resource-server" };
    const introspect = async (token: string) =>
      oauth.processIntrospectionResponse(as, resourceServer, await oauth.introspectionRequest(as, resourceServer, oauth.ClientSecretBasic(SECRETS.resourceServer), token, insecure));
    expect(await introspect(refreshed.access_token)).toMatchObject({ active: true, iss: issuer.href });
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, refreshed.refresh_token!, insecure));
    expect(await introspect(refreshed.access_token)).toEqual({ active: false });
  });
});

describe("tenants: reload (issue 11)", () => {
  it("adds a tenant and removes another without disturbing the rest; the removed tenant's tokens die at once", async () => {
    const acme = await issue("acme");
    const globex = await issue("globex");
    const { parseAuthzConfig } = await import("../../services/authz/config.js");
    const { parseGatewayConfig } = await import("../../gateway/config.js");
    const { stringify } = await import("yaml");
    const { baseConfigFile, testEnvironment } = await import("../support/authz.js");
    const { gatewaySection } = await import("../support/stack.js");
    const file = baseConfigFile();
    file.issuer = stack.issuer;
    file.requireHttps = false;
    file.tenants = [tenantSection("acme"), tenantSection("initech")];
    file.gateway = { ...gatewaySection(stack.authz.running.url, 0), guard: { defaultUpstream: upstream.url, cacheTtlSeconds: 0 } };
    file.routes = [{ name: "shared-api", path: "/shared-api/**", scopes: ["read"], tenants: ["acme", "initech"] }];
    const env = await testEnvironment(inject("redisUrl"));
    const authzConfig = parseAuthzConfig(stringify(file), env);
    await stack.authz.running.deps.reload({ ...authzConfig, keyPrefix: stack.authz.running.deps.config.keyPrefix });
    stack.gateway.deps.reload(parseGatewayConfig(stringify(file), env));
    try {
      // globex is gone: its tokens are refused everywhere, its endpoints are 404.
      expect((await guarded("/shared-api/x", globex.accessToken)).status).toBe(401);
      expect((await failureOf(stack.authz.authz.introspect({ token: globex.accessToken }, rpcAs("globex", basic("resource-server", SECRETS.resourceServer).headers)))).code).toBe(Code.NotFound);
      // Without a tenant named, its iss leads nowhere: the default tenant does not know it.
      expect((await stack.authz.authz.introspect({ token: globex.accessToken }, basic("resource-server", SECRETS.resourceServer))).active).toBe(false);
      expect((await fetch(`${stack.issuer}/.well-known/oauth-authorization-server/globex`)).status).toBe(404);
      // acme is untouched: its tokens still work, at the guard and at its endpoints.
      expect((await guarded("/shared-api/x", acme.accessToken)).status).toBe(200);
      expect(await introspectAt("acme", acme.accessToken)).toMatchObject({ active: true });
      // initech is new: it serves at once.
      const metadata = await fetch(`${stack.issuer}/.well-known/oauth-authorization-server/initech`);
      expect(metadata.status).toBe(200);
      expect(await metadata.json()).toMatchObject({ issuer: `${stack.issuer}/initech` });
      const initech = await issue("initech" as Tenant);
      expect((await guarded("/shared-api/x", initech.accessToken)).status).toBe(200);
      expect(upstream.last()?.headers["x-gatehouse-tenant"]).toBe("initech");
    } finally {
      const restored = baseConfigFile();
      restored.issuer = stack.issuer;
      restored.requireHttps = false;
      restored.tenants = TENANTS.map(tenantSection);
      await stack.authz.running.deps.reload({ ...parseAuthzConfig(stringify(restored), env), keyPrefix: stack.authz.running.deps.config.keyPrefix });
      stack.gateway.deps.reload(stack.gateway.config);
    }
  });
});
