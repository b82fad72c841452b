import { randomBytes } from "node:crypto";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { AuthorizationServer } from "../../services/authz/oauth/authorization-server.js";
import { DEFAULT_TENANT } from "../../startup/tenant-name.js";
import { SECRETS, TEST_PASSWORD_HASH, WEB_REDIRECT, basic, pkcePair, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { UserAgent } from "../support/gateway-oauth-flow.js";
import { freePort } from "../support/redis-server.js";
import { tenantSection } from "../support/tenants.js";
import { waitFor } from "../support/wait-for.js";
import { bearer, eventually, startGuardGateway, type GuardGateway } from "./guard-fixtures.js";

/**
 * Issue 12, the resource owner's rights, end to end and all real: Redis, TWO
 * authz replicas on it, TWO gateways (each talking to its own replica, so
 * every change made at one replica reaches the other gateway only through
 * the store and the revocation feed), two tenants, browsers as HTTP user
 * agents. Changes are made through the core's user operations (what the
 * AdminService calls) at one replica, and observed at the other's gateway.
 */

const ACME = "acme";
let upstream: EchoUpstream;
let replicas: [TestAuthz, TestAuthz];
let gateways: [GuardGateway, GuardGateway];
let issuer: string;

const users = (replica: TestAuthz, tenant = DEFAULT_TENANT): AuthorizationServer["users"] => replica.running.deps.tenantServer(tenant)!.users;
const baseOf = (tenant: string) => (tenant === DEFAULT_TENANT ? "" : `/${tenant}`);

beforeAll(async () => {
  upstream = await startEchoUpstream();
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  const keyPrefix = `rights-${randomBytes(4).toString("hex")}:`;
  const patch = (file: Record<string, unknown>) => {
    file.issuer = issuer;
    file.requireHttps = false;
    file.scopes = [
      { name: "read", description: "Read your things" },
      { name: "write", description: "Change your things" },
      { name: "admin", description: "Administer everything", groups: ["admins"] },
    ];
    (file.clients as Array<Record<string, unknown>>).find((c) => c.id === "web")!.scopes = ["read", "write", "admin"];
    file.users = [
      { username: "alice", subject: "user-alice", passwordHash: TEST_PASSWORD_HASH, groups: ["staff", "admins"] },
      { username: "bob", subject: "user-bob", passwordHash: TEST_PASSWORD_HASH },
      { username: "carol", subject: "user-carol", passwordHash: TEST_PASSWORD_HASH, disabled: true },
    ];
    const acme = tenantSection(ACME);
    acme.users = [{ username: "alice", subject: "user-alice", passwordHash: TEST_PASSWORD_HASH, groups: ["staff"] }];
    // Both replicas sign acme's tokens with the same keys (without them, each would generate its own).
    acme.signingKeys = { source: { env: "TEST_SIGNING_KEYS" } };
    file.tenants = [acme];
    file.routes = [
      { name: "staff", path: "/staff/**", scopes: ["read"], groups: ["staff"], upstream: upstream.url, tenants: [DEFAULT_TENANT, ACME] },
      { name: "admin", path: "/admin/**", scopes: ["admin"], upstream: upstream.url },
    ];
    file.gateway = { guard: { cacheTtlSeconds: 300 } };
  };
  replicas = [await startTestAuthz({ redisUrl: inject("redisUrl"), keyPrefix, patch }), await startTestAuthz({ redisUrl: inject("redisUrl"), keyPrefix, patch })];
  gateways = [
    await startGuardGateway({ authzUrl: replicas[0].running.url, redisUrl: inject("redisUrl"), patch, port }),
    await startGuardGateway({ authzUrl: replicas[1].running.url, redisUrl: inject("redisUrl"), patch }),
  ];
  for (const gateway of gateways) await eventually(async () => (await gateway.metric("gatehouse_guard_revocation_feed_up")) === 1);
});
afterAll(async () => {
  for (const gateway of gateways ?? []) await gateway.close();
  for (const replica of replicas ?? []) await replica.close();
  await upstream?.close();
});

/** Signs in at a gateway's login page; the response to the form. */
async function signIn(agent: UserAgent, tenant: string, username: string, password = "correct horse"): Promise<Response> {
  const base = baseOf(tenant);
  const page = await agent.get(`${base}/login`);
  expect(page.status).toBe(200);
  return agent.submit(await page.text(), `${base}/login`, { username, password });
}

/** The code flow through a gateway's endpoints (consent allowed), tokens from its token endpoint. */
async function codeFlow(agent: UserAgent, tenant: string, scope: string): Promise<{ access_token: string; refresh_token: string; scope: string }> {
  const base = baseOf(tenant);
  const verifier = oauth.generateRandomCodeVerifier();
  const query = new URLSearchParams({
    response_type: "code",
    client_id: "web",
    redirect_uri: WEB_REDIRECT,
    scope,
    state: "s",
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  });
  let response = await agent.get(`${base}/oauth2/authorize?${query}`);
  if (response.status === 200) response = await agent.submit(await response.text(), `${base}/oauth2/consent`, { decision: "allow" });
  expect([302, 303]).toContain(response.status);
  const code = new URL(response.headers.get("location")!).searchParams.get("code")!;
  const tokens = await tokenRequest(agent.baseUrl, tenant, { grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: verifier });
  expect(tokens.status).toBe(200);
  return (await tokens.json()) as { access_token: string; refresh_token: string; scope: string };
}

function tokenRequest(gatewayUrl: string, tenant: string, fields: Record<string, string>): Promise<Response> {
  return fetch(`${gatewayUrl}${baseOf(tenant)}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`web:${SECRETS.web}`).toString("base64")}` },
    body: new URLSearchParams(fields).toString(),
  });
}

