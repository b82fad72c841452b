import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDemoClient } from "../../demo/demo-client.js";
import { ADMIN_SECRETS, withAdminCredentials } from "../support/admin.js";
import { runAdminCli } from "../support/admin-cli.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.js";

/**
 * Issue 12: a client registered at run time with `gatehouse admin clients
 * create` (a child process, over AdminService) completes the authorization
 * code flow with PKCE in a real Chromium, through the real gateway's login
 * and consent pages, on Redis, with no restart and no configuration change.
 */
let stack: TestStack;
let browser: Browser;
let app: FastifyInstance | undefined;

beforeAll(async () => {
  stack = await startTestStack({ redisUrl: inject("redisUrl"), patch: withAdminCredentials });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, scaledBudget(20_000));

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await stack?.close();
});

describe("in Chromium", () => {
  it("a client created through the CLI signs a user in (RFC 6749 §4.1 with PKCE), and the audit trail shows who created it", { timeout: scaledBudget(40_000) }, async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const env = { GATEHOUSE_ADMIN_URL: stack.authz.running.url, GATEHOUSE_ADMIN_CREDENTIAL: ADMIN_SECRETS.ops };
    const created = await runAdminCli(["clients", "create", "cli-browser-app", "--name", "Made With The CLI", "--type", "public", "--redirect-uri", redirectUri, "--scope", "read", "--json"], env);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);

    app = await createDemoClient({ issuer: stack.issuer, clientId: "cli-browser-app", redirectUri, scope: "read", apiBase: stack.gateway.url });
    await app.listen({ host: "127.0.0.1", port });
    const appUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;

    const context = await browser.newContext();
    context.setDefaultTimeout(scaledBudget(10_000));
    try {
      const page = await context.newPage();
      await page.goto(appUrl);
      await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
      expect(await page.textContent("main")).toContain("to continue to Made With The CLI");
      await page.getByLabel("Username").fill("alice");
      await page.getByLabel("Password").fill("correct horse");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("button", { name: "Allow" }).waitFor();
      const consent = (await page.textContent("main"))!;
      expect(consent).toContain("Made With The CLI wants to access your account");
      expect(consent).toContain("Read your things");
      await page.getByRole("button", { name: "Allow" }).click();
      await page.getByRole("heading", { name: "Signed in" }).waitFor();
      const signedIn = (await page.textContent("main"))!;
      expect(signedIn).toContain('"client_id": "cli-browser-app"');
      expect(signedIn).toContain("Granted scope: read");
      expect(signedIn).toContain("Signature and claims verified");
    } finally {
      await context.close();
    }

    const audit = await runAdminCli(["audit", "list", "--resource", "clients/cli-browser-app"], env);
    expect(audit.code).toBe(0);
    expect(audit.stdout.split("\n")[1]).toMatch(/^\S+Z\s+ops\s+CreateClient\s+clients\/cli-browser-app$/);
  });
});
