import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDemoClient } from "../../demo/demo-client.js";
import { DEFAULT_TENANT } from "../../startup/tenant-name.js";
import { TEST_PASSWORD_HASH } from "../support/authz.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.js";

/**
 * Issue 12 in a real Chromium, through the demo app's code flow: a user who
 * asks only for a scope beyond their groups is told so on a page whose link
 * takes the app its access_denied; a blocked user's sign-in page says the
 * account is disabled. Budgets as in gateway-oauth-browser.test.ts.
 */
const BROWSER_TEST_BUDGET_MS = scaledBudget(30_000);
let stack: TestStack;
let browser: Browser;
let app: FastifyInstance;
let appUrl: string;

beforeAll(async () => {
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      file.scopes = [...(file.scopes as unknown[]), { name: "audit", description: "Read the audit trail", groups: ["auditors"] }];
      (file.clients as unknown[]).push({ id: "browser-app", name: "Audit App", type: "public", redirectUris: [redirectUri], scopes: ["audit"] });
      file.users = [
        { username: "alice", subject: "user-alice", passwordHash: TEST_PASSWORD_HASH },
        { username: "bob", subject: "user-bob", passwordHash: TEST_PASSWORD_HASH },
      ];
    },
  });
  app = await createDemoClient({ issuer: stack.issuer, clientId: "browser-app", redirectUri, scope: "audit", apiBase: stack.gateway.url });
  await app.listen({ host: "127.0.0.1", port });
  appUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, scaledBudget(30_000));

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await stack?.close();
});

describe("users' rights in Chromium (issue 12)", () => {
  it("a scope beyond the user's groups: a page that says so, whose link gives the app access_denied; a blocked user's login says disabled", { timeout: BROWSER_TEST_BUDGET_MS }, async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(scaledBudget(10_000));
    try {
      const page = await context.newPage();
      await page.goto(appUrl);
      await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
      await page.getByLabel("Username").fill("alice");
      await page.getByLabel("Password").fill("correct horse");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "You cannot continue" }).waitFor();
      expect(await page.textContent("main")).toContain("Your account lacks the rights for what the client asked: audit");
      await page.getByRole("link", { name: "Return to the application" }).click();
      await expect.poll(() => page.url()).toBe(appUrl);
      // The demo app validated the response (state, iss: RFC 9207) with oauth4webapi and shows the error it got.
      expect(await page.textContent("body")).toContain("The authorization server answered access_denied");

      await stack.authz.running.deps.tenantServer(DEFAULT_TENANT)!.users.blockUser("user-bob");
      // Another browser: this one is signed in as alice.
      const other = await browser.newContext();
      other.setDefaultTimeout(scaledBudget(10_000));
      const login = await other.newPage();
      await login.goto(`${stack.issuer}/login`);
      await login.getByLabel("Username").fill("bob");
      await login.getByLabel("Password").fill("correct horse");
      await login.getByRole("button", { name: "Sign in" }).click();
      await login.getByRole("alert").waitFor();
      expect(await login.getByRole("alert").textContent()).toBe("This account is disabled. Ask your administrator to enable it.");
      await other.close();
    } finally {
      await context.close();
    }
  });
});