/** RFC 7662 at a gateway's introspection endpoint, as the resource server (a client that may introspect any token). */
async function introspectAt(gateway: GuardGateway, token: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${gateway.url}/oauth2/introspect`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`resource-server:${SECRETS.resourceServer}`).toString("base64")}` },
    body: new URLSearchParams({ token }).toString(),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

const refresh = (gatewayUrl: string, tenant: string, refreshToken: string) => tokenRequest(gatewayUrl, tenant, { grant_type: "refresh_token", refresh_token: refreshToken });
const get = (gateway: GuardGateway, path: string, token: string) => fetch(`${gateway.url}${path}`, { headers: bearer(token) });
const status = async (gateway: GuardGateway, path: string, token: string) => (await get(gateway, path, token)).status;

describe("issue 12: routes that require groups, at two gateways", () => {
  it("a user without the route's group gets 403 at both gateways, without an RFC 6750 error code; a member passes at both", async () => {
    const bob = await codeFlow(await signedIn("bob"), DEFAULT_TENANT, "read");
    const alice = await codeFlow(await signedIn("alice"), DEFAULT_TENANT, "read");
    for (const gateway of gateways) {
      const refused = await get(gateway, "/staff/notes", bob.access_token);
      expect(refused.status).toBe(403);
      expect(refused.headers.get("www-authenticate")).toMatch(/^Bearer realm="[^"]*", error_description="[^"]+"$/);
      expect(await refused.json()).toEqual({ error_description: "the resource owner lacks the rights this resource requires" });
      expect(await status(gateway, "/staff/notes", alice.access_token)).toBe(200);
    }
    expect(upstream.last()!.headers["x-gatehouse-subject"]).toBe("user-alice");
  });

  it("a user's group removed at one replica while the token is cached at the other gateway: refused there within a second; given back, allowed again", async () => {
    const alice = await codeFlow(await signedIn("alice"), DEFAULT_TENANT, "read");
    const gateway = gateways[1];
    expect(await status(gateway, "/staff/x", alice.access_token)).toBe(200);
    const hits = await gateway.metric("gatehouse_guard_cache_hits_total");
    expect(await status(gateway, "/staff/x", alice.access_token)).toBe(200);
    expect(await gateway.metric("gatehouse_guard_cache_hits_total")).toBe(hits + 1);

    // RFC 7662 JSON at either gateway: the groups are the user's as they are at the time of the call.
    expect(await introspectAt(gateways[0], alice.access_token)).toMatchObject({ active: true, sub: "user-alice", groups: ["staff", "admins"] });
    expect(await users(replicas[0]).setUserGroups("user-alice", ["admins"])).toEqual({ kind: "changed", lost: ["staff"], gained: [] });
    expect(await introspectAt(gateways[1], alice.access_token)).toMatchObject({ active: true, groups: ["admins"] });
    await waitFor(async () => (await status(gateway, "/staff/x", alice.access_token)) === 403, { budgetMs: 1_000, what: "the cached token refused at the other gateway" });

    await users(replicas[1]).setUserGroups("user-alice", undefined);
    await waitFor(async () => (await status(gateway, "/staff/x", alice.access_token)) === 200, { budgetMs: 1_000, what: "the token allowed again" });
  });

  it("seed 003: a refresh whose grant holds a scope the user lost is invalid_grant and its family revoked; gaining a group never breaks one", async () => {
    const agent = await signedIn("alice");
    const tokens = await codeFlow(agent, DEFAULT_TENANT, "read admin");
    expect(tokens.scope).toBe("read admin");
    expect(await status(gateways[0], "/admin/x", tokens.access_token)).toBe(200);

    await users(replicas[1]).setUserGroups("user-alice", ["staff", "admins", "auditors"]);
    const gained = await refresh(gateways[0].url, DEFAULT_TENANT, tokens.refresh_token);
    expect(gained.status).toBe(200);
    const { refresh_token: rotated, access_token: fresh } = (await gained.json()) as { refresh_token: string; access_token: string };

    await users(replicas[1]).setUserGroups("user-alice", ["staff"]);
    // The guard decides on current rights at once: the token's admin scope no longer counts.
    await waitFor(async () => (await status(gateways[0], "/admin/x", fresh)) === 403, { budgetMs: 1_000, what: "admin refused once the group is gone" });
    const lost = await refresh(gateways[1].url, DEFAULT_TENANT, rotated);
    expect(lost.status).toBe(400);
    expect(await lost.json()).toMatchObject({ error: "invalid_grant" });
    // The family is revoked: giving the group back does not revive it.
    await users(replicas[0]).setUserGroups("user-alice", undefined);
    expect(await refresh(gateways[0].url, DEFAULT_TENANT, rotated).then((r) => r.status)).toBe(400);
    await waitFor(async () => (await status(gateways[1], "/staff/x", fresh)) === 401, { budgetMs: 1_000, what: "the revoked grant's token refused" });
  });

  it("the consent page offers only the scopes the user may hold; a request for none of them ends in access_denied, with a page that says why", async () => {
    const agent = await signedIn("bob");
    const verifier = oauth.generateRandomCodeVerifier();
    const pkce = async (scope: string) =>
      `/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: "web", redirect_uri: WEB_REDIRECT, scope, state: "s-1", code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" })}`;
    const consent = await agent.get(await pkce("read admin"));
    expect(consent.status).toBe(200);
    const page = await consent.text();
    expect(page).toContain("Read your things");
    expect(page).not.toContain("Administer everything");

    const denied = await agent.get(await pkce("admin"));
    expect(denied.status).toBe(403);
    const text = await denied.text();
    expect(text).toContain("Your account lacks the rights");
    const link = /<a href="([^"]+)">Return to the application<\/a>/.exec(text)![1]!.replace(/&amp;/g, "&");
    const back = new URL(link);
    expect(`${back.origin}${back.pathname}`).toBe(WEB_REDIRECT);
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(back.searchParams.get("state")).toBe("s-1");
    expect(back.searchParams.get("iss")).toBe(issuer);
  });
});

