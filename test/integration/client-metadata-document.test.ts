import type { LookupAddress } from "node:dns";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { createClientMetadataDocumentFetcher, METADATA_DOCUMENT_MAX_BYTES } from "../../services/authz/fetch/client-metadata-document-fetcher.js";
import { ClientMetadataDocumentError } from "../../services/authz/oauth/metadata-documents.js";
import { UserAgent, unescapeHtml } from "../support/gateway-oauth-flow.js";
import { startLocalHttpsServer, type LocalHttpsServer } from "../support/local-https-server.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { signInAt } from "../support/tenants.js";

/**
 * Issue 15: Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document).
 * A real https server on loopback serves the documents; a resolver the test
 * controls maps test names to it (or to elsewhere), as a name server would,
 * rebinding included. The certificate is trusted as a development CA
 * (authz.fetch.trustedCa), loopback only through the allow-list.
 */
type Handler = (request: IncomingMessage, response: ServerResponse) => void;
let server: LocalHttpsServer;
let handler: Handler;
/** Requests the server received, by path. */
const received: string[] = [];

beforeAll(async () => {
  server = await startLocalHttpsServer(
    "cimd",
    (request, response) => {
      received.push(request.url ?? "");
      handler(request, response);
    },
    ["app.test", "evil.test", "rebind.test"],
  );
});
afterAll(() => server?.close());
beforeEach(() => {
  received.length = 0;
});

