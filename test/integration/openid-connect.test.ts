import { createHash, createHmac } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt, decodeProtectedHeader } from "jose";
import fc from "fast-check";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { SECRETS, TEST_PASSWORD_HASH, WEB_REDIRECT } from "../support/authz.js";
import { authorizeThroughGateway, formFields, signIn, UserAgent } from "../support/gateway-oauth-flow.js";
import { startHttpsDocumentServer, type HttpsDocumentServer } from "../support/https-document-server.js";
import { startTestStack, type TestStack } from "../support/stack.js";

/**
 * openid-client (panva, v6, a certified OpenID Connect relying party) against
 * the gateway: it discovers, runs the code flow with PKCE and nonce, and
 * validates every ID Token it receives (signature against the JWKS, iss,
 * aud, azp, exp, iat, nonce, auth_time for max_age), so these tests fail on
 * anything that is not what OpenID Connect Core 1.0 asks for.
 */
let stack: TestStack;
/** The authz service's clock, moved forward to age a login (max_age). */
let clockOffsetMs = 0;
const ALICE = { name: "Alice Liddell", given_name: "Alice", family_name: "Liddell", email: "alice@example.test", email_verified: true, locale: "en-GB" };
const PAIRWISE_A = "https://a-sector.test/cb";
const PAIRWISE_B = "https://b-sector.test/cb";
/** A pairwise client on two hosts, whose sector comes from its sector_identifier_uri (served here). */
const PAIRWISE_C = ["https://c1.test/cb", "https://c2.test/cb"];
let sectorServer: HttpsDocumentServer;
let sectorUri: string;

beforeAll(async () => {
  sectorServer = await startHttpsDocumentServer();
  sectorServer.documents.set("/sector.json", PAIRWISE_C);
  sectorUri = `${sectorServer.base}/sector.json`;
  const dir = await mkdtemp(join(tmpdir(), "gatehouse-oidc-"));
  const saltFile = join(dir, "pairwise-salt");
  await writeFile(saltFile, "pairwise-salt-0123456789abcdefghijklmnopqrstuvwxyz");
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    authzOverrides: { clock: () => Date.now() + clockOffsetMs },
    patch: (file) => {
      // Core §5.4: the OpenID Connect scope values are defined like any scope.
      (file.scopes as Array<Record<string, unknown>>).push(
        { name: "openid", description: "Sign you in" },
        { name: "profile", description: "Your name and profile" },
        { name: "email", description: "Your email address" },
        { name: "phone", description: "Your phone number" },
        { name: "address", description: "Your postal address" },
      );
      const clients = file.clients as Array<Record<string, unknown>>;
      const web = clients.find((c) => c.id === "web")!;
      web.scopes = ["read", "write", "openid", "profile", "email", "phone", "address"];
      const pairwise = (id: string, redirect: string) => ({
        id,
        name: `Pairwise ${id}`,
        type: "confidential",
        secretHashes: [`sha256:${hashSecret(SECRETS.web)}`],
        redirectUris: [redirect],
        scopes: ["openid", "profile"],
        subjectType: "pairwise",
        firstParty: true,
      });
      clients.push(pairwise("pairwise-a", PAIRWISE_A), pairwise("pairwise-b", PAIRWISE_B));
      clients.push({ ...pairwise("pairwise-c", PAIRWISE_C[0]!), redirectUris: PAIRWISE_C, sectorIdentifierUri: sectorUri });
      (file.authz as Record<string, unknown>).openid = { acr: "urn:gatehouse:loa:pwd", pairwiseSalt: { file: saltFile } };
      // The sector_identifier_uri's server is on loopback with its own certificate: development settings of the one fetcher.
      (file.authz as Record<string, unknown>).fetch = { allowPrivateHosts: ["localhost"], trustedCa: { file: sectorServer.certificateFile } };
      file.users = [
        { username: "alice", subject: "user-alice", passwordHash: TEST_PASSWORD_HASH, claims: { ...ALICE, address: { locality: "Oxford", country: "GB" }, phone_number: "+44 1865 000000", phone_number_verified: false } },
        { username: "bob", subject: "user-bob", passwordHash: TEST_PASSWORD_HASH },
      ];
    },
  });
});
afterAll(async () => {
  await stack.close();
  await sectorServer.close();
});