describe("issue 12: rights are read again when the resource owner decides", () => {
  it("a scope whose group the user left after the request was parked is not granted; nothing left, or the user blocked: access_denied to the client", async () => {
    const [replica] = replicas;
    const pkce = pkcePair();
    const park = async (scope: string) =>
      (
        await replica.authz.authorize(
          { responseType: "code", clientId: "web", redirectUri: WEB_REDIRECT, scope, state: "st", codeChallenge: pkce.challenge, codeChallengeMethod: "S256", subject: "user-bob", authTime: 1n },
          replica.asGateway,
        )
      ).requestId;
    const decide = async (requestId: string) =>
      new URL((await replica.authz.decide({ requestId, subject: "user-bob", authTime: 1n, approved: true }, replica.asGateway)).redirectUrl);

    await users(replica).setUserGroups("user-bob", ["admins"]);
    const both = await park("read admin");
    const onlyAdmin = await park("admin");
    await users(replica).setUserGroups("user-bob", undefined);
    const narrowed = await decide(both);
    const { token } = await replica.authz.exchangeCode({ code: narrowed.searchParams.get("code")!, redirectUri: WEB_REDIRECT, codeVerifier: pkce.verifier }, basic("web", SECRETS.web));
    expect(token?.scope).toBe("read");
    const denied = await decide(onlyAdmin);
    expect(denied.searchParams.get("error")).toBe("access_denied");
    expect(denied.searchParams.get("state")).toBe("st");

    const beforeBlock = await park("read");
    await users(replica).blockUser("user-bob");
    try {
      const blocked = await decide(beforeBlock);
      expect(blocked.searchParams.get("error")).toBe("access_denied");
      expect(blocked.searchParams.get("error_description")).toContain("disabled");
    } finally {
      await users(replica).unblockUser("user-bob");
    }
  });
});

