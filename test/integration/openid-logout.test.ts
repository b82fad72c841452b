import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { SECRETS, WEB_REDIRECT } from "../support/authz.js";
import { authorizeThroughGateway, formFields, signIn, UserAgent } from "../support/gateway-oauth-flow.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";
import { readMetric } from "./guard-fixtures.js";

/**
 * OpenID Connect RP-Initiated Logout 1.0 and Back-Channel Logout 1.0, with
 * openid-client building the logout URL and a test receiver standing in for
 * the relying party's back-channel logout endpoint: it verifies each Logout
 * Token against the gateway's JWKS as a relying party must (§2.6).
 */
const LOGGED_OUT = "https://web.test/logged-out";
const FLAKY_REDIRECT = "https://flaky.test/cb";

interface Received {
  body: URLSearchParams;
  contentType: string | undefined;
}

/** A back-channel logout endpoint: records what it receives, answers with `status`. */
async function startReceiver(status: number): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => {
      received.push({ body: new URLSearchParams(body), contentType: request.headers["content-type"] });
      response.writeHead(status, { "cache-control": "no-store" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`, received };
}

let stack: TestStack;
/** The authz service's clock, moved past a session's lifetime by the last test (sessions expire). */
let clockOffsetMs = 0;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let failing: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  receiver = await startReceiver(200);
  failing = await startReceiver(500);
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    // Retries of a failing back-channel delivery follow one another without waiting.
    authzOverrides: { sleep: async () => undefined, clock: () => Date.now() + clockOffsetMs },
    patch: (file) => {
      (file.scopes as Array<Record<string, unknown>>).push({ name: "openid", description: "Sign you in" });
      const clients = file.clients as Array<Record<string, unknown>>;
      const web = clients.find((c) => c.id === "web")!;
      Object.assign(web, {
        scopes: ["read", "openid"],
        postLogoutRedirectUris: [LOGGED_OUT],
        backchannelLogoutUri: receiver.url,
        revokeOnLogout: true,
        firstParty: true,
      });
      clients.push({
        id: "flaky",
        name: "Flaky App",
        type: "confidential",
        secretHashes: [`sha256:${hashSecret(SECRETS.web)}`],
        redirectUris: [FLAKY_REDIRECT],
        scopes: ["openid"],
        firstParty: true,
        backchannelLogoutUri: failing.url,
      });
    },
  });
});
afterAll(async () => {
  await stack.close();
  for (const { server } of [receiver, failing]) await new Promise((resolve) => server.close(resolve));
});

async function discover(clientId = "web") {
  return client.discovery(new URL(stack.issuer), clientId, SECRETS.web, client.ClientSecretBasic(SECRETS.web), { execute: [client.allowInsecureRequests] });
}

/** Signs in and runs an OpenID Connect code flow for `clientId` in that session. */
async function signedInWithTokens(agent = new UserAgent(stack.gateway.url), clientId = "web", redirectUri = WEB_REDIRECT) {
  if (agent.cookies.size === 0) await signIn(agent);
  const config = await discover(clientId);
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedNonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid",
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: "S256",
    nonce: expectedNonce,
  });
  const { location } = await authorizeThroughGateway(agent, Object.fromEntries(url.searchParams));
  const tokens = await client.authorizationCodeGrant(config, location, { pkceCodeVerifier, expectedNonce, expectedState: client.skipStateCheck }, { redirect_uri: redirectUri });
  return { agent, config, tokens };
}

async function isSignedIn(agent: UserAgent): Promise<boolean> {
  const page = await (await agent.get("/login")).text();
  return page.includes("You are signed in");
}

const authzMetric = async (name: string, labels: Record<string, string>) => readMetric(await (await fetch(`${stack.authz.running.url}/metrics`)).text(), name, labels);

describe("OpenID Connect logout", () => {
  it("Discovery: end_session_endpoint and back-channel logout support are advertised", async () => {
    const metadata = (await discover()).serverMetadata();
    expect(metadata.end_session_endpoint).toBe(`${stack.issuer}/oauth2/end-session`);
    expect(metadata.backchannel_logout_supported).toBe(true);
    expect(metadata.backchannel_logout_session_supported).toBe(true);
  });

  it("RP-Initiated Logout §2 with id_token_hint: the session ends at once, the browser goes to post_logout_redirect_uri with state, and the grant is revoked (revokeOnLogout)", async () => {
    const { agent, config, tokens } = await signedInWithTokens();
    const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: LOGGED_OUT, state: "bye-1" });
    const response = await agent.get(url.href);
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe(`${LOGGED_OUT}?state=bye-1`);
    expect(await isSignedIn(agent)).toBe(false);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("Back-Channel Logout §2.4–§2.6: the client's endpoint receives a Logout Token it can verify: signature, iss, aud, events, the session's sid and sub, no nonce", async () => {
    const before = receiver.received.length;
    const { agent, config, tokens } = await signedInWithTokens();
    const idToken = tokens.claims()!;
    await agent.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }).href);
    const delivery = await waitFor(() => receiver.received.slice(before).find((r) => decodeJwt(r.body.get("logout_token")!).sid === idToken.sid), {
      budgetMs: 5_000,
      what: "the logout token of the session",
    });
    expect(delivery.contentType).toBe("application/x-www-form-urlencoded");
    const jwks = createRemoteJWKSet(new URL(`${stack.issuer}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(delivery.body.get("logout_token")!, jwks, {
      issuer: stack.issuer,
      audience: "web",
      typ: "logout+jwt",
      maxTokenAge: "2 minutes",
      requiredClaims: ["iat", "exp", "jti", "events"],
    });
    expect(protectedHeader.alg).toBe("ES256");
    expect(payload.events).toEqual({ "http://schemas.openid.net/event/backchannel-logout": {} });
    expect(payload).toMatchObject({ sid: idToken.sid, sub: idToken.sub });
    expect(payload).not.toHaveProperty("nonce");
  });

  it("RP-Initiated Logout §2 without id_token_hint: the user confirms on a page first; 'stay' keeps the session, 'sign out' ends it and redirects with state", async () => {
    const { agent } = await signedInWithTokens();
    const url = `/oauth2/end-session?${new URLSearchParams({ client_id: "web", post_logout_redirect_uri: LOGGED_OUT, state: "bye-2" })}`;
    const page = await agent.get(url);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Web App asks you to sign out");
    expect(await isSignedIn(agent)).toBe(true);

    const stay = await agent.post("/oauth2/end-session", { ...formFields(html, "/oauth2/end-session"), decision: "stay" });
    expect(stay.status).toBe(200);
    expect(await isSignedIn(agent)).toBe(true);

    const confirm = await agent.post("/oauth2/end-session", { ...formFields(html, "/oauth2/end-session"), decision: "logout" });
    expect(confirm.status).toBe(303);
    expect(confirm.headers.get("location")).toBe(`${LOGGED_OUT}?state=bye-2`);
    expect(await isSignedIn(agent)).toBe(false);
  });

  it("RP-Initiated Logout §2: a confirmation form is bound to the session that saw it; a forged one is refused", async () => {
    const { agent } = await signedInWithTokens();
    const html = await (await agent.get("/oauth2/end-session")).text();
    const other = new UserAgent(stack.gateway.url);
    await signIn(other);
    const forged = await other.post("/oauth2/end-session", { ...formFields(html, "/oauth2/end-session"), decision: "logout" });
    expect(forged.status).toBe(403);
    expect(await isSignedIn(other)).toBe(true);
  });

  it("RP-Initiated Logout §2: an id_token_hint from another session asks for confirmation instead of ending this one", async () => {
    const { config, tokens } = await signedInWithTokens();
    const { agent } = await signedInWithTokens(new UserAgent(stack.gateway.url));
    const page = await agent.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }).href);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Sign out?");
    expect(await isSignedIn(agent)).toBe(true);
  });

  it("RP-Initiated Logout §3: an unregistered post_logout_redirect_uri is refused on an error page, never redirected to; nor one without a client", async () => {
    const { agent, config, tokens } = await signedInWithTokens();
    const unregistered = await agent.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: "https://evil.test/" }).href);
    expect(unregistered.status).toBe(400);
    expect(unregistered.headers.get("location")).toBeNull();
    const anonymous = await agent.get(`/oauth2/end-session?${new URLSearchParams({ post_logout_redirect_uri: LOGGED_OUT })}`);
    expect(anonymous.status).toBe(400);
    const mismatch = await agent.get(`/oauth2/end-session?${new URLSearchParams({ id_token_hint: tokens.id_token!, client_id: "flaky" })}`);
    expect(mismatch.status).toBe(400);
    const garbage = await agent.get(`/oauth2/end-session?${new URLSearchParams({ id_token_hint: "not-a-token" })}`);
    expect(garbage.status).toBe(400);
    // A parameter given twice is refused on an error page too, before anything is looked at.
    const repeated = await agent.get(`/oauth2/end-session?state=a&state=b`);
    expect(repeated.status).toBe(400);
    expect(repeated.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await isSignedIn(agent)).toBe(true);
  });

  it("RP-Initiated Logout §2: without a session there is nothing to end: straight to post_logout_redirect_uri", async () => {
    const { config, tokens } = await signedInWithTokens();
    const anonymous = new UserAgent(stack.gateway.url);
    const response = await anonymous.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: LOGGED_OUT, state: "s" }).href);
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe(`${LOGGED_OUT}?state=s`);
  });

  it("Back-Channel Logout: a client endpoint that fails is retried, then counted as failed; the user's logout is not held up by it", async () => {
    const failedBefore = await authzMetric("gatehouse_authz_backchannel_logout_total", { outcome: "failed" });
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    await signedInWithTokens(agent, "flaky", FLAKY_REDIRECT);
    const attemptsBefore = failing.received.length;
    // Signing out at the gateway's own logout page ends the session the same way.
    const page = await (await agent.get("/logout")).text();
    const signedOut = await agent.post("/logout", formFields(page, "/logout"));
    expect(signedOut.status).toBe(200);
    await waitFor(async () => (await authzMetric("gatehouse_authz_backchannel_logout_total", { outcome: "failed" })) > failedBefore, {
      budgetMs: 10_000,
      what: "the failed delivery to be counted",
    });
    expect(failing.received.length - attemptsBefore).toBe(3);
    expect(await authzMetric("gatehouse_authz_backchannel_logout_total", { outcome: "retried" })).toBeGreaterThanOrEqual(2);
  });

  it("RP-Initiated Logout (oidcc-rp-initiated-logout-modified-id-token-hint): an id_token_hint with a broken signature is refused", async () => {
    const { agent, tokens } = await signedInWithTokens();
    const [header, payload, signature] = tokens.id_token!.split(".");
    const modified = `${header}.${payload}.${signature!.slice(0, -4)}${signature!.slice(-4) === "AAAA" ? "BBBB" : "AAAA"}`;
    const response = await agent.get(`/oauth2/end-session?${new URLSearchParams({ id_token_hint: modified, post_logout_redirect_uri: LOGGED_OUT })}`);
    expect(response.status).toBe(400);
    expect(await isSignedIn(agent)).toBe(true);
  });

  it("RP-Initiated Logout (oidcc-rp-initiated-logout-no-state, -only-state, -no-post-logout-redirect-uri): without state the redirect carries none; without a redirect URI a page says so", async () => {
    const first = await signedInWithTokens();
    const noState = await first.agent.get(client.buildEndSessionUrl(first.config, { id_token_hint: first.tokens.id_token!, post_logout_redirect_uri: LOGGED_OUT }).href);
    expect(noState.headers.get("location")).toBe(LOGGED_OUT);
    const second = await signedInWithTokens();
    const onlyState = await second.agent.get(client.buildEndSessionUrl(second.config, { id_token_hint: second.tokens.id_token!, state: "s" }).href);
    expect(onlyState.status).toBe(200);
    expect(await onlyState.text()).toContain("You are signed out.");
    expect(await isSignedIn(second.agent)).toBe(false);
  });

  // Last: it moves the authz service's clock hours ahead, which the relying party would not accept for later tokens.
  it("Back-Channel Logout: a session that expires is announced too, once, by the sweep (and revokeOnLogout applies)", async () => {
    const before = receiver.received.length;
    const { config, tokens } = await signedInWithTokens();
    const sid = tokens.claims()!.sid;
    clockOffsetMs += 8 * 3_600_000 + 1_000; // the default session lifetime, and a second
    while ((await stack.authz.running.deps.server().endExpiredSessions()) > 0);
    const delivery = await waitFor(() => receiver.received.slice(before).find((r) => decodeJwt(r.body.get("logout_token")!).sid === sid), {
      budgetMs: 5_000,
      what: "the logout token of the expired session",
    });
    expect(decodeJwt(delivery.body.get("logout_token")!)).toMatchObject({ aud: "web", sub: "user-alice" });
    expect(receiver.received.slice(before).filter((r) => decodeJwt(r.body.get("logout_token")!).sid === sid)).toHaveLength(1);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
  });
});
