import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { pkcePair, TEST_PASSWORD_HASH, WEB_REDIRECT } from "../support/authz.js";
import { authorizeThroughGateway, formFields, signIn, unescapeHtml, UserAgent } from "../support/gateway-oauth-flow.js";
import { startTestStack, type TestStack } from "../support/stack.js";

/**
 * The login, logout and consent pages over HTTP: what they send (headers,
 * cookies, escaping), what they accept (CSRF tokens bound to the browser),
 * and what they say. The same flows run in Chromium in test/e2e.
 */
let stack: TestStack;
const XSS_NAME = `<script>alert("name")</script> & Co`;
const XSS_DESCRIPTION = `"><img src=x onerror=alert(1)> 'quoted'`;
const XSS_REDIRECT = "https://xss.test/cb";

beforeAll(async () => {
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      (file.users as unknown[]).push(
        { username: "bob", subject: "user-bob", passwordHash: TEST_PASSWORD_HASH },
        { username: "carol", subject: "user-carol", passwordHash: TEST_PASSWORD_HASH },
      );
      (file.scopes as unknown[]).push({ name: "evil", description: XSS_DESCRIPTION });
      (file.clients as unknown[]).push({ id: "xss", name: XSS_NAME, type: "public", redirectUris: [XSS_REDIRECT], scopes: ["evil"] });
    },
  });
});
afterAll(() => stack.close());

const webRequest = (state = "st") => ({
  response_type: "code",
  client_id: "web",
  redirect_uri: WEB_REDIRECT,
  scope: "read",
  state,
  code_challenge: pkcePair().challenge,
  code_challenge_method: "S256",
});

function expectPageHeaders(response: Response): void {
  expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
  const csp = response.headers.get("content-security-policy")!;
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("base-uri 'none'");
  expect(csp).not.toContain("unsafe-inline");
  expect(response.headers.get("x-frame-options")).toBe("DENY");
  expect(response.headers.get("x-content-type-options")).toBe("nosniff");
  expect(response.headers.get("referrer-policy")).toBe("no-referrer");
  expect(response.headers.get("cache-control")).toBe("no-store");
}

function sessionCookie(response: Response): string | undefined {
  return response.headers.getSetCookie().find((c) => c.startsWith("gatehouse_session="));
}

