import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDemoMcpServer } from "../../demo/demo-mcp-server.js";
import { basic, pkcePair, SECRETS, TEST_PASSWORD_HASH, WEB_REDIRECT } from "../support/authz.js";
import { authorizeAt, signInAt, tenantSection } from "../support/tenants.js";
import { UserAgent, signIn, formFields } from "../support/gateway-oauth-flow.js";
import { startTestStack, type TestStack } from "../support/stack.js";

/**
 * Issue 15 without a browser: RFC 9728 protected resource metadata and
 * challenges at the guard, RFC 8707 resource indicators at the authorization
 * server, through a real gateway and authz service on Redis, in front of two
 * demo MCP servers (A at /mcp, B at /other-mcp) and an API that is no
 * declared resource. The official MCP client against the same set-up, in
 * Chromium, is test/e2e/mcp-client.test.ts.
 */
const REDIRECT = "https://mcp-client.test/callback";
let stack: TestStack;
let resourceA: string;
let resourceB: string;
/** The protected resource of the tenant acme only (issue 11: everything per tenant). */
let acmeResource: string;
const servers: Server[] = [];

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const upstreamA = await listen(createDemoMcpServer({ path: "/mcp", name: "a" }));
  const upstreamB = await listen(createDemoMcpServer({ path: "/other-mcp", name: "b" }));
  const upstreamAcme = await listen(createDemoMcpServer({ path: "/acme-mcp", name: "acme" }));
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      const issuer = file.issuer as string;
      resourceA = `${issuer}/mcp`;
      resourceB = `${issuer}/other-mcp`;
      acmeResource = `${issuer}/acme-mcp`;
      file.tenants = [{ ...tenantSection("acme"), resources: [{ uri: acmeResource, name: "Acme MCP server" }] }];
      (file.scopes as unknown[]).push({ name: "mcp:tools", description: "Use the MCP tools" });
      (file.users as unknown[]).push({ username: "bob", subject: "user-bob", passwordHash: TEST_PASSWORD_HASH });
      (file.clients as unknown[]).push({ id: "mcp-client", name: "An MCP Client", type: "public", redirectUris: [REDIRECT], scopes: ["mcp:tools", "read"] });
      file.resources = [
        { uri: resourceA, name: "MCP server A", scopes: ["mcp:tools"] },
        { uri: resourceB, name: "MCP server B" },
      ];
      file.routes = [
        { name: "mcp-a", path: "/mcp", scopes: ["mcp:tools"], resource: resourceA, upstream: upstreamA },
        { name: "mcp-b", path: "/other-mcp", scopes: ["mcp:tools"], resource: resourceB, upstream: upstreamB },
        { name: "api", path: "/api/**", scopes: ["read"], upstream: upstreamA },
        { name: "acme-mcp", path: "/acme-mcp", scopes: ["read"], resource: acmeResource, tenants: ["acme"], upstream: upstreamAcme },
      ];
    },
  });
});

afterAll(async () => {
  await stack?.close();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
});

/** An authorization request of mcp-client with these resource indicators (each a repeated `resource`), as a signed-in browser; the consent page's text and the final redirect. */
async function authorize(agent: UserAgent, resources: readonly string[], scope = "mcp:tools") {
  const pkce = pkcePair();
  const query = new URLSearchParams({ response_type: "code", client_id: "mcp-client", redirect_uri: REDIRECT, scope, state: "s", code_challenge: pkce.challenge, code_challenge_method: "S256" });
  for (const resource of resources) query.append("resource", resource);
  const response = await agent.get(`/oauth2/authorize?${query}`);
  let consent = "";
  let location: URL;
  if (response.status === 200) {
    consent = await response.text();
    const decided = await agent.submit(consent, "/oauth2/consent", { decision: "allow" });
    expect(decided.status).toBe(303);
    location = new URL(decided.headers.get("location")!);
  } else {
    expect(response.status).toBe(302);
    location = new URL(response.headers.get("location")!);
  }
  return { consent, location, verifier: pkce.verifier };
}

