import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startLocalHttpsServer, type LocalHttpsServer } from "../support/local-https-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.js";

/**
 * Issue 15 in a real Chromium: the consent page for a client whose client_id
 * is the URL of its metadata document (served by a local https server whose
 * certificate is trusted through the development allow-list) shows the
 * document's host prominently, styled (the page's CSP admits the stylesheet),
 * and Allow sends the browser to the document's loopback redirect URI on the
 * port the request named (RFC 8252 §7.3).
 */
let stack: TestStack;
let browser: Browser;
let documents: LocalHttpsServer;

beforeAll(async () => {
  documents = await startLocalHttpsServer("cimd-browser", (request, response) => {
    if (request.url !== "/client.json") return response.writeHead(404).end();
    const clientId = `https://localhost:${documents.port}/client.json`;
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ client_id: clientId, client_name: "Browser MCP Client", redirect_uris: ["http://127.0.0.1/callback"] }));
  });
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      file.registration = { policy: "off", clientIdMetadataDocuments: true, scopes: ["read"] };
      (file.authz as Record<string, unknown>).fetch = { trustedCa: { file: documents.certificateFile }, allowPrivateHosts: ["localhost"] };
    },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, scaledBudget(30_000));

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await documents?.close();
});

describe("Client ID Metadata Document consent in Chromium", () => {
  it(
    "the consent page makes the document's host prominent, and Allow goes to the loopback redirect on the requested port",
    async () => {
      const page = await browser.newPage();
      const clientId = `https://localhost:${documents.port}/client.json`;
      const redirectUri = "http://127.0.0.1:9/callback";
      const query = new URLSearchParams({ response_type: "code", client_id: clientId, redirect_uri: redirectUri, scope: "read", state: "st", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256" });
      await page.goto(`${stack.issuer}/oauth2/authorize?${query}`);
      await page.fill("input[name=username]", "alice");
      await page.fill("input[name=password]", "correct horse");
      await page.click("button[type=submit]");
      const origin = page.locator("p.origin");
      await expect.poll(() => origin.isVisible()).toBe(true);
      expect(await origin.locator("strong").textContent()).toBe(`localhost:${documents.port}`);
      expect(await page.locator("h1").textContent()).toContain("Browser MCP Client");
      // Styled by the inline stylesheet the CSP admits by hash: a solid border, not the browser's default.
      const borderStyle = await origin.evaluate((element) => (globalThis as unknown as { getComputedStyle(e: unknown): { borderTopStyle: string } }).getComputedStyle(element).borderTopStyle);
      expect(borderStyle).toBe("solid");
      const redirected = page.waitForRequest((request) => request.url().startsWith(redirectUri));
      await page.click("button[value=allow]");
      const callback = new URL((await redirected).url());
      expect(callback.searchParams.get("code")).toBeTruthy();
      expect(callback.searchParams.get("state")).toBe("st");
      await page.close();
    },
    scaledBudget(30_000),
  );
});