describe("the login page", () => {
  it("sends a strict CSP whose style hash matches its one inline stylesheet, and works on a phone", async () => {
    const response = await fetch(`${stack.gateway.url}/login`);
    expect(response.status).toBe(200);
    expectPageHeaders(response);
    const page = await response.text();
    const style = /<style>([\s\S]*?)<\/style>/.exec(page)![1]!;
    const hash = createHash("sha256").update(style).digest("base64");
    expect(response.headers.get("content-security-policy")).toContain(`style-src 'sha256-${hash}'`);
    expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(page).not.toContain("<script");
  });

  it("opens a session: an HttpOnly, SameSite=Lax cookie (no Secure on an http issuer), and a 303", async () => {
    const agent = new UserAgent(stack.gateway.url);
    const page = await agent.get("/login");
    const response = await agent.submit(await page.text(), "/login", { username: "alice", password: "correct horse" });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/login");
    const cookie = sessionCookie(response)!;
    expect(cookie).toMatch(/^gatehouse_session=[A-Za-z0-9_-]{43}; Max-Age=28800; Path=\/; HttpOnly; SameSite=Lax$/);
    const signedIn = await agent.get("/login");
    expect(await signedIn.text()).toContain("You are signed in as user-alice.");
  });

  it("a wrong password and an unknown user get the very same answer, which names neither", async () => {
    const answers = [];
    for (const [username, password] of [["alice", "wrong password"], ["nobody-by-this-name", "correct horse"]] as const) {
      const agent = new UserAgent(stack.gateway.url);
      const response = await agent.submit(await (await agent.get("/login")).text(), "/login", { username, password });
      expect(response.status).toBe(401);
      expectPageHeaders(response);
      expect(sessionCookie(response)).toBeUndefined();
      const page = await response.text();
      expect(page).toContain("The username or password is wrong.");
      // The username is kept for the next try (escaped), the password never.
      expect(page).toContain(`value="${username}"`);
      expect(page).not.toContain(password);
      answers.push(page.replace(username, "USER").replace(/value="[A-Za-z0-9_-]{43}"/, ""));
    }
    expect(answers[0]).toBe(answers[1]);
  });

  it("after repeated failures: 429 with Retry-After, and even the right password waits", async () => {
    const agent = new UserAgent(stack.gateway.url);
    const attempt = async (password: string) => agent.submit(await (await agent.get("/login")).text(), "/login", { username: "bob", password });
    for (let i = 0; i < 3; i++) expect((await attempt("wrong")).status).toBe(401);
    const limited = await attempt("correct horse");
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited.text()).toContain("Too many attempts. Try again later.");
    expect(sessionCookie(limited)).toBeUndefined();
  });

  it("login CSRF: a post without this browser's login cookie, or with another browser's token, is refused", async () => {
    const victim = new UserAgent(stack.gateway.url);
    const attacker = new UserAgent(stack.gateway.url);
    const attackerFields = formFields(await (await attacker.get("/login")).text(), "/login");
    // The attacker's own valid token, replayed from the victim's browser (which has its own login cookie).
    await victim.get("/login");
    const forged = await victim.post("/login", { ...attackerFields, username: "carol", password: "correct horse" });
    expect(forged.status).toBe(403);
    expect(sessionCookie(forged)).toBeUndefined();
    expect(await forged.text()).toContain("This sign-in form expired.");
    // No cookie at all.
    const bare = await fetch(`${stack.gateway.url}/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ ...attackerFields, username: "carol", password: "correct horse" }),
    });
    expect(bare.status).toBe(403);
  });

  it("a new login replaces the browser's old session (no session fixation)", async () => {
    const agent = new UserAgent(stack.gateway.url);
    // Two tabs with the login form; the second is used after the first signed in.
    const form = formFields(await (await agent.get("/login")).text(), "/login");
    expect((await agent.post("/login", { ...form, username: "alice", password: "correct horse" })).status).toBe(303);
    const first = agent.cookies.get("gatehouse_session")!;
    expect((await agent.post("/login", { ...form, username: "carol", password: "correct horse" })).status).toBe(303);
    const second = agent.cookies.get("gatehouse_session")!;
    expect(second).not.toBe(first);
    const old = new UserAgent(stack.gateway.url);
    old.cookies.set("gatehouse_session", first);
    expect(await (await old.get("/login")).text()).toContain('name="password"');
  });

  it("an unknown or malformed session cookie is simply no session", async () => {
    for (const value of ["A".repeat(43), "not a token; with spaces", "<script>"]) {
      const response = await fetch(`${stack.gateway.url}/login`, { headers: { cookie: `gatehouse_session=${value}` } });
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('name="password"');
    }
  });
});

describe("logout", () => {
  it("ends the session with a CSRF-protected POST and clears the cookie", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const token = agent.cookies.get("gatehouse_session")!;
    const signedIn = await (await agent.get("/logout")).text();
    expect(signedIn).toContain("Sign out");
    const response = await agent.submit(signedIn, "/logout");
    expect(response.status).toBe(200);
    expect(sessionCookie(response)).toMatch(/^gatehouse_session=; Max-Age=0;/);
    expect(await response.text()).toContain("You are signed out.");
    // The session is gone at the authz service, not only the cookie.
    const replay = new UserAgent(stack.gateway.url);
    replay.cookies.set("gatehouse_session", token);
    expect(await (await replay.get("/login")).text()).toContain('name="password"');
  });

  it("a POST without the session's CSRF token does not sign out; neither does a GET", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const forged = await agent.post("/logout", { csrf_token: "A".repeat(43) });
    expect(forged.status).toBe(403);
    expect((await agent.get("/logout")).status).toBe(200);
    expect(await (await agent.get("/login")).text()).toContain("You are signed in as user-alice.");
  });
});

describe("the authorization request through login and consent", () => {
  it("no session: the login page names the client, and signing in resumes the very same request", async () => {
    const agent = new UserAgent(stack.gateway.url);
    const request = webRequest("resume-1");
    const login = await agent.get(`/oauth2/authorize?${new URLSearchParams(request)}`);
    expect(login.status).toBe(200);
    expectPageHeaders(login);
    // form-action allows the client's origin: the login post may end in a redirect there.
    expect(login.headers.get("content-security-policy")).toContain("form-action 'self' https://web.test;");
    const page = await login.text();
    expect(page).toContain("to continue to <strong>Web App</strong>");
    const signedIn = await agent.submit(page, "/login", { username: "alice", password: "correct horse" });
    expect(signedIn.status).toBe(303);
    const resumed = new URL(signedIn.headers.get("location")!, stack.gateway.url);
    expect(resumed.pathname).toBe("/oauth2/authorize");
    expect(Object.fromEntries(resumed.searchParams)).toEqual(request);
    const consent = await agent.get(resumed.pathname + resumed.search);
    expect(consent.status).toBe(200);
    expect(await consent.text()).toContain("Read your things");
  });

  it("a resumed request that was tampered with into something malformed is refused", async () => {
    const agent = new UserAgent(stack.gateway.url);
    const page = await (await agent.get(`/oauth2/authorize?${new URLSearchParams(webRequest())}`)).text();
    const response = await agent.submit(page, "/login", { username: "alice", password: "correct horse", authorization_request: "client_id=web&state=%FF" });
    expect(response.status).toBe(400);
    expect(sessionCookie(response)).toBeUndefined();
  });

  it("the consent page shows the client's name and each scope's description, escaped", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const response = await agent.get(`/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: "xss", scope: "evil", state: "<b>s</b>", code_challenge: pkcePair().challenge, code_challenge_method: "S256" })}`);
    expect(response.status).toBe(200);
    expectPageHeaders(response);
    const page = await response.text();
    expect(page).not.toContain("<script>alert");
    expect(page).not.toContain("<img");
    expect(page).not.toContain("<b>s</b>");
    expect(page).toContain("&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt; &amp; Co");
    expect(page).toContain("&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &#39;quoted&#39;");
    expect(unescapeHtml(formFields(page, "/logout").authorization_request!)).toContain("state=%3Cb%3Es%3C%2Fb%3E");
  });

  it("consent CSRF: a decision form is bound to the session it was shown to", async () => {
    const alice = new UserAgent(stack.gateway.url);
    const carol = new UserAgent(stack.gateway.url);
    await signIn(alice);
    await signIn(carol, "carol");
    const page = await (await alice.get(`/oauth2/authorize?${new URLSearchParams(webRequest("csrf-1"))}`)).text();
    const stolen = formFields(page, "/oauth2/consent");
    const asCarol = await carol.post("/oauth2/consent", { ...stolen, decision: "allow" });
    expect(asCarol.status).toBe(403);
    expect(asCarol.headers.get("location")).toBeNull();
    const anonymous = await fetch(`${stack.gateway.url}/oauth2/consent`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ ...stolen, decision: "allow" }),
      redirect: "manual",
    });
    expect(anonymous.status).toBe(401);
    // A token for one request does not decide another.
    const other = formFields(await (await alice.get(`/oauth2/authorize?${new URLSearchParams(webRequest("csrf-2"))}`)).text(), "/oauth2/consent");
    const swapped = await alice.post("/oauth2/consent", { request_id: other.request_id!, csrf_token: stolen.csrf_token!, decision: "allow" });
    expect(swapped.status).toBe(403);
    // The genuine form still works.
    const genuine = await alice.post("/oauth2/consent", { ...stolen, decision: "allow" });
    expect(genuine.status).toBe(303);
    expect(new URL(genuine.headers.get("location")!).searchParams.get("state")).toBe("csrf-1");
  });

  it("a decision is made once: posting it again shows an error page, no second redirect", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent, "carol");
    const page = await (await agent.get(`/oauth2/authorize?${new URLSearchParams(webRequest("once"))}`)).text();
    const fields = formFields(page, "/oauth2/consent");
    expect((await agent.post("/oauth2/consent", { ...fields, decision: "allow" })).status).toBe(303);
    const again = await agent.post("/oauth2/consent", { ...fields, decision: "allow" });
    expect(again.status).toBe(400);
    expect(again.headers.get("location")).toBeNull();
    expect(await again.text()).toContain("expired or was already decided");
  });

  it("remembered consent skips the page; an unchecked 'remember' does not remember", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent, "carol");
    const request = { ...webRequest(), scope: "read write" };
    const page = await (await agent.get(`/oauth2/authorize?${new URLSearchParams(request)}`)).text();
    // No remember field: a one-off approval.
    const once = await agent.post("/oauth2/consent", { ...formFields(page, "/oauth2/consent"), decision: "allow" });
    expect(new URL(once.headers.get("location")!).searchParams.has("code")).toBe(true);
    expect((await authorizeThroughGateway(agent, { ...request, code_challenge: pkcePair().challenge })).consentShown).toBe(true);
    // authorizeThroughGateway approved with remember=yes: now it is skipped, 302 straight to the client.
    const third = await authorizeThroughGateway(agent, { ...request, code_challenge: pkcePair().challenge, state: "third" });
    expect(third.consentShown).toBe(false);
    expect(third.location.searchParams.get("state")).toBe("third");
    expect(third.location.searchParams.get("code")).toEqual(expect.any(String));
  });

  it("a first-party client skips the consent page", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const response = await agent.get(`/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: "legacy", scope: "read", state: "fp" })}`);
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get("location")!);
    expect(location.origin + location.pathname).toBe("https://legacy.test/cb");
    expect(location.searchParams.get("code")).toEqual(expect.any(String));
  });

  it("'Use another account' signs out and comes back to the login page for the same request", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const request = webRequest("switch");
    const consent = await (await agent.get(`/oauth2/authorize?${new URLSearchParams({ ...request, scope: "write" })}`)).text();
    const switched = await agent.submit(consent, "/logout");
    expect(switched.status).toBe(303);
    const back = new URL(switched.headers.get("location")!, stack.gateway.url);
    expect(back.searchParams.get("state")).toBe("switch");
    expect(agent.cookies.has("gatehouse_session")).toBe(false);
    expect(await (await agent.get(back.pathname + back.search)).text()).toContain('name="password"');
  });
});