async function token(fields: Record<string, string>, resources: readonly string[] = []) {
  const body = new URLSearchParams({ client_id: "mcp-client", ...fields });
  for (const resource of resources) body.append("resource", resource);
  const response = await fetch(`${stack.issuer}/oauth2/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

async function signedInAgent(user = "alice"): Promise<UserAgent> {
  const agent = new UserAgent(stack.issuer);
  await signIn(agent, user);
  return agent;
}

/** The tokens of a grant for these resources (consented by alice). */
async function grant(resources: readonly string[], tokenResources: readonly string[] = resources) {
  const { location, verifier } = await authorize(await signedInAgent(), resources);
  const code = location.searchParams.get("code");
  expect(code, location.href).not.toBeNull();
  const exchanged = await token({ grant_type: "authorization_code", code: code!, redirect_uri: REDIRECT, code_verifier: verifier }, tokenResources);
  expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
  return exchanged.body;
}

function callTool(path: string, accessToken: string | undefined) {
  return fetch(`${stack.issuer}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` }),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } }),
  });
}

describe("RFC 9728 protected resource metadata", () => {
  it("RFC 9728 §3.1, §3.2: the document of each resource at its path-inserted well-known URL, with CORS", async () => {
    const response = await fetch(`${stack.issuer}/.well-known/oauth-protected-resource/mcp`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(await response.json()).toEqual({
      resource: resourceA,
      authorization_servers: [stack.issuer],
      scopes_supported: ["mcp:tools"],
      bearer_methods_supported: ["header"],
      resource_name: "MCP server A",
    });
    // B declares no scopes: its routes' scopes are advertised.
    const other = (await (await fetch(`${stack.issuer}/.well-known/oauth-protected-resource/other-mcp`)).json()) as Record<string, unknown>;
    expect(other.resource).toBe(resourceB);
    expect(other.scopes_supported).toEqual(["mcp:tools"]);
  });

  it("RFC 9728 §3: a browser's preflight is answered; a path of no resource is 404", async () => {
    const preflight = await fetch(`${stack.issuer}/.well-known/oauth-protected-resource/mcp`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "GET", "access-control-request-headers": "mcp-protocol-version" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-methods")).toContain("GET");
    expect((await fetch(`${stack.issuer}/.well-known/oauth-protected-resource/api`)).status).toBe(404);
    expect((await fetch(`${stack.issuer}/.well-known/oauth-protected-resource`)).status).toBe(404);
  });

  it("RFC 9728 §5.1: a request without a token gets 401 naming the metadata and the scope the route needs", async () => {
    const response = await callTool("/mcp", undefined);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe(
      `Bearer realm="gatehouse", scope="mcp:tools", resource_metadata="${stack.issuer}/.well-known/oauth-protected-resource/mcp"`,
    );
    // A route of no declared resource challenges as before (RFC 6750 §3.1).
    expect((await fetch(`${stack.issuer}/api/x`)).headers.get("www-authenticate")).toBe('Bearer realm="gatehouse"');
  });
});

describe("RFC 8707 resource indicators", () => {
  it("RFC 8707 §2: the token's aud is exactly the requested resource; the resource's route lets it in, with the identity", async () => {
    const tokens = await grant([resourceA]);
    expect(decodeJwt(tokens.access_token!).aud).toBe(resourceA);
    const response = await callTool("/mcp", tokens.access_token);
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { result: { structuredContent: Record<string, unknown> } };
    expect(answer.result.structuredContent).toEqual({ subject: "user-alice", client: "mcp-client", scope: ["mcp:tools"] });
  });

  it("RFC 8707 §2, RFC 9068 §4: a token for MCP server A is invalid_token at MCP server B (no token passthrough)", async () => {
    const tokens = await grant([resourceA]);
    const response = await callTool("/other-mcp", tokens.access_token);
    expect(response.status).toBe(401);
    const challenge = response.headers.get("www-authenticate")!;
    expect(challenge).toContain('error="invalid_token"');
    expect(challenge).toContain(`resource_metadata="${stack.issuer}/.well-known/oauth-protected-resource/other-mcp"`);
    expect(challenge).toContain('scope="mcp:tools"');
  });

  it("a token without a resource (the server's default audience) is refused by a resource's routes", async () => {
    const tokens = await grant([]);
    expect(decodeJwt(tokens.access_token!).aud).toBe(stack.issuer);
    expect((await callTool("/mcp", tokens.access_token)).status).toBe(401);
  });

  it("RFC 9728 §5.1: a 403 for a missing scope carries insufficient_scope, the scope and the metadata", async () => {
    const { location, verifier } = await authorize(await signedInAgent(), [resourceA], "read");
    const exchanged = await token({ grant_type: "authorization_code", code: location.searchParams.get("code")!, redirect_uri: REDIRECT, code_verifier: verifier });
    const response = await callTool("/mcp", exchanged.body.access_token);
    expect(response.status).toBe(403);
    expect(response.headers.get("www-authenticate")).toBe(
      `Bearer realm="gatehouse", error="insufficient_scope", error_description="the access token lacks the scope mcp:tools", scope="mcp:tools", resource_metadata="${stack.issuer}/.well-known/oauth-protected-resource/mcp"`,
    );
  });

  it("RFC 8707 §2: several resources: aud names each; the code exchange and a refresh may narrow to one of them (§2.2)", async () => {
    const tokens = await grant([resourceA, resourceB], []);
    expect(decodeJwt(tokens.access_token!).aud).toEqual([resourceA, resourceB]);
    expect((await callTool("/mcp", tokens.access_token)).status).toBe(200);
    expect((await callTool("/other-mcp", tokens.access_token)).status).toBe(200);

    const narrowed = await token({ grant_type: "refresh_token", refresh_token: tokens.refresh_token! }, [resourceB]);
    expect(narrowed.status).toBe(200);
    expect(decodeJwt(narrowed.body.access_token!).aud).toBe(resourceB);
    expect((await callTool("/mcp", narrowed.body.access_token)).status).toBe(401);
    // The grant keeps both: the next refresh without resource gets both again.
    const again = await token({ grant_type: "refresh_token", refresh_token: narrowed.body.refresh_token! });
    expect(decodeJwt(again.body.access_token!).aud).toEqual([resourceA, resourceB]);

    const atExchange = await grant([resourceA, resourceB], [resourceA]);
    expect(decodeJwt(atExchange.access_token!).aud).toBe(resourceA);
  });

  it("RFC 8707 §2: an unknown resource, a relative one and one with a fragment are invalid_target at the authorization endpoint (redirected)", async () => {
    const agent = await signedInAgent();
    for (const resource of ["https://unknown.example/mcp", "/mcp", `${resourceA}#frag`]) {
      const { location, consent } = await authorize(agent, [resource]);
      expect(consent, resource).toBe("");
      expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
      expect(location.searchParams.get("error"), resource).toBe("invalid_target");
      expect(location.searchParams.get("state")).toBe("s");
    }
  });

  it("RFC 8707 §2.2: a resource outside the grant is invalid_target at the token endpoint, for the code and at refresh", async () => {
    const { location, verifier } = await authorize(await signedInAgent(), [resourceA]);
    const refused = await token({ grant_type: "authorization_code", code: location.searchParams.get("code")!, redirect_uri: REDIRECT, code_verifier: verifier }, [resourceB]);
    expect(refused).toMatchObject({ status: 400, body: { error: "invalid_target" } });

    const tokens = await grant([resourceA]);
    const widened = await token({ grant_type: "refresh_token", refresh_token: tokens.refresh_token! }, [resourceB]);
    expect(widened).toMatchObject({ status: 400, body: { error: "invalid_target" } });
  });

  it("the consent page names the resources; remembered consent covers the resources it was given for", async () => {
    const agent = await signedInAgent("bob");
    const query = (resource: string) => {
      const q = new URLSearchParams({ response_type: "code", client_id: "mcp-client", redirect_uri: REDIRECT, scope: "mcp:tools", state: "s", code_challenge: pkcePair().challenge, code_challenge_method: "S256", resource });
      return `/oauth2/authorize?${q}`;
    };
    const first = await agent.get(query(resourceA));
    expect(first.status).toBe(200);
    const page = await first.text();
    expect(page).toContain("MCP server A");
    expect(page).toContain(resourceA);
    const decided = await agent.post("/oauth2/consent", { ...formFields(page, "/oauth2/consent"), decision: "allow", remember: "yes" });
    expect(decided.status).toBe(303);
    // The same scope for A again: remembered, no page.
    expect((await agent.get(query(resourceA))).status).toBe(302);
    // The same scope for B: asked again.
    const second = await agent.get(query(resourceB));
    expect(second.status).toBe(200);
    expect(await second.text()).toContain("MCP server B");
  });
});

