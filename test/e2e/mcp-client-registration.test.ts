import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDemoMcpServer } from "../../demo/demo-mcp-server.js";
import { startLocalHttpsServer, type LocalHttpsServer } from "../support/local-https-server.js";
import { McpClientProvider, startRedirectReceiver, type RedirectReceiver } from "../support/mcp-client-provider.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.js";

/**
 * Issue 15: the official MCP TypeScript SDK client registers itself, with no
 * client known to gatehouse beforehand and no gatehouse-specific code: once
 * by RFC 7591 dynamic registration (the SDK finds registration_endpoint in
 * the metadata), once by a Client ID Metadata Document (the SDK uses its
 * clientMetadataUrl as client_id when the metadata says
 * client_id_metadata_document_supported), served by a local https server
 * whose certificate is trusted through the development allow-list. Then
 * sign-in and consent in Chromium, and a tool call through the guard.
 * Budgets as in mcp-client.test.ts.
 */
const TEST_BUDGET_MS = scaledBudget(30_000);
let stack: TestStack;
let browser: Browser;
let mcpServer: Server;
let receiver: RedirectReceiver;
let documents: LocalHttpsServer;
let callbackUrl: string;

beforeAll(async () => {
  mcpServer = createDemoMcpServer();
  await new Promise<void>((resolve) => mcpServer.listen(0, "127.0.0.1", resolve));
  const mcpUpstream = `http://127.0.0.1:${(mcpServer.address() as AddressInfo).port}`;
  receiver = await startRedirectReceiver();
  callbackUrl = receiver.url;
  documents = await startLocalHttpsServer("mcp-cimd", (request, response) => {
    if (request.url !== "/mcp-client.json") return response.writeHead(404).end();
    response.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({ client_id: `${documents.base}/mcp-client.json`, client_name: "Document MCP Client", redirect_uris: [callbackUrl], grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], token_endpoint_auth_method: "none" }),
    );
  });

  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      const issuer = file.issuer as string;
      (file.scopes as unknown[]).push({ name: "mcp:tools", description: "Use the tools of the demo MCP server" });
      file.registration = { policy: "open", scopes: ["mcp:tools"], clientIdMetadataDocuments: true };
      (file.authz as Record<string, unknown>).fetch = { trustedCa: { file: documents.certificateFile }, allowPrivateHosts: ["localhost"] };
      file.resources = [{ uri: `${issuer}/mcp`, name: "Demo MCP server", scopes: ["mcp:tools"] }];
      file.routes = [{ name: "mcp", path: "/mcp", scopes: ["mcp:tools"], resource: `${issuer}/mcp`, upstream: mcpUpstream }];
    },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, scaledBudget(20_000));

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await documents?.close();
  if (mcpServer !== undefined) await new Promise((resolve) => mcpServer.close(resolve));
  await receiver?.close();
});

/** Sign in as alice and allow; returns the consent page's text. */
async function signInAndAllow(context: BrowserContext, url: URL, seen: string[]): Promise<void> {
  const page = await context.newPage();
  await page.goto(url.href);
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill("correct horse");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Allow" }).waitFor();
  seen.push((await page.textContent("main"))!);
  await page.getByRole("button", { name: "Allow" }).click();
  await page.waitForURL((target) => target.href.startsWith(callbackUrl));
  await page.close();
}

/** From a bare 401 to a tool call; returns what the SDK requested, the consent page's text and the tool's answer. */
async function connectAndCall(provider: McpClientProvider, consentSeen: string[]) {
  const requested: string[] = [];
  const recordingFetch: typeof fetch = (input, init) => {
    requested.push(`${init?.method ?? "GET"} ${input instanceof Request ? input.url : String(input)}`);
    return fetch(input, init);
  };
  const serverUrl = new URL(`${stack.issuer}/mcp`);
  const before = receiver.codes.length;
  const first = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch });
  await expect(new Client({ name: "gatehouse-test", version: "1.0.0" }).connect(first)).rejects.toThrow(UnauthorizedError);
  expect(receiver.codes).toHaveLength(before + 1);
  await first.finishAuth(receiver.codes[before]!);
  const client = new Client({ name: "gatehouse-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch }));
  const who = await client.callTool({ name: "whoami", arguments: {} });
  await client.close();
  return { requested, consent: consentSeen.at(-1)!, who: who.structuredContent as Record<string, unknown> };
}

describe("the official MCP client registers itself", () => {
  it(
    "RFC 7591: with no client information the SDK registers at registration_endpoint, signs in and calls the tool as the registered client",
    { timeout: TEST_BUDGET_MS },
    async () => {
      const context = await browser.newContext();
      context.setDefaultTimeout(scaledBudget(10_000));
      const seen: string[] = [];
      const provider = new McpClientProvider({ redirectUrl: callbackUrl, clientName: "Registered MCP Client", openBrowser: (url) => signInAndAllow(context, url, seen) });
      const { requested, consent, who } = await connectAndCall(provider, seen);
      expect(requested).toContain(`POST ${stack.issuer}/oauth2/register`);
      const clientId = provider.clientInformation()!.client_id;
      expect(clientId).not.toMatch(/^https:/);
      expect(consent).toContain("Registered MCP Client wants to access your account");
      expect(consent).toContain("registered itself");
      expect(who).toEqual({ subject: "user-alice", client: clientId, scope: ["mcp:tools"] });
      await context.close();
    },
  );

  it(
    "Client ID Metadata Document: the SDK uses its document's URL as client_id; gatehouse fetches it, the consent page names the document's host, and the tool answers for that client",
    { timeout: TEST_BUDGET_MS },
    async () => {
      const context = await browser.newContext();
      context.setDefaultTimeout(scaledBudget(10_000));
      const seen: string[] = [];
      const documentUrl = `${documents.base}/mcp-client.json`;
      const provider = new McpClientProvider({ redirectUrl: callbackUrl, clientName: "Registered MCP Client", openBrowser: (url) => signInAndAllow(context, url, seen), clientMetadataUrl: documentUrl });
      const { requested, consent, who } = await connectAndCall(provider, seen);
      expect(requested).not.toContain(`POST ${stack.issuer}/oauth2/register`);
      expect(provider.clientInformation()!.client_id).toBe(documentUrl);
      expect(consent).toContain("Document MCP Client wants to access your account");
      expect(consent).toContain(`This application is published by localhost:${documents.port}`);
      expect(who).toEqual({ subject: "user-alice", client: documentUrl, scope: ["mcp:tools"] });
      await context.close();
    },
  );
});
