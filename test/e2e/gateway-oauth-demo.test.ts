import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, runTs, type RunningProcess } from "../support/process.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { runAdminCli } from "../support/admin-cli.js";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError, type OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { OAuthClientInformationMixed, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";

/**
 * `npm start` as a newcomer meets it: scripts/start.ts with config/dev.yaml
 * (moved to free ports so it cannot collide with anything running), the
 * printed URL opened in Chromium, Sign in, log in as the demo user, approve,
 * and see the tokens and the API's answer.
 */
/**
 * Budgets: beforeAll starts `npm start` (three processes under tsx) and Chromium,
 * 40 s quiet; the test drives Chromium through sign-in, consent, an API call
 * and a refresh, about 5 s on a quiet two-core machine, 25 s quiet. Both are
 * scaled by TEST_TIME_SCALE.
 */
let started: RunningProcess;
let browser: Browser;
let dir: string;
let demoUrl: string;
let issuer: string;

/** Rewrites every occurrence of `from` in the file's strings (upstream URLs the guard's routes may name). */
function replaceInStrings(value: unknown, from: string, to: string): unknown {
  if (typeof value === "string") return value.split(from).join(to);
  if (Array.isArray(value)) return value.map((item) => replaceInStrings(item, from, to));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, replaceInStrings(item, from, to)]));
  }
  return value;
}

beforeAll(async () => {
  const ports = { gateway: await freePort(), authz: await freePort(), demo: await freePort(), api: await freePort(), mcp: await freePort() };
  let file = parse(readFileSync(join(ROOT, "config/dev.yaml"), "utf8")) as Record<string, any>;
  file = replaceInStrings(file, "127.0.0.1:3001", `127.0.0.1:${ports.api}`) as Record<string, any>;
  file = replaceInStrings(file, "localhost:3001", `localhost:${ports.api}`) as Record<string, any>;
  file = replaceInStrings(file, "127.0.0.1:3002", `127.0.0.1:${ports.mcp}`) as Record<string, any>;
  // The demo MCP server's resource URI is on the gateway's origin (resources, routes[].resource).
  file = replaceInStrings(file, "http://localhost:8080", `http://localhost:${ports.gateway}`) as Record<string, any>;
  file.issuer = `http://localhost:${ports.gateway}`;
  file.authz.port = ports.authz;
  file.gateway.port = ports.gateway;
  file.gateway.authz.endpoints = [`http://127.0.0.1:${ports.authz}`];
  // The gateway's deadline for a call to authz is 2 s by default; the Login call checks the demo
  // user's password with scrypt at production cost (N=32768), which a busy machine stretches past
  // that, and the sign-in page would then answer "try again". The deadline is a budget, so scaled.
  file.gateway.authz.timeoutMs = Math.min(scaledBudget(2_000), 30_000);
  const demoApp = (file.clients as Array<{ id: string; redirectUris: string[]; postLogoutRedirectUris?: string[] }>).find((c) => c.id === "demo-app")!;
  demoApp.redirectUris = [`http://localhost:${ports.demo}/callback`];
  demoApp.postLogoutRedirectUris = [`http://localhost:${ports.demo}/`];
  dir = mkdtempSync(join(tmpdir(), "gatehouse-demo-"));
  writeFileSync(join(dir, "config.yaml"), stringify(file));

  started = runTs("scripts/start.ts", {
    env: { GATEHOUSE_CONFIG: join(dir, "config.yaml"), DEMO_API_PORT: String(ports.api), DEMO_MCP_PORT: String(ports.mcp), REDIS_URL: undefined, LOG_LEVEL: "warn" },
  });
  // scripts/start.ts starts three processes under tsx (gatehouse all-in-one on its memory store, the demo app and its API): about 5 s quiet.
  const line = await started.waitFor(/Open (http\S+) and click/, 25_000);
  demoUrl = /Open (http\S+) and click/.exec(line)![1]!;
  issuer = file.issuer as string;
  expect(started.output()).toContain("Demo user: demo   password: demo-password");
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}, scaledBudget(40_000));