async function discover(clientId = "web") {
  return client.discovery(new URL(stack.issuer), clientId, SECRETS.web, client.ClientSecretBasic(SECRETS.web), { execute: [client.allowInsecureRequests] });
}

/** The parameters openid-client would send, with PKCE and nonce; the checks to validate the answer with. */
async function authenticationRequest(config: client.Configuration, parameters: Record<string, string>, redirectUri = WEB_REDIRECT) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedNonce = client.randomNonce();
  const expectedState = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid",
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: "S256",
    nonce: expectedNonce,
    state: expectedState,
    ...parameters,
  });
  return { url, checks: { pkceCodeVerifier, expectedNonce, expectedState } };
}

/** Signs in as alice, runs the authentication request through the gateway (consent allowed), redeems the code with openid-client. */
async function signInWithOpenId(scope: string, options: { agent?: UserAgent; clientId?: string; redirectUri?: string; extra?: Record<string, string> } = {}) {
  const config = await discover(options.clientId);
  const agent = options.agent ?? new UserAgent(stack.gateway.url);
  if (options.agent === undefined) await signIn(agent);
  const redirectUri = options.redirectUri ?? WEB_REDIRECT;
  const { url, checks } = await authenticationRequest(config, { scope, ...options.extra }, redirectUri);
  const { location } = await authorizeThroughGateway(agent, Object.fromEntries(url.searchParams));
  const tokens = await client.authorizationCodeGrant(config, location, checks, { redirect_uri: redirectUri });
  return { config, agent, tokens, checks };
}

/** The error a redirect carries, with its state. */
function errorAt(location: URL): Record<string, string> {
  return Object.fromEntries(location.searchParams);
}

