import { expect } from "vitest";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { SECRETS, TEST_PASSWORD_HASH, WEB_REDIRECT } from "./authz.js";
import { UserAgent } from "./gateway-oauth-flow.js";

/**
 * Tenants for the tests (issue 11): each with a client "web" and a user
 * "alice" like the top level's (the same ids, the same secret, the same
 * password), so that nothing but the tenant tells them apart, and with the
 * gateway's own client, as an operator lists it in each tenant a guard-only
 * gateway guards.
 */
export function tenantSection(name: string): Record<string, unknown> {
  const hash = (secret: string) => `sha256:${hashSecret(secret)}`;
  return {
    name,
    scopes: [
      { name: "read", description: `Read your ${name} things` },
      { name: "write", description: `Change your ${name} things` },
    ],
    clients: [
      { id: "web", name: `Web App of ${name}`, type: "confidential", secretHashes: [hash(SECRETS.web)], redirectUris: [WEB_REDIRECT], scopes: ["read", "write"], defaultScopes: ["read"] },
      { id: "resource-server", name: "Resource Server", type: "confidential", secretHashes: [hash(SECRETS.resourceServer)], grantTypes: [], responseTypes: [], introspectAnyToken: true },
    ],
    users: [{ username: "alice", subject: "user-alice", passwordHash: TEST_PASSWORD_HASH }],
  };
}

/** Signs in at a tenant's login page (`base` "" for the default tenant, "/acme" for acme). */
export async function signInAt(agent: UserAgent, base: string, login = "/login"): Promise<void> {
  const page = await agent.get(`${base}${login}`);
  expect(page.status).toBe(200);
  const response = await agent.submit(await page.text(), `${base}${login}`, { username: "alice", password: "correct horse" });
  expect(response.status).toBe(303);
}

/** The authorization request through a tenant's endpoints, consent allowed when asked; the final redirect. */
export async function authorizeAt(
  agent: UserAgent,
  base: string,
  parameters: Record<string, string>,
  paths: { authorize: string; consent: string } = { authorize: "/oauth2/authorize", consent: "/oauth2/consent" },
): Promise<URL> {
  const response = await agent.get(`${base}${paths.authorize}?${new URLSearchParams(parameters)}`);
  if (response.status === 302) return new URL(response.headers.get("location")!);
  expect(response.status, "the consent page").toBe(200);
  const decided = await agent.submit(await response.text(), `${base}${paths.consent}`, { decision: "allow" });
  expect(decided.status).toBe(303);
  return new URL(decided.headers.get("location")!);
}