afterAll(async () => {
  await browser?.close();
  const exit = await started?.stop("SIGINT");
  rmSync(dir, { recursive: true, force: true });
  // Ctrl-C stops every process it started, cleanly.
  expect(exit?.code).toBe(0);
});

describe("npm start", () => {
  it("prints an admin command that works against the demo (issue 12)", { timeout: scaledBudget(25_000) }, async () => {
    const line = await started.waitFor(/GATEHOUSE_ADMIN_URL=\S+ GATEHOUSE_ADMIN_CREDENTIAL=\S+ npm run -s admin -- clients list/);
    const [, url, credential] = /GATEHOUSE_ADMIN_URL=(\S+) GATEHOUSE_ADMIN_CREDENTIAL=(\S+)/.exec(line)!;
    const run = await runAdminCli(["clients", "list"], { GATEHOUSE_ADMIN_URL: url, GATEHOUSE_ADMIN_CREDENTIAL: credential });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^demo-app\s+Gatehouse Demo App\s+public\s.*configuration$/m);
  });

  it("prints a URL where a newcomer signs in, approves, and sees the tokens and the API's answer", { timeout: scaledBudget(25_000) }, async () => {
    expect(demoUrl).toMatch(/^http:\/\/localhost:\d+\/$/);
    const context = await browser.newContext();
    // One page action or wait: 10 s quiet, scaled (Playwright's default, 30 s, does not know the machine).
    context.setDefaultTimeout(scaledBudget(10_000));
    try {
      const page = await context.newPage();
      await page.goto(demoUrl);
      await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
      await page.getByLabel("Username").fill("demo");
      await page.getByLabel("Password").fill("demo-password");
      await page.getByRole("button", { name: "Sign in" }).click();

      await page.getByRole("button", { name: "Allow" }).waitFor();
      const consent = (await page.textContent("main"))!;
      expect(consent).toContain("Gatehouse Demo App wants to access your account");
      // The consent page greets the user by name (OpenID Connect claim name).
      expect(consent).toContain("Hello, Demo User");
      expect(consent).toContain("Sign you in with your gatehouse account");
      expect(consent).toContain("See your name and account details");
      expect(consent).toContain("Read your notes");
      await page.getByRole("button", { name: "Allow" }).click();

      await page.getByRole("heading", { name: "Signed in" }).waitFor();
      const signedIn = (await page.textContent("main"))!;
      expect(signedIn).toContain('"sub": "demo-user"');
      expect(signedIn).toContain("Signature and claims verified");
      // OpenID Connect: the ID Token's claims (validated by oauth4webapi) and the UserInfo answer.
      const idTokenClaims = JSON.parse((await page.locator("#id-token-claims").textContent())!) as Record<string, unknown>;
      expect(idTokenClaims).toMatchObject({ sub: "demo-user", aud: "demo-app", azp: "demo-app", amr: ["pwd"] });
      expect(idTokenClaims.nonce).toEqual(expect.any(String));
      const userInfo = JSON.parse((await page.locator("#userinfo").textContent())!) as Record<string, unknown>;
      expect(userInfo).toMatchObject({ sub: "demo-user", name: "Demo User", email: "demo@example.com", email_verified: true });

      await page.getByRole("button", { name: "GET /api/notes" }).click();
      await page.getByText(/\/api\/notes → HTTP \d{3}/).waitFor();
      expect(await page.textContent("main")).not.toContain("The API call failed");

      await page.getByRole("button", { name: "Refresh the tokens" }).click();
      await page.getByText("Refreshed: a new access token and a new refresh token.").waitFor();

      // RP-Initiated Logout: the gatehouse session ends too, and the browser comes back to the app.
      await page.getByRole("button", { name: "Sign out of gatehouse too" }).click();
      await page.getByText("Signed out of the demo app and of gatehouse.").waitFor();
      await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
      await page.getByLabel("Username").waitFor();
    } finally {
      await context.close();
    }
  });
});