describe("issue 12: blocking a user", () => {
  it("ends their sessions, kills their token at the other gateway within a second, makes refresh invalid_grant and the login page say disabled; tenant acme's alice is untouched; unblocking restores logins, not grants", async () => {
    const browsers = [await signedIn("alice", gateways[0]), await signedIn("alice", gateways[1])];
    const tokens = await codeFlow(browsers[0]!, DEFAULT_TENANT, "read");
    const acmeBrowser = await signedIn("alice", gateways[0], ACME);
    const acme = await codeFlow(acmeBrowser, ACME, "read");
    expect(await status(gateways[1], "/staff/x", tokens.access_token)).toBe(200);
    expect(await status(gateways[1], "/staff/x", acme.access_token)).toBe(200);
    expect((await users(replicas[0]).findUserRights("user-alice"))?.disabled).toBe(false);

    const outcome = await users(replicas[0]).blockUser("user-alice");
    expect(await introspectAt(gateways[1], tokens.access_token)).toEqual({ active: false });
    expect(outcome).toMatchObject({ kind: "blocked", alreadyBlocked: false });
    if (outcome.kind !== "blocked") throw new Error("not blocked");
    expect(outcome.sessionsEnded).toBeGreaterThanOrEqual(2);
    expect(outcome.grantsRevoked).toBeGreaterThanOrEqual(1);

    // The token, cached at the other gateway, is refused there.
    await waitFor(async () => (await status(gateways[1], "/staff/x", tokens.access_token)) === 401, { budgetMs: 1_000, what: "the blocked user's token refused" });
    // Their open sessions ended: each browser is shown the sign-in form again.
    for (const [i, browser] of browsers.entries()) {
      const page = await browser.get("/login");
      expect(await page.text(), `browser ${i}`).toContain('name="password"');
    }
    const refused = await refresh(gateways[0].url, DEFAULT_TENANT, tokens.refresh_token);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: "invalid_grant" });

    // The login page says the account is disabled, but only to whoever knows the password.
    const disabled = await signIn(new UserAgent(gateways[1].url), DEFAULT_TENANT, "alice");
    expect(disabled.status).toBe(403);
    expect(await disabled.text()).toContain("This account is disabled");
    const guessed = await signIn(new UserAgent(gateways[1].url), DEFAULT_TENANT, "alice", "wrong horse");
    expect(guessed.status).toBe(401);
    const guessedText = await guessed.text();
    expect(guessedText).toContain("The username or password is wrong.");
    expect(guessedText).not.toContain("disabled");

    // Tenant acme's alice is someone else: her token, session and refresh are untouched.
    expect(await status(gateways[1], "/staff/x", acme.access_token)).toBe(200);
    expect(await (await acmeBrowser.get("/acme/login")).text()).toContain("You are signed in as user-alice");
    expect((await refresh(gateways[1].url, ACME, acme.refresh_token)).status).toBe(200);

    // Unblocked: logins work again; the revoked grant stays revoked.
    expect(await users(replicas[1]).unblockUser("user-alice")).toEqual({ kind: "unblocked" });
    expect((await signIn(new UserAgent(gateways[0].url), DEFAULT_TENANT, "alice")).status).toBe(303);
    expect((await refresh(gateways[0].url, DEFAULT_TENANT, tokens.refresh_token)).status).toBe(400);
    expect(await status(gateways[0], "/staff/x", tokens.access_token)).toBe(401);
  });

  it("an administrator lists a user's sessions and grants, ends one session and revokes one grant, at either replica", async () => {
    const before = await users(replicas[0]).listSessions("user-bob");
    const browser = await signedIn("bob", gateways[1]);
    const tokens = await codeFlow(browser, DEFAULT_TENANT, "read");
    const after = await users(replicas[1]).listSessions("user-bob");
    const added = after.filter((s) => !before.some((b) => b.sid === s.sid));
    expect(added).toHaveLength(1);
    expect(added[0]!.sid).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const grants = await users(replicas[0]).listGrants("user-bob");
    // A refresh token is `{grantId}.{secret}` (oauth/tokens.ts): the grant this flow started.
    const grantId = tokens.refresh_token.split(".")[0]!;
    const grant = grants.find((g) => g.grantId === grantId)!;
    expect(grant).toMatchObject({ clientId: "web", scopes: ["read"] });
    expect(JSON.stringify(grants)).not.toContain(tokens.refresh_token);

    expect(await users(replicas[0]).endSession("user-alice", added[0]!.sid)).toBe(false);
    expect(await users(replicas[0]).endSession("user-bob", added[0]!.sid)).toBe(true);
    expect(await (await browser.get("/login")).text()).toContain('name="password"');
    expect((await users(replicas[1]).listSessions("user-bob")).map((s) => s.sid)).toEqual(before.map((s) => s.sid));

    expect(await users(replicas[1]).revokeGrant("user-alice", grantId)).toBe(false);
    expect(await users(replicas[1]).revokeGrant("user-bob", grantId)).toBe(true);
    expect(await users(replicas[1]).revokeGrant("user-bob", grantId)).toBe(false);
    expect((await refresh(gateways[0].url, DEFAULT_TENANT, tokens.refresh_token)).status).toBe(400);
    expect((await users(replicas[0]).listGrants("user-bob")).map((g) => g.grantId)).not.toContain(grantId);
    expect((await users(replicas[0]).listGrants("user-bob")).length).toBe(grants.length - 1);
  });

  it("a user the configuration disables cannot sign in, and stays disabled through unblock; an unknown subject is said so", async () => {
    const refused = await signIn(new UserAgent(gateways[0].url), DEFAULT_TENANT, "carol");
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("This account is disabled");
    expect(await users(replicas[1]).blockUser("user-carol")).toMatchObject({ kind: "blocked" });
    expect(await users(replicas[1]).unblockUser("user-carol")).toEqual({ kind: "disabled_by_configuration" });
    expect((await users(replicas[0]).findUserRights("user-carol"))?.disabled).toBe(true);
    expect(await users(replicas[0]).blockUser("user-nobody")).toEqual({ kind: "unknown_user" });
    expect(await users(replicas[0]).unblockUser("user-nobody")).toEqual({ kind: "unknown_user" });
    expect(await users(replicas[0]).setUserGroups("user-nobody", ["x"])).toEqual({ kind: "unknown_user" });
    await expect(users(replicas[0]).setUserGroups("user-bob", ["Not A Slug"])).rejects.toThrow(/not a group name/);
  });
});

/** A browser signed in as `username` at a gateway (the first by default), in a tenant. */
async function signedIn(username: string, gateway: GuardGateway = gateways[0], tenant = DEFAULT_TENANT): Promise<UserAgent> {
  const agent = new UserAgent(gateway.url);
  const response = await signIn(agent, tenant, username);
  expect(response.status, `signing in as ${username}`).toBe(303);
  return agent;
}
