import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, inject, it } from "vitest";
import { createDemoClient } from "../../demo/demo-client.js";
import { TEST_PASSWORD_HASH } from "../support/authz.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.js";

/**
 * The browser flows in a real Chromium: the demo client app (oauth4webapi,
 * PKCE) as the relying party, the real gateway and authz service on Redis.
 * One browser for the file, a new context (empty cookie jar) per test.
 */
/**
 * Budgets: a test drives a real Chromium through four to six pages (app,
 * login, consent, callback, API call), each served by the gateway, the authz
 * service and Redis: 1 to 3 s on a quiet two-core machine, 20 s quiet per test,
 * scaled by TEST_TIME_SCALE. One page action or wait gets 10 s quiet, scaled
 * (Playwright's own default, 30 s, does not know how busy the machine is).
 * beforeAll starts the stack, two demo apps and Chromium: 20 s quiet, scaled.
 */
const BROWSER_TEST_BUDGET_MS = scaledBudget(20_000);
let stack: TestStack;
let browser: Browser;
let context: BrowserContext;
let cspViolations: string[];
const apps: FastifyInstance[] = [];
const appUrls: Record<"first" | "second", string> = { first: "", second: "" };

beforeAll(async () => {
  const ports = { first: await freePort(), second: await freePort() };
  const redirect = (port: number) => `http://127.0.0.1:${port}/callback`;
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      // dora: a user of her own for the remembered-consent test, so no test depends on another's decisions.
      (file.users as unknown[]).push({ username: "dora", subject: "user-dora", passwordHash: TEST_PASSWORD_HASH });
      (file.clients as unknown[]).push(
        { id: "browser-app", name: "Browser Test App", type: "public", redirectUris: [redirect(ports.first)], scopes: ["read", "write"] },
        { id: "second-app", name: "Second App", type: "public", redirectUris: [redirect(ports.second)], scopes: ["read"] },
      );
    },
  });
  for (const [key, clientId, scope] of [["first", "browser-app", "read write"], ["second", "second-app", "read"]] as const) {
    const app = await createDemoClient({ issuer: stack.issuer, clientId, redirectUri: redirect(ports[key]), scope, apiBase: stack.gateway.url });
    await app.listen({ host: "127.0.0.1", port: ports[key] });
    appUrls[key] = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
    apps.push(app);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, scaledBudget(20_000));

afterAll(async () => {
  await browser?.close();
  for (const app of apps) await app.close();
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
  // The gatehouse pages load nothing the CSP forbids (the inline stylesheet is allowed by its hash).
  expect(cspViolations).toEqual([]);
});

async function signInAt(page: Page, app: "first" | "second"): Promise<void> {
  await page.goto(appUrls[app]);
  await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
}