const json = (body: unknown, headers: Record<string, string> = {}): Handler => (_request, response) => {
  response.writeHead(200, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
};

describe("the metadata document fetcher: SSRF guards and bounds (safeHttpsGet)", () => {
  let now = 1_800_000_000_000;
  /** The test's name server: answers per name, and counts the questions. */
  const answers = new Map<string, Array<LookupAddress[]>>();
  const asked: string[] = [];
  const resolve = async (hostname: string): Promise<LookupAddress[]> => {
    asked.push(hostname);
    const queue = answers.get(hostname);
    if (queue === undefined || queue.length === 0) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return queue.length > 1 ? queue.shift()! : queue[0]!;
  };
  const loopback: LookupAddress[] = [{ address: "127.0.0.1", family: 4 }];
  const fetcher = (options: { allow?: string[]; timeoutMs?: number } = {}) =>
    createClientMetadataDocumentFetcher({
      clock: () => now,
      timeoutMs: options.timeoutMs ?? 2_000,
      allowPrivateHosts: options.allow ?? ["app.test"],
      ca: server.certificate,
      resolve,
      minCacheSeconds: 60,
      maxCacheSeconds: 300,
      failureCacheSeconds: 10,
    });
  const url = (host: string, path = "/client.json") => `https://${host}:${server.port}${path}`;
  const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error as Error);

  beforeEach(() => {
    answers.clear();
    asked.length = 0;
    answers.set("app.test", [loopback]);
    answers.set("evil.test", [loopback]);
  });

  it("fetches a document from an allow-listed host (development) through the trusted test CA", async () => {
    handler = json({ client_id: url("app.test"), redirect_uris: ["http://127.0.0.1/cb"] });
    expect(await fetcher().get(url("app.test"))).toEqual({ client_id: url("app.test"), redirect_uris: ["http://127.0.0.1/cb"] });
  });

  it("SSRF: a host that resolves to a loopback address is refused before any connection", async () => {
    handler = json({});
    const error = await failure(fetcher().get(url("evil.test")));
    expect(error).toBeInstanceOf(ClientMetadataDocumentError);
    expect(error?.message).toMatch(/private, loopback or link-local/);
    expect(received).toEqual([]);
  });

  it("SSRF: one private address among public ones is refused", async () => {
    answers.set("evil.test", [[{ address: "203.0.113.10", family: 4 }, { address: "10.0.0.5", family: 4 }]]);
    expect((await failure(fetcher().get(url("evil.test"))))?.message).toMatch(/private, loopback or link-local/);
  });

  it.each([["127.0.0.1"], ["[::1]"], ["169.254.169.254"], ["10.1.2.3"]])("SSRF: an IP-literal URL of %s is refused", async (host) => {
    expect((await failure(fetcher().get(`https://${host}:${server.port}/client.json`)))?.message).toMatch(/private, loopback or link-local/);
    expect(received).toEqual([]);
  });

  it("SSRF, DNS rebinding: the name is resolved once and the connection pinned to the checked answer; a second answer (loopback) is never used", async () => {
    // A rebinding name server: a public address for the check, then loopback for whoever asks again.
    answers.set("rebind.test", [[{ address: "192.0.2.1", family: 4 }], loopback]);
    handler = json({ client_id: url("rebind.test"), redirect_uris: ["http://127.0.0.1/cb"] });
    const error = await failure(fetcher({ timeoutMs: 500 }).get(url("rebind.test")));
    expect(error).toBeInstanceOf(ClientMetadataDocumentError);
    expect(asked.filter((name) => name === "rebind.test")).toHaveLength(1);
    expect(received).toEqual([]);
  });

  it("no redirects are followed: a 3xx is a failure, and its target is never fetched", async () => {
    handler = (request, response) => {
      if (request.url === "/moved.json") return response.writeHead(302, { location: "/client.json" }).end();
      json({})(request, response);
    };
    expect((await failure(fetcher().get(url("app.test", "/moved.json"))))?.message).toMatch(/redirects are not followed/);
    expect(received).toEqual(["/moved.json"]);
  });

  it(`a document larger than ${METADATA_DOCUMENT_MAX_BYTES} bytes is refused, declared or streamed`, async () => {
    const big = JSON.stringify({ client_id: url("app.test"), padding: "x".repeat(METADATA_DOCUMENT_MAX_BYTES) });
    handler = (_request, response) => response.writeHead(200, { "content-type": "application/json" }).end(big);
    expect((await failure(fetcher().get(url("app.test"))))?.message).toMatch(/larger than/);
    handler = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.write(big.slice(0, 4_000));
      response.end(big.slice(4_000));
    };
    expect((await failure(fetcher().get(url("app.test", "/chunked.json"))))?.message).toMatch(/larger than/);
  });

  it("a server that does not answer in time is given up on", async () => {
    const held: ServerResponse[] = [];
    handler = (_request, response) => {
      held.push(response);
      response.writeHead(200, { "content-type": "application/json" });
      response.write("{");
    };
    const error = await failure(fetcher({ timeoutMs: 300 }).get(url("app.test", "/slow.json")));
    for (const response of held) response.destroy();
    expect(error?.message).toMatch(/no complete answer within 300 ms/);
  });

  it("RFC 9111 §5.2.2: cached for its Cache-Control max-age within [min, max]; a failure is remembered briefly", async () => {
    handler = json({ client_id: "a" }, { "cache-control": "max-age=120" });
    const documents = fetcher();
    await documents.get(url("app.test", "/a.json"));
    now += 119_000;
    await documents.get(url("app.test", "/a.json"));
    expect(received).toEqual(["/a.json"]);
    now += 2_000;
    await documents.get(url("app.test", "/a.json"));
    expect(received).toEqual(["/a.json", "/a.json"]);

    // Above the maximum: kept for 300 s, not a day.
    handler = json({ client_id: "b" }, { "cache-control": "max-age=86400" });
    await documents.get(url("app.test", "/b.json"));
    now += 299_000;
    await documents.get(url("app.test", "/b.json"));
    now += 2_000;
    await documents.get(url("app.test", "/b.json"));
    expect(received.filter((path) => path === "/b.json")).toHaveLength(2);

    // no-store counts as the minimum: a client cannot make every request fetch again.
    handler = json({ client_id: "c" }, { "cache-control": "no-store" });
    await documents.get(url("app.test", "/c.json"));
    now += 59_000;
    await documents.get(url("app.test", "/c.json"));
    expect(received.filter((path) => path === "/c.json")).toHaveLength(1);

    handler = (_request, response) => response.writeHead(500).end();
    await failure(documents.get(url("app.test", "/d.json")));
    await failure(documents.get(url("app.test", "/d.json")));
    expect(received.filter((path) => path === "/d.json")).toHaveLength(1);
    now += 11_000;
    await failure(documents.get(url("app.test", "/d.json")));
    expect(received.filter((path) => path === "/d.json")).toHaveLength(2);
  });
});

