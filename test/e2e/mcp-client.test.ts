import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { auth, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { decodeJwt } from "jose";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDemoMcpServer } from "../../demo/demo-mcp-server.js";
import { startLocalHttpsServer, type LocalHttpsServer } from "../support/local-https-server.js";
import { McpClientProvider, startRedirectReceiver, type RedirectReceiver } from "../support/mcp-client-provider.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.js";

/**
 * Issue 15 end to end: the official MCP TypeScript SDK's client (`Client`,
 * `StreamableHTTPClientTransport`, and its own OAuth flow driven through an
 * `OAuthClientProvider`, which only stores what the SDK hands it and opens
 * the authorization URL in Chromium) against the demo MCP server behind the
 * gateway's guard. Nothing in the client knows gatehouse: it starts from the
 * bare 401 and discovers the rest (RFC 9728 metadata, RFC 8414 metadata),
 * sends RFC 8707 `resource` as the MCP authorization spec asks, and the
 * browser signs in and consents at the gateway's pages. The same flow runs
 * three ways: with a client listed in the configuration, with RFC 7591
 * dynamic registration, and with a Client ID Metadata Document (served by a
 * local https server trusted through the development allow-list);
 * mcp-client-registration.test.ts looks at the registration steps closer.
 *
 * Budgets: a flow is five pages and a dozen HTTP calls: 2 to 4 s on a quiet
 * two-core machine, 30 s quiet per test, scaled by TEST_TIME_SCALE.
 */
const TEST_BUDGET_MS = scaledBudget(30_000);
let stack: TestStack;
let browser: Browser;
let mcpServer: Server;
let receiver: RedirectReceiver;
let callbackUrl: string;
/** The MCP client's Client ID Metadata Document, on a local https server whose certificate the authz service trusts (development allow-list). */
let documents: LocalHttpsServer;
let clientMetadataUrl: string;

beforeAll(async () => {
  mcpServer = createDemoMcpServer();
  await new Promise<void>((resolve) => mcpServer.listen(0, "127.0.0.1", resolve));
  const mcpUpstream = `http://127.0.0.1:${(mcpServer.address() as AddressInfo).port}`;
  receiver = await startRedirectReceiver();
  callbackUrl = receiver.url;
  documents = await startLocalHttpsServer("mcp-client-metadata", (request, response) => {
    if (request.url !== "/mcp-client.json") return response.writeHead(404).end();
    response
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ client_id: clientMetadataUrl, client_name: "Test MCP Client", redirect_uris: [callbackUrl], grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], token_endpoint_auth_method: "none" }));
  });
  clientMetadataUrl = `https://localhost:${documents.port}/mcp-client.json`;

  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      const issuer = file.issuer as string;
      (file.scopes as unknown[]).push({ name: "mcp:tools", description: "Use the tools of the demo MCP server" });
      // A client registered beforehand (the SDK's clientInformation()): public, PKCE, the loopback redirect URI.
      (file.clients as unknown[]).push({ id: "mcp-client", name: "Test MCP Client", type: "public", redirectUris: [callbackUrl], scopes: ["mcp:tools"] });
      // Or the client registers itself: RFC 7591 (open, for the test) or a Client ID Metadata Document.
      file.registration = { policy: "open", clientIdMetadataDocuments: true, scopes: ["mcp:tools"] };
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
  if (mcpServer !== undefined) await new Promise((resolve) => mcpServer.close(resolve));
  await receiver?.close();
  await documents?.close();
});

/** The browser's part: sign in as alice and allow, on the gateway's pages; the redirect lands at the callback server. */
async function signInAndAllow(context: BrowserContext, url: URL): Promise<void> {
  const page = await context.newPage();
  await page.goto(url.href);
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill("correct horse");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Allow" }).waitFor();
  const consent = (await page.textContent("main"))!;
  expect(consent).toContain("Test MCP Client");
  expect(consent).toContain("wants to access your account");
  expect(consent).toContain("Use the tools of the demo MCP server");
  // RFC 8707: the page names the resource the client will reach.
  expect(consent).toContain("Demo MCP server");
  expect(consent).toContain(`${stack.issuer}/mcp`);
  await page.getByRole("button", { name: "Allow" }).click();
  await page.waitForURL((target) => target.href.startsWith(callbackUrl));
  await page.close();
}

/** How the client gets its client_id: registered in the configuration beforehand, or by RFC 7591 dynamic registration. */
type Registration = { kind: "pre-registered" } | { kind: "dynamic" } | { kind: "metadata document" };

/**
 * The whole flow with the SDK, as an MCP client application runs it: a bare
 * request, discovery, registration when it has no client, the browser, the
 * tool, a refresh, and a revocation.
 */