describe("per tenant (issue 11)", () => {
  it("a tenant's resources are its own: its metadata names its issuer; the default tenant does not know them; tokens do not cross", async () => {
    const metadata = (await (await fetch(`${stack.issuer}/.well-known/oauth-protected-resource/acme-mcp`)).json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({ resource: acmeResource, authorization_servers: [`${stack.issuer}/acme`], resource_name: "Acme MCP server" });

    // The default tenant does not issue tokens for acme's resource.
    const { location } = await authorize(await signedInAgent(), [acmeResource]);
    expect(location.searchParams.get("error")).toBe("invalid_target");

    // acme does, and acme's resource takes them; the default tenant's resource A does not.
    const agent = new UserAgent(stack.issuer);
    await signInAt(agent, "/acme");
    const pkce = pkcePair();
    const redirect = await authorizeAt(agent, "/acme", { response_type: "code", client_id: "web", redirect_uri: WEB_REDIRECT, scope: "read", state: "s", code_challenge: pkce.challenge, code_challenge_method: "S256", resource: acmeResource });
    const exchanged = await fetch(`${stack.issuer}/acme/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("web", SECRETS.web).headers.authorization! },
      body: new URLSearchParams({ grant_type: "authorization_code", code: redirect.searchParams.get("code")!, redirect_uri: WEB_REDIRECT, code_verifier: pkce.verifier, resource: acmeResource }),
    });
    const acmeToken = ((await exchanged.json()) as { access_token: string }).access_token;
    expect(decodeJwt(acmeToken)).toMatchObject({ aud: acmeResource, iss: `${stack.issuer}/acme` });
    const acmeCall = await callTool("/acme-mcp", acmeToken);
    expect(acmeCall.status).toBe(200);
    expect(((await acmeCall.json()) as { result: { structuredContent: Record<string, unknown> } }).result.structuredContent).toMatchObject({ subject: "user-alice", client: "web" });
    expect((await callTool("/mcp", acmeToken)).status).toBe(401);
    // The default tenant's token for its own resource is no token at acme's.
    expect((await callTool("/acme-mcp", (await grant([resourceA])).access_token)).status).toBe(401);
  });
});

describe("authorization server metadata (what an MCP client checks)", () => {
  it("RFC 8414 and OpenID Connect Discovery: code_challenge_methods_supported with S256 at both locations, the tenant's too", async () => {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/acme", "/acme/.well-known/openid-configuration"]) {
      const response = await fetch(`${stack.issuer}${path}`);
      expect(response.status, path).toBe(200);
      const document = (await response.json()) as { code_challenge_methods_supported: string[]; response_types_supported: string[] };
      expect(document.code_challenge_methods_supported, path).toContain("S256");
      expect(document.response_types_supported, path).toContain("code");
    }
  });
});