describe("a Client ID Metadata Document client through the gateway", () => {
  let stack: TestStack;
  const documents = new Map<string, unknown>();
  const clientId = (path: string) => `https://localhost:${server.port}${path}`;
  const insecure = { [oauth.allowInsecureRequests]: true } as const;

  beforeAll(async () => {
    handler = (request, response) => {
      const document = documents.get(request.url ?? "");
      if (document === undefined) return response.writeHead(404).end();
      response.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=60" }).end(JSON.stringify(document));
    };
    stack = await startTestStack({
      redisUrl: inject("redisUrl"),
      patch: (file) => {
        file.registration = { policy: "off", clientIdMetadataDocuments: true, scopes: ["read"] };
        const authz = file.authz as Record<string, unknown>;
        // Development: the test CA trusted, and localhost's loopback address allowed.
        authz.fetch = { trustedCa: { file: server.certificateFile }, allowPrivateHosts: ["localhost"] };
      },
    });
  });
  afterAll(() => stack?.close());

  it("CIMD §5: the metadata says client_id_metadata_document_supported; registration is off, so no registration_endpoint", async () => {
    const metadata = (await (await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(metadata.client_id_metadata_document_supported).toBe(true);
    expect(metadata.registration_endpoint).toBeUndefined();
  });

  it("CIMD: the document's client signs in with oauth4webapi; the consent page shows its name and logo, and its host prominently", async () => {
    const id = clientId("/mcp-client.json");
    documents.set("/mcp-client.json", {
      client_id: id,
      client_name: "Friendly MCP Client",
      logo_uri: "https://logos.example/logo.png",
      redirect_uris: ["http://127.0.0.1/callback"],
      token_endpoint_auth_method: "none",
    });
    const issuer = new URL(stack.issuer);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
    const client: oauth.Client = { client_id: id };
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "");
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const redirectUri = "http://127.0.0.1:61000/callback";
    const page = await agent.get(`/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: id, redirect_uri: redirectUri, scope: "read", state, code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: "S256" })}`);
    expect(page.status).toBe(200);
    const html = unescapeHtml(await page.text());
    expect(html).toContain("Friendly MCP Client");
    expect(html).toMatch(new RegExp(`class="origin">This application is published by <strong>localhost:${server.port}</strong>`));
    expect(html).toContain('<img class="logo" src="https://logos.example/logo.png"');
    expect(page.headers.get("content-security-policy")).toContain("img-src data: https://logos.example;");
    const decided = await agent.submit(await Promise.resolve(html), "/oauth2/consent", { decision: "allow" });
    expect(decided.status).toBe(303);
    const callback = oauth.validateAuthResponse(as, client, new URL(decided.headers.get("location")!), state);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), callback, redirectUri, codeVerifier, insecure));
    expect(tokens.access_token).toBeTypeOf("string");
  });

  it("CIMD: the login page names the document's host beside its self-asserted name", async () => {
    const page = await new UserAgent(stack.gateway.url).get(`/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: clientId("/mcp-client.json"), redirect_uri: "http://127.0.0.1/callback", code_challenge: "x".repeat(43), code_challenge_method: "S256" })}`);
    expect(page.status).toBe(200);
    expect(unescapeHtml(await page.text())).toContain(`to continue to <strong>Friendly MCP Client</strong> (published by <strong>localhost:${server.port}</strong>)`);
  });

  it("CIMD §4.1: a document whose client_id is not its URL is refused, shown to the user and never redirected", async () => {
    documents.set("/impostor.json", { client_id: clientId("/mcp-client.json"), client_name: "Impostor", redirect_uris: ["http://127.0.0.1/callback"] });
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "");
    const page = await agent.get(`/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: clientId("/impostor.json"), redirect_uri: "http://127.0.0.1/callback", code_challenge: "x".repeat(43), code_challenge_method: "S256" })}`);
    expect(page.status).toBe(400);
    expect(page.headers.get("location")).toBeNull();
    expect(unescapeHtml(await page.text())).toContain("names another client_id than its URL");
  });

  it("CIMD: the document's redirect URIs are matched exactly (loopback: any port, nothing else)", async () => {
    const id = clientId("/strict.json");
    documents.set("/strict.json", { client_id: id, redirect_uris: ["https://app.example/cb", "http://127.0.0.1/cb"] });
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "");
    const ask = (redirectUri: string) => agent.get(`/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: id, redirect_uri: redirectUri, code_challenge: "x".repeat(43), code_challenge_method: "S256" })}`);
    expect((await ask("https://app.example/cb")).status).toBe(200);
    expect((await ask("http://127.0.0.1:4321/cb")).status).toBe(200);
    expect((await ask("https://app.example/cb/")).status).toBe(400);
    expect((await ask("https://app.example:8443/cb")).status).toBe(400);
  });

  it("CIMD: an unreachable or missing document is an unknown client, on an error page", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "");
    const page = await agent.get(`/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: clientId("/missing.json"), redirect_uri: "http://127.0.0.1/cb", code_challenge: "x".repeat(43), code_challenge_method: "S256" })}`);
    expect(page.status).toBe(400);
    expect(unescapeHtml(await page.text())).toContain("answered 404");
  });
});
