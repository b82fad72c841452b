import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDemoClient } from "../../demo/demo-client.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { tenantSection } from "../support/tenants.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.js";

/**
 * Issue 11 in a real Chromium: one browser signs in at tenant acme through a
 * demo app that discovered acme's issuer (RFC 8414 §3.1), then goes to a
 * demo app of tenant globex: globex asks for its own login (acme's session
 * cookie is neither sent to nor valid at globex), and each app gets tokens
 * from its own tenant. Budgets as in gateway-oauth-browser.test.ts.
 */
const BROWSER_TEST_BUDGET_MS = scaledBudget(30_000);
let stack: TestStack;
let browser: Browser;
const apps: FastifyInstance[] = [];
const appUrls: Record<string, string> = {};
const TENANTS = ["acme", "globex"] as const;

beforeAll(async () => {
  const ports = { acme: await freePort(), globex: await freePort() };
  const redirect = (port: number) => `http://127.0.0.1:${port}/callback`;
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      file.tenants = TENANTS.map((name) => {
        const section = tenantSection(name);
        (section.clients as unknown[]).push({ id: "browser-app", name: `App of ${name}`, type: "public", redirectUris: [redirect(ports[name])], scopes: ["read"] });
        return section;
      });
    },
  });
  for (const name of TENANTS) {
    const app = await createDemoClient({ issuer: `${stack.issuer}/${name}`, clientId: "browser-app", redirectUri: redirect(ports[name]), scope: "read", apiBase: stack.gateway.url });
    await app.listen({ host: "127.0.0.1", port: ports[name] });
    appUrls[name] = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
    apps.push(app);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, scaledBudget(30_000));

afterAll(async () => {
  await browser?.close();
  for (const app of apps) await app.close();
  await stack?.close();
});

async function loginAndConsent(page: Page, tenant: string): Promise<void> {
  await page.goto(appUrls[tenant]!);
  await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
  // The tenant's own login page, under its path.
  await expect.poll(() => page.title()).toBe("Sign in · gatehouse");
  expect(page.url().startsWith(`${stack.issuer}/${tenant}/oauth2/authorize?`)).toBe(true);
  expect(await page.textContent("main")).toContain(`to continue to App of ${tenant}`);
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill("correct horse");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Allow" }).waitFor();
  expect(await page.textContent("main")).toContain(`Read your ${tenant} things`);
  await page.getByRole("button", { name: "Allow" }).click();
  await page.getByRole("heading", { name: "Signed in" }).waitFor();
  expect(page.url()).toBe(appUrls[tenant]);
  const signedIn = (await page.textContent("main"))!;
  expect(signedIn).toContain(`"iss": "${stack.issuer}/${tenant}"`);
  expect(signedIn).toContain("Signature and claims verified");
}

describe("tenants in Chromium (issue 11)", () => {
  it("login and consent at two tenants in one browser: the second tenant asks for its own login", { timeout: BROWSER_TEST_BUDGET_MS }, async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(scaledBudget(10_000));
    try {
      const page = await context.newPage();
      await loginAndConsent(page, "acme");
      const cookies = await context.cookies();
      expect(cookies.find((c) => c.name === "gatehouse_session-acme")).toMatchObject({ path: "/acme", httpOnly: true });
      // Same browser, same user name, same client id: globex still asks for its login (loginAndConsent checks the login page).
      await loginAndConsent(page, "globex");
      const after = await context.cookies();
      expect(after.map((c) => c.name)).toEqual(expect.arrayContaining(["gatehouse_session-acme", "gatehouse_session-globex"]));
      expect(after.find((c) => c.name === "gatehouse_session-globex")).toMatchObject({ path: "/globex" });
      expect(after.some((c) => c.name === "gatehouse_session")).toBe(false);
    } finally {
      await context.close();
    }
  });
});
