import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { createDemoClient } from "../../demo/demo-client.js";
import { TEST_PASSWORD_HASH } from "../support/authz.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.js";

/**
 * The OpenID Connect pages in a real Chromium: the demo app (oauth4webapi)
 * signing in with OpenID Connect, the consent page's greeting, prompt=login
 * with login_hint, and RP-Initiated Logout's confirmation page, all without a
 * Content-Security-Policy violation (the confirmation form's redirect to the
 * client is allowed by form-action).
 *
 * Budgets as in gateway-oauth-browser.test.ts: 20 s quiet per test and for
 * beforeAll, 10 s quiet per page action, scaled by TEST_TIME_SCALE.
 */
let stack: TestStack;
let browser: Browser;
let context: BrowserContext;
let cspViolations: string[];
let app: FastifyInstance;
let appUrl: string;

beforeAll(async () => {
  const port = await freePort();
  appUrl = `http://127.0.0.1:${port}/`;
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      (file.scopes as unknown[]).push({ name: "openid", description: "Sign you in" }, { name: "profile", description: "See your name" });
      (file.users as unknown[]).push({ username: "carol", subject: "user-carol", passwordHash: TEST_PASSWORD_HASH, claims: { name: "Carol Danvers" } });
      (file.clients as unknown[]).push({
        id: "oidc-app",
        name: "OIDC Test App",
        type: "public",
        redirectUris: [`${appUrl}callback`],
        postLogoutRedirectUris: [appUrl],
        scopes: ["openid", "profile", "read"],
      });
    },
  });
  app = await createDemoClient({ issuer: stack.issuer, clientId: "oidc-app", redirectUri: `${appUrl}callback`, scope: "openid profile read", apiBase: stack.gateway.url });
  await app.listen({ host: "127.0.0.1", port });
  expect((app.server.address() as AddressInfo).port).toBe(port);
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, scaledBudget(20_000));

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await stack?.close();
});

beforeEach(async () => {
  context = await browser.newContext();
  context.setDefaultTimeout(scaledBudget(10_000));
  cspViolations = [];
  context.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
  });
});
afterEach(async () => {
  await context.close();
  expect(cspViolations).toEqual([]);
});

describe("OpenID Connect pages in Chromium", () => {
  it("sign-in: the consent page greets the user by name; the app shows the validated ID Token claims and UserInfo", { timeout: scaledBudget(20_000) }, async () => {
    const page = await context.newPage();
    await page.goto(appUrl);
    await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
    await page.getByLabel("Username").fill("carol");
    await page.getByLabel("Password").fill("correct horse");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Allow" }).waitFor();
    expect(await page.textContent("main")).toContain("Hello, Carol Danvers");
    await page.getByRole("button", { name: "Allow" }).click();
    await page.getByRole("heading", { name: "Signed in" }).waitFor();
    const claims = JSON.parse((await page.locator("#id-token-claims").textContent())!) as Record<string, unknown>;
    expect(claims).toMatchObject({ iss: stack.issuer, sub: "user-carol", aud: "oidc-app", amr: ["pwd"] });
    expect(claims.sid).toEqual(expect.any(String));
    expect(JSON.parse((await page.locator("#userinfo").textContent())!)).toEqual({ sub: "user-carol", name: "Carol Danvers" });
  });

  it("prompt=login with login_hint: the login page over a live session, the user name filled in", { timeout: scaledBudget(20_000) }, async () => {
    const page = await context.newPage();
    await page.goto(`${stack.issuer}/login`);
    await page.getByLabel("Username").fill("carol");
    await page.getByLabel("Password").fill("correct horse");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("You are signed in").waitFor();
    const request = new URLSearchParams({
      response_type: "code",
      client_id: "oidc-app",
      redirect_uri: `${appUrl}callback`,
      scope: "openid",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
      nonce: "n-1",
      prompt: "login",
      login_hint: "carol",
    });
    await page.goto(`${stack.issuer}/oauth2/authorize?${request}`);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    expect(await page.getByLabel("Username").inputValue()).toBe("carol");
    expect(await page.textContent("main")).toContain("OIDC Test App");
  });

  it("RP-Initiated Logout without id_token_hint: a confirmation page; signing out there ends the session and returns to the app", { timeout: scaledBudget(20_000) }, async () => {
    const page = await context.newPage();
    await page.goto(`${stack.issuer}/login`);
    await page.getByLabel("Username").fill("carol");
    await page.getByLabel("Password").fill("correct horse");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("You are signed in").waitFor();

    await page.goto(`${stack.issuer}/oauth2/end-session?${new URLSearchParams({ client_id: "oidc-app", post_logout_redirect_uri: appUrl, state: "s-1" })}`);
    await page.getByRole("heading", { name: "Sign out?" }).waitFor();
    expect(await page.textContent("main")).toContain("OIDC Test App asks you to sign out");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${appUrl}?state=s-1`);
    await page.goto(`${stack.issuer}/login`);
    await page.getByLabel("Username").waitFor();
  });
});