describe("npm start: the demo MCP server (issue 15)", () => {
  it(
    "README, \"Connecting an MCP client to the demo\": the official MCP SDK client registers itself, the demo user signs in, and whoami answers",
    { timeout: scaledBudget(30_000) },
    async () => {
      // The MCP client application: a loopback redirect on a port of its own (RFC 8252 §7.3), and a store for the SDK.
      const codes: string[] = [];
      const callback = createServer((request, response) => {
        const code = new URL(request.url ?? "/", "http://127.0.0.1").searchParams.get("code");
        if (code !== null) codes.push(code);
        response.writeHead(200, { "content-type": "text/plain" }).end("done");
      });
      await new Promise<void>((resolve) => callback.listen(0, "127.0.0.1", resolve));
      const callbackUrl = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`;
      const context = await browser.newContext();
      context.setDefaultTimeout(scaledBudget(10_000));
      let client: OAuthClientInformationMixed | undefined;
      let tokens: OAuthTokens | undefined;
      let verifier = "";
      let consent = "";
      const provider: OAuthClientProvider = {
        redirectUrl: callbackUrl,
        clientMetadata: { client_name: "README MCP Client", redirect_uris: [callbackUrl], grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], token_endpoint_auth_method: "none" },
        clientInformation: () => client,
        saveClientInformation: (information) => void (client = information),
        tokens: () => tokens,
        saveTokens: (saved) => void (tokens = saved),
        saveCodeVerifier: (saved) => void (verifier = saved),
        codeVerifier: () => verifier,
        redirectToAuthorization: async (url) => {
          const page = await context.newPage();
          await page.goto(url.href);
          await page.getByLabel("Username").fill("demo");
          await page.getByLabel("Password").fill("demo-password");
          await page.getByRole("button", { name: "Sign in" }).click();
          await page.getByRole("button", { name: "Allow" }).waitFor();
          consent = (await page.textContent("main"))!;
          await page.getByRole("button", { name: "Allow" }).click();
          await page.waitForURL((target) => target.href.startsWith(callbackUrl));
        },
      };
      try {
        const serverUrl = new URL(`${issuer}/mcp`);
        const first = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
        await expect(new Client({ name: "readme", version: "1.0.0" }).connect(first)).rejects.toThrow(UnauthorizedError);
        expect(consent).toContain("README MCP Client");
        expect(consent).toContain("gatehouse demo MCP server");
        expect(codes).toHaveLength(1);
        await first.finishAuth(codes[0]!);
        const mcp = new Client({ name: "readme", version: "1.0.0" });
        await mcp.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider }));
        const who = await mcp.callTool({ name: "whoami", arguments: {} });
        expect(who.structuredContent).toEqual({ subject: "demo-user", client: client!.client_id, scope: ["mcp:tools"] });
        await mcp.close();
      } finally {
        await context.close();
        await new Promise((resolve) => callback.close(resolve));
      }
    },
  );

  it("is printed, and answers as a protected resource: a 401 naming its metadata, and the metadata naming the issuer", async () => {
    expect(started.output()).toContain(`Demo MCP server:   ${issuer}/mcp`);
    const challenge = await fetch(`${issuer}/mcp`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get("www-authenticate")).toContain(`resource_metadata="${issuer}/.well-known/oauth-protected-resource/mcp"`);
    expect(challenge.headers.get("www-authenticate")).toContain('scope="mcp:tools"');
    const metadata = await (await fetch(`${issuer}/.well-known/oauth-protected-resource/mcp`)).json();
    expect(metadata).toEqual({
      resource: `${issuer}/mcp`,
      authorization_servers: [issuer],
      scopes_supported: ["mcp:tools"],
      bearer_methods_supported: ["header"],
      resource_name: "gatehouse demo MCP server",
    });
  });
});