describe("OpenID Connect with openid-client as the relying party", () => {
  it("Discovery 1.0 §4: openid-client discovers the issuer; every REQUIRED member is there and the RFC 8414 document is the same", async () => {
    const config = await discover();
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(stack.issuer);
    expect(metadata.userinfo_endpoint).toBe(`${stack.issuer}/oauth2/userinfo`);
    expect(metadata.response_types_supported).toContain("code");
    expect(metadata.subject_types_supported).toEqual(["public", "pairwise"]);
    expect(metadata.id_token_signing_alg_values_supported).toEqual(["ES256"]);
    expect(metadata.id_token_signing_alg_values_supported).not.toContain("none");
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(["openid", "profile", "email", "address", "phone"]));
    expect(metadata.claims_supported).toEqual(expect.arrayContaining(["sub", "name", "email", "address", "auth_time", "nonce"]));
    expect(metadata.claims_parameter_supported).toBe(false);
    expect(metadata.request_parameter_supported).toBe(false);
    expect(metadata.request_uri_parameter_supported).toBe(false);
    expect(metadata.acr_values_supported).toEqual(["urn:gatehouse:loa:pwd"]);
    const rfc8414 = await (await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`)).json();
    const openid = await (await fetch(`${stack.issuer}/.well-known/openid-configuration`)).json();
    expect(openid).toEqual(rfc8414);
  });

  it("Core §3.1.3.7: code + PKCE + nonce; openid-client validates the ID Token (signature, iss, aud, azp, nonce), which carries auth_time, sid, amr, acr and at_hash", async () => {
    const { tokens, checks } = await signInWithOpenId("openid profile");
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({
      iss: stack.issuer,
      sub: "user-alice",
      aud: "web",
      azp: "web",
      nonce: checks.expectedNonce,
      amr: ["pwd"],
      acr: "urn:gatehouse:loa:pwd",
    });
    expect(claims.auth_time).toEqual(expect.any(Number));
    expect(claims.sid).toEqual(expect.any(String));
    // §3.1.3.6: at_hash is the left half of SHA-256 (ES256) of the access token.
    const digest = createHash("sha256").update(tokens.access_token).digest();
    expect(claims.at_hash).toBe(digest.subarray(0, 16).toString("base64url"));
    expect(decodeProtectedHeader(tokens.id_token!)).toMatchObject({ alg: "ES256", kid: "test-1", typ: "JWT" });
    // §3.1.3.6: claims of the profile scope go to UserInfo, not the ID Token, when an access token is issued.
    expect(claims).not.toHaveProperty("name");
  });

  it("Core §5.3: UserInfo answers GET and POST with the claims of the granted scopes, sub as in the ID Token", async () => {
    const { config, tokens } = await signInWithOpenId("openid profile email");
    const sub = tokens.claims()!.sub;
    const info = await client.fetchUserInfo(config, tokens.access_token, sub);
    expect(info).toEqual({ sub, ...ALICE, locale: "en-GB" });
    expect(info).not.toHaveProperty("address");
    expect(info).not.toHaveProperty("phone_number");

    const posted = await fetch(`${stack.issuer}/oauth2/userinfo`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ access_token: tokens.access_token }).toString(),
    });
    expect(posted.status).toBe(200);
    expect(posted.headers.get("cache-control")).toBe("no-store");
    expect(await posted.json()).toEqual(info);

    // The same as an RPC for internal services.
    const rpc = await stack.authz.authz.getUserInfo({ accessToken: tokens.access_token });
    expect(JSON.parse(rpc.claimsJson)).toEqual(info);
  });

  it("Core §5.3.3 + RFC 6750 §3: UserInfo refuses a missing, invalid, or non-openid token with WWW-Authenticate", async () => {
    const none = await fetch(`${stack.issuer}/oauth2/userinfo`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="gatehouse"');

    // A browser-based client's preflight is allowed (the token travels in the Authorization header).
    const preflight = await fetch(`${stack.issuer}/oauth2/userinfo`, { method: "OPTIONS", headers: { origin: "https://spa.test", "access-control-request-headers": "authorization" } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");

    const invalid = await fetch(`${stack.issuer}/oauth2/userinfo`, { headers: { authorization: "Bearer not.a.token" } });
    expect(invalid.status).toBe(401);
    expect(invalid.headers.get("www-authenticate")).toMatch(/^Bearer realm="gatehouse", error="invalid_token"/);

    // A plain OAuth token (no openid scope) is insufficient_scope.
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const config = await discover();
    const { url, checks } = await authenticationRequest(config, { scope: "read" });
    url.searchParams.delete("nonce");
    const { location } = await authorizeThroughGateway(agent, Object.fromEntries(url.searchParams));
    const plain = await client.authorizationCodeGrant(config, location, { ...checks, expectedNonce: undefined, idTokenExpected: false }, { redirect_uri: WEB_REDIRECT });
    expect(plain.id_token).toBeUndefined();
    const refused = await fetch(`${stack.issuer}/oauth2/userinfo`, { headers: { authorization: `Bearer ${plain.access_token}` } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect(refused.headers.get("www-authenticate")).toContain('scope="openid"');
  });

  it("Core §12.2: a refresh of an openid grant returns a new ID Token with the same sub and auth_time and no nonce", async () => {
    const { config, tokens } = await signInWithOpenId("openid");
    const first = tokens.claims()!;
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    const second = refreshed.claims()!;
    expect(refreshed.id_token).not.toBe(tokens.id_token);
    expect(second).toMatchObject({ sub: first.sub, auth_time: first.auth_time, sid: first.sid, aud: "web", iss: stack.issuer });
    expect(second).not.toHaveProperty("nonce");
  });

  it("Core §3.1.2.1 prompt=none: without a session login_required; with one and remembered consent a code; without consent consent_required; state kept", async () => {
    const config = await discover();
    const anonymous = new UserAgent(stack.gateway.url);
    const { url } = await authenticationRequest(config, { prompt: "none", state: "s-none" });
    const withoutSession = await anonymous.get(url.href);
    expect(withoutSession.status).toBe(302);
    expect(errorAt(new URL(withoutSession.headers.get("location")!))).toMatchObject({ error: "login_required", state: "s-none", iss: stack.issuer });

    // bob has never consented to web.
    const bob = new UserAgent(stack.gateway.url);
    await signIn(bob, "bob");
    const noConsent = await bob.get((await authenticationRequest(config, { prompt: "none", state: "s-bob", scope: "openid email" })).url.href);
    expect(errorAt(new URL(noConsent.headers.get("location")!))).toMatchObject({ error: "consent_required", state: "s-bob" });

    // alice consents (remembered), then prompt=none succeeds silently and openid-client validates the result.
    const { agent } = await signInWithOpenId("openid");
    const silent = await authenticationRequest(config, { prompt: "none" });
    const response = await agent.get(silent.url.href);
    expect(response.status).toBe(302);
    const tokens = await client.authorizationCodeGrant(config, new URL(response.headers.get("location")!), silent.checks, { redirect_uri: WEB_REDIRECT });
    expect(tokens.claims()!.sub).toBe("user-alice");
  });

  it("Core §3.1.2.1 prompt=login (and select_account): the login page over an existing session, then the code with a new auth_time", async () => {
    const { agent, tokens: before } = await signInWithOpenId("openid");
    for (const prompt of ["login", "select_account"]) {
      clockOffsetMs += 2_000;
      const config = await discover();
      const { url, checks } = await authenticationRequest(config, { prompt, login_hint: "alice" });
      const page = await agent.get(url.href);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain("Sign in");
      // login_hint pre-fills the user name.
      expect(html).toContain('value="alice"');
      const fields = formFields(html, "/login");
      expect(new URLSearchParams(fields.authorization_request).get("prompt")).toBeNull();
      const loggedIn = await agent.post("/login", { ...fields, username: "alice", password: "correct horse" });
      expect(loggedIn.status).toBe(303);
      const resumed = await agent.get(loggedIn.headers.get("location")!);
      expect(resumed.status).toBe(302);
      const after = await client.authorizationCodeGrant(config, new URL(resumed.headers.get("location")!), checks, { redirect_uri: WEB_REDIRECT });
      expect(after.claims()!.auth_time).toBeGreaterThan(before.claims()!.auth_time!);
    }
  });

  it("Core §3.1.2.1 max_age: a login older than max_age forces a new one; openid-client checks auth_time against it", async () => {
    const { agent } = await signInWithOpenId("openid");
    clockOffsetMs += 20_000;
    const config = await discover();
    const { url, checks } = await authenticationRequest(config, { max_age: "10" });
    const page = await agent.get(url.href);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Sign in");
    const loggedIn = await agent.post("/login", { ...formFields(html, "/login"), username: "alice", password: "correct horse" });
    const resumed = await agent.get(loggedIn.headers.get("location")!);
    expect(resumed.status).toBe(302);
    // The clock of the authz service runs ahead here; openid-client allows for skew.
    const tokens = await client.authorizationCodeGrant(config, new URL(resumed.headers.get("location")!), { ...checks, maxAge: 3_600 }, { redirect_uri: WEB_REDIRECT });
    expect(tokens.claims()!.auth_time).toEqual(expect.any(Number));

    // A fresh enough login is not asked again.
    const again = await authenticationRequest(config, { max_age: "3600" });
    expect((await agent.get(again.url.href)).status).toBe(302);
  });

  it("Core §3.1.2.1 prompt=consent: the consent page even when consent is remembered; the page greets the user by name", async () => {
    const { agent } = await signInWithOpenId("openid");
    const config = await discover();
    const { url } = await authenticationRequest(config, { prompt: "consent" });
    const page = await agent.get(url.href);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("wants to access your account");
    expect(html).toContain("Hello, Alice Liddell");
  });

  it("Core §3.1.2.1 id_token_hint: with prompt=none, the hint of the signed-in user gives a code; bob's hint with alice signed in is login_required", async () => {
    const { agent, tokens } = await signInWithOpenId("openid");
    const config = await discover();
    const ok = await authenticationRequest(config, { prompt: "none", id_token_hint: tokens.id_token! });
    const silent = await agent.get(ok.url.href);
    expect(new URL(silent.headers.get("location")!).searchParams.has("code")).toBe(true);

    const bob = new UserAgent(stack.gateway.url);
    await signIn(bob, "bob");
    const other = await authenticationRequest(config, { prompt: "none", id_token_hint: tokens.id_token!, state: "s-hint" });
    const refused = await bob.get(other.url.href);
    expect(errorAt(new URL(refused.headers.get("location")!))).toMatchObject({ error: "login_required", state: "s-hint" });
  });

  it("Core §8.1: pairwise clients of two sectors see two different subs for alice, neither her own; UserInfo says the same sub", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const a = await signInWithOpenId("openid profile", { agent, clientId: "pairwise-a", redirectUri: PAIRWISE_A });
    const b = await signInWithOpenId("openid profile", { agent, clientId: "pairwise-b", redirectUri: PAIRWISE_B });
    const subA = a.tokens.claims()!.sub;
    const subB = b.tokens.claims()!.sub;
    expect(subA).not.toBe(subB);
    expect([subA, subB]).not.toContain("user-alice");
    expect((await client.fetchUserInfo(a.config, a.tokens.access_token, subA)).name).toBe("Alice Liddell");
    // The same client always sees the same sub.
    const again = await signInWithOpenId("openid", { agent, clientId: "pairwise-a", redirectUri: PAIRWISE_A });
    expect(again.tokens.claims()!.sub).toBe(subA);

    // A client on two hosts: its sector is its sector_identifier_uri's host, whose document (fetched at start) lists both.
    const c1 = await signInWithOpenId("openid", { agent, clientId: "pairwise-c", redirectUri: PAIRWISE_C[0]! });
    const c2 = await signInWithOpenId("openid", { agent, clientId: "pairwise-c", redirectUri: PAIRWISE_C[1]! });
    expect(c1.tokens.claims()!.sub).toBe(c2.tokens.claims()!.sub);
    expect([subA, subB, "user-alice"]).not.toContain(c1.tokens.claims()!.sub);
    const salt = "pairwise-salt-0123456789abcdefghijklmnopqrstuvwxyz";
    const expected = createHmac("sha256", salt).update(`${new URL(sectorUri).host}\u0000user-alice`).digest("base64url");
    expect(c1.tokens.claims()!.sub).toBe(expected);
  });

  it("Core §3.1.2.6: bad authentication request parameters are specific errors, redirected to the client with state, never a 500", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const config = await discover();
    const foreign = await (async () => {
      const { SignJWT, generateKeyPair } = await import("jose");
      const { privateKey } = await generateKeyPair("ES256");
      return new SignJWT({ sub: "user-alice", aud: "web" }).setProtectedHeader({ alg: "ES256", kid: "test-1" }).setIssuer(stack.issuer).setIssuedAt().sign(privateKey);
    })();
    const cases: Array<[Record<string, string>, string]> = [
      [{ prompt: "sometimes" }, "invalid_request"],
      [{ prompt: "none login" }, "invalid_request"],
      [{ max_age: "-1" }, "invalid_request"],
      [{ max_age: "ten" }, "invalid_request"],
      [{ nonce: "n".repeat(513) }, "invalid_request"],
      [{ display: "hologram" }, "invalid_request"],
      [{ id_token_hint: "not-a-jwt" }, "invalid_request"],
      [{ id_token_hint: foreign }, "invalid_request"],
      [{ request: "eyJhbGciOiJub25lIn0.e30." }, "request_not_supported"],
      [{ request_uri: "https://web.test/request.jwt" }, "request_uri_not_supported"],
    ];
    for (const [parameters, error] of cases) {
      const { url } = await authenticationRequest(config, { ...parameters, state: "s-bad" });
      const response = await agent.get(url.href);
      expect(response.status, JSON.stringify(parameters)).toBe(302);
      const location = new URL(response.headers.get("location")!);
      expect(location.origin + location.pathname).toBe(WEB_REDIRECT);
      expect(errorAt(location), JSON.stringify(parameters)).toMatchObject({ error, state: "s-bad", iss: stack.issuer });
    }
    // ui_locales, claims_locales and display=popup are accepted.
    const accepted = await authenticationRequest(config, { ui_locales: "de en", claims_locales: "de", display: "popup" });
    expect((await agent.get(accepted.url.href)).status).not.toBe(500);
  });

  it("Core §3.1.2.1: an ID Token issued to another client is refused as id_token_hint", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const a = await signInWithOpenId("openid", { agent, clientId: "pairwise-a", redirectUri: PAIRWISE_A });
    expect(decodeJwt(a.tokens.id_token!).aud).toBe("pairwise-a");
    const config = await discover();
    const { url } = await authenticationRequest(config, { id_token_hint: a.tokens.id_token!, state: "s-aud" });
    const response = await agent.get(url.href);
    expect(errorAt(new URL(response.headers.get("location")!))).toMatchObject({ error: "invalid_request", state: "s-aud" });
  });

  it("Core §5.4 (oidcc-scope-all, oidcc-ensure-other-scope-order-succeeds): every scope in any order releases every claim the user has", async () => {
    const { config, tokens } = await signInWithOpenId("email phone openid address profile");
    const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    expect(info).toMatchObject({ ...ALICE, address: { locality: "Oxford", country: "GB" }, phone_number: "+44 1865 000000", phone_number_verified: false });
  });

  it("Core §3.1.2.1 (oidcc-ensure-request-without-nonce-succeeds-for-code-flow): nonce is optional in the code flow; the ID Token then has none", async () => {
    const config = await discover();
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const { url, checks } = await authenticationRequest(config, {});
    url.searchParams.delete("nonce");
    const { location } = await authorizeThroughGateway(agent, Object.fromEntries(url.searchParams));
    const tokens = await client.authorizationCodeGrant(config, location, { ...checks, expectedNonce: undefined }, { redirect_uri: WEB_REDIRECT });
    expect(tokens.claims()).not.toHaveProperty("nonce");
  });

  it("Core §3.1.2.1 (oidcc-ensure-post-request-succeeds): the authorization endpoint takes POST too, as the same request", async () => {
    const { agent } = await signInWithOpenId("openid");
    const config = await discover();
    const { url, checks } = await authenticationRequest(config, {});
    const posted = await agent.post("/oauth2/authorize", Object.fromEntries(url.searchParams));
    expect(posted.status).toBe(303);
    const followed = await agent.get(posted.headers.get("location")!);
    expect(followed.status).toBe(302);
    const tokens = await client.authorizationCodeGrant(config, new URL(followed.headers.get("location")!), checks, { redirect_uri: WEB_REDIRECT });
    expect(tokens.claims()!.sub).toBe("user-alice");
  });

  it("Core §3.1.2.1 (oidcc-ensure-request-with-unknown-parameter-succeeds, -acr-values-, ui-locales, claims-locales, display-page): accepted, and the flow completes", async () => {
    const { agent } = await signInWithOpenId("openid");
    const config = await discover();
    const { url, checks } = await authenticationRequest(config, {
      extra_parameter: "ignored",
      acr_values: "urn:gatehouse:loa:pwd",
      ui_locales: "se",
      claims_locales: "se",
      display: "page",
      claims: JSON.stringify({ userinfo: { email: { essential: true } } }),
    });
    const response = await agent.get(url.href);
    expect(response.status).toBe(302);
    const tokens = await client.authorizationCodeGrant(config, new URL(response.headers.get("location")!), checks, { redirect_uri: WEB_REDIRECT });
    expect(tokens.claims()!.acr).toBe("urn:gatehouse:loa:pwd");
  });

  it("Core §3.1.2.6: any mix of OpenID Connect parameters, valid or not, is answered (page or redirect), never a 5xx", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const config = await discover();
    const value = fc.oneof(fc.constantFrom("", "none", "login", "consent", "0", "-1", "1e9", "page", "x.y.z", "%", "\u0000"), fc.string({ maxLength: 40 }));
    await fc.assert(
      fc.asyncProperty(fc.record({ prompt: value, max_age: value, nonce: value, display: value, id_token_hint: value, login_hint: value, ui_locales: value }), async (parameters) => {
        const { url } = await authenticationRequest(config, parameters);
        const response = await agent.get(url.href);
        await response.body?.cancel();
        return [200, 302, 400].includes(response.status);
      }),
      { numRuns: 40 },
    );
  });
});