async function submitLogin(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

describe("in Chromium", () => {
  it("RFC 6749 §4.1 with PKCE: login, consent, tokens, through the gateway's pages", { timeout: BROWSER_TEST_BUDGET_MS }, async () => {
    const page = await context.newPage();
    await signInAt(page, "first");
    // The login page, at the gateway, naming the client.
    expect(page.url().startsWith(`${stack.issuer}/oauth2/authorize?`)).toBe(true);
    await expect.poll(() => page.title()).toBe("Sign in · gatehouse");
    expect(await page.textContent("main")).toContain("to continue to Browser Test App");

    // A wrong password first: the page says only that the username or password is wrong.
    await submitLogin(page, "alice", "not her password");
    expect(await page.getByRole("alert").textContent()).toBe("The username or password is wrong.");
    expect(await page.getByLabel("Username").inputValue()).toBe("alice");
    await page.getByLabel("Password").fill("correct horse");
    await page.getByRole("button", { name: "Sign in" }).click();

    // The consent page: the client's name and each scope's description.
    await page.getByRole("button", { name: "Allow" }).waitFor();
    const consent = (await page.textContent("main"))!;
    expect(consent).toContain("Browser Test App wants to access your account");
    expect(consent).toContain("Read your things");
    expect(consent).toContain("Change your things");
    expect(consent).toContain("Signed in as user-alice");
    await page.getByRole("button", { name: "Allow" }).click();

    // Back at the client, which redeemed the code with its PKCE verifier.
    await page.getByRole("heading", { name: "Signed in" }).waitFor();
    expect(page.url()).toBe(appUrls.first);
    const signedIn = (await page.textContent("main"))!;
    expect(signedIn).toContain("Granted scope: read write");
    expect(signedIn).toContain('"sub": "user-alice"');
    expect(signedIn).toContain('"client_id": "browser-app"');
    expect(signedIn).toContain("Signature and claims verified");

    // The API call goes through the gateway and shows what came back (the guard decides; a 5xx never).
    await page.getByRole("button", { name: "GET /api/profile" }).click();
    await page.getByText(`GET ${stack.gateway.url}/api/profile`).waitFor();
    const answered = (await page.textContent("main"))!;
    expect(answered).toMatch(/GET \S+\/api\/profile → HTTP [1-4]\d\d/);
    expect(answered).not.toContain("The API call failed");
  });

  it("RFC 6749 §4.1.2.1: Deny sends the browser back with access_denied", { timeout: BROWSER_TEST_BUDGET_MS }, async () => {
    const page = await context.newPage();
    // second-app: alice has never approved it with 'remember', so the consent page is shown.
    await signInAt(page, "second");
    await submitLogin(page, "alice", "correct horse");
    await page.getByRole("button", { name: "Deny" }).click();
    await page.getByText("The authorization server answered access_denied: the resource owner denied the request.").waitFor();
    expect(page.url()).toBe(appUrls.second);
    expect(await page.getByRole("heading", { name: "Signed in" }).count()).toBe(0);
  });

  it("remembered consent: the next authorization for the same scopes skips the page", { timeout: BROWSER_TEST_BUDGET_MS }, async () => {
    const page = await context.newPage();
    await signInAt(page, "first");
    await submitLogin(page, "dora", "correct horse");
    // Remembering is the resource owner's explicit choice: unchecked until they check it.
    expect(await page.getByLabel("Don't ask again for these permissions").isChecked()).toBe(false);
    await page.getByLabel("Don't ask again for these permissions").check();
    await page.getByRole("button", { name: "Allow" }).click();
    await page.getByRole("heading", { name: "Signed in" }).waitFor();
    await page.getByRole("button", { name: "Sign out (revoke the tokens)" }).click();
    await page.getByText(/Signed out of the demo app/).waitFor();
    // The gatehouse session is still there and the approval remembered: no login page, no consent
    // page, straight back with a new code.
    const visited: string[] = [];
    page.on("framenavigated", (frame) => visited.push(frame.url()));
    await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
    await page.getByRole("heading", { name: "Signed in" }).waitFor();
    expect(await page.textContent("main")).toContain('"sub": "user-dora"');
    expect(visited.filter((url) => url.startsWith(stack.issuer))).toEqual([]);
  });

  it("a signed-in user's second authorization, for another client: consent without a login", { timeout: BROWSER_TEST_BUDGET_MS }, async () => {
    const page = await context.newPage();
    await page.goto(`${stack.issuer}/login`);
    await submitLogin(page, "alice", "correct horse");
    await page.getByText("You are signed in as user-alice.").waitFor();

    await signInAt(page, "second");
    await page.getByRole("button", { name: "Allow" }).waitFor();
    expect(await page.textContent("main")).toContain("Second App wants to access your account");
    await page.getByRole("button", { name: "Allow" }).click();
    await page.getByRole("heading", { name: "Signed in" }).waitFor();
    expect(await page.textContent("main")).toContain('"client_id": "second-app"');

    // Not remembered: the next authorization asks again, still without a login.
    await page.getByRole("button", { name: "Sign out (revoke the tokens)" }).click();
    await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
    await page.getByRole("button", { name: "Allow" }).waitFor();
  });

  it("the pages fit a phone's screen", { timeout: BROWSER_TEST_BUDGET_MS }, async () => {
    const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, deviceScaleFactor: 2 });
    try {
      const page = await phone.newPage();
      await page.goto(`${appUrls.first}login`);
      await page.getByLabel("Password").waitFor();
      const widths = await page.evaluate<{ scroll: number; client: number }>(
        "({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })",
      );
      expect(widths.scroll).toBeLessThanOrEqual(widths.client);
      const box = (await page.getByRole("button", { name: "Sign in" }).boundingBox())!;
      expect(box.width).toBeGreaterThan(200);
    } finally {
      await phone.close();
    }
  });
});