async function runOfficialClient(registration: Registration): Promise<void> {
  const context = await browser.newContext();
  context.setDefaultTimeout(scaledBudget(10_000));
  const requested: string[] = [];
  // Only observes: every request the SDK makes, by method and URL.
  const recordingFetch: typeof fetch = (input, init) => {
    requested.push(`${init?.method ?? "GET"} ${input instanceof Request ? input.url : String(input)}`);
    return fetch(input, init);
  };
  const provider = new McpClientProvider({
    redirectUrl: callbackUrl,
    clientName: "Test MCP Client",
    openBrowser: (url) => signInAndAllow(context, url),
    preRegistered: registration.kind === "pre-registered" ? { client_id: "mcp-client" } : undefined,
  });
  // SEP-991 in the SDK: with client_id_metadata_document_supported in the metadata, the URL is the client_id.
  if (registration.kind === "metadata document") provider.clientMetadataUrl = clientMetadataUrl;
  const serverUrl = new URL(`${stack.issuer}/mcp`);
  const codesBefore = receiver.codes.length;

  // 1. A bare request: 401, then discovery, then the browser; the SDK stops at REDIRECT.
  const first = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch });
  await expect(new Client({ name: "gatehouse-test", version: "1.0.0" }).connect(first)).rejects.toThrow(UnauthorizedError);
  expect(requested.slice(0, 3)).toEqual([
    `POST ${stack.issuer}/mcp`,
    `GET ${stack.issuer}/.well-known/oauth-protected-resource/mcp`,
    `GET ${stack.issuer}/.well-known/oauth-authorization-server`,
  ]);
  const clientId = provider.clientInformation()!.client_id;
  if (registration.kind === "dynamic") {
    // RFC 7591: the SDK registered itself at the metadata's registration_endpoint.
    expect(requested[3]).toBe(`POST ${stack.issuer}/oauth2/register`);
    expect(clientId).not.toBe("mcp-client");
  } else if (registration.kind === "metadata document") {
    // No registration request: the client_id is the document's URL, which the authz service fetches.
    expect(clientId).toBe(clientMetadataUrl);
    expect(requested.some((line) => line.includes("/oauth2/register"))).toBe(false);
  } else {
    expect(clientId).toBe("mcp-client");
  }
  expect(provider.authorizationUrls).toHaveLength(1);
  const authorizationUrl = provider.authorizationUrls[0]!;
  expect(authorizationUrl.origin + authorizationUrl.pathname).toBe(`${stack.issuer}/oauth2/authorize`);
  expect(authorizationUrl.searchParams.get("client_id")).toBe(clientId);
  expect(authorizationUrl.searchParams.get("resource")).toBe(`${stack.issuer}/mcp`);
  expect(authorizationUrl.searchParams.get("scope")).toBe("mcp:tools");
  expect(authorizationUrl.searchParams.get("code_challenge_method")).toBe("S256");
  expect(receiver.codes).toHaveLength(codesBefore + 1);

  // 2. The redirect's code, exchanged by the SDK (with the same resource).
  await first.finishAuth(receiver.codes.at(-1)!);
  const accessToken = provider.tokens()!.access_token;
  expect(decodeJwt(accessToken)).toMatchObject({ aud: `${stack.issuer}/mcp`, client_id: clientId });
  expect(provider.tokens()!.refresh_token).toBeDefined();

  // 3. Connected: the tool answers with the identity the guard asserted.
  const client = new Client({ name: "gatehouse-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch }));
  expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(["whoami"]);
  const who = await client.callTool({ name: "whoami", arguments: {} });
  expect(who.structuredContent).toEqual({ subject: "user-alice", client: clientId, scope: ["mcp:tools"] });

  // 4. A refresh through the SDK's own auth(): a new access token for the same resource, which the server takes.
  expect(await auth(provider, { serverUrl, fetchFn: recordingFetch })).toBe("AUTHORIZED");
  const refreshed = provider.tokens()!;
  expect(refreshed.access_token).not.toBe(accessToken);
  expect(decodeJwt(refreshed.access_token).aud).toBe(`${stack.issuer}/mcp`);
  expect((await client.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({ subject: "user-alice" });

  // 5. The user revokes the grant (RFC 7009, the refresh token revokes its family): the guard refuses the
  //    access token, the SDK's refresh fails (invalid_grant), and it starts over at the authorization endpoint.
  const revoked = await fetch(`${stack.issuer}/oauth2/revoke`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: refreshed.refresh_token!, client_id: clientId }),
  });
  expect(revoked.status).toBe(200);
  await waitFor(
    async () => {
      const response = await fetch(serverUrl, { method: "POST", headers: { authorization: `Bearer ${refreshed.access_token}`, "content-type": "application/json" }, body: "{}" });
      return response.status === 401;
    },
    { budgetMs: 2_000, what: "the guard to refuse the revoked access token" },
  );
  const browserless = new McpClientProvider({ redirectUrl: callbackUrl, clientName: "Test MCP Client", openBrowser: async () => undefined, preRegistered: provider.clientInformation() });
  browserless.saveTokens(refreshed);
  const afterRevocation = new Client({ name: "gatehouse-test", version: "1.0.0" });
  await expect(afterRevocation.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: browserless }))).rejects.toThrow(UnauthorizedError);
  expect(browserless.tokens()).toBeUndefined();
  expect(browserless.authorizationUrls).toHaveLength(1);
  await client.close();
  await context.close();
}

describe("the official MCP client through the sidecar", () => {
  it(
    "MCP authorization 2025-11-25 with a client registered beforehand: from a bare 401 the SDK discovers the resource (RFC 9728) and the authorization server (RFC 8414), signs in with PKCE and resource (RFC 8707), calls the tool, refreshes, and is refused after revocation",
    { timeout: TEST_BUDGET_MS },
    () => runOfficialClient({ kind: "pre-registered" }),
  );

  it(
    "RFC 7591: the SDK registers itself at the registration endpoint the metadata advertises, then the same flow",
    { timeout: TEST_BUDGET_MS },
    () => runOfficialClient({ kind: "dynamic" }),
  );

  it(
    "Client ID Metadata Document: the SDK's client_id is its document's URL (client_id_metadata_document_supported), then the same flow",
    { timeout: TEST_BUDGET_MS },
    () => runOfficialClient({ kind: "metadata document" }),
  );
});
