import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CLIENT_ADDRESS_HEADER, SERVICE_CREDENTIAL_HEADER } from "../../contract/metadata.js";
import { OAuthErrorDetailSchema } from "../../gen/gatehouse/v1/errors_pb.js";
import { RegistrationService } from "../../gen/gatehouse/v1/registration_service_pb.js";
import { SECRETS, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { UserAgent, unescapeHtml } from "../support/gateway-oauth-flow.js";
import { startTestStack, type TestStack } from "../support/stack.js";
import { signInAt, tenantSection } from "../support/tenants.js";

/**
 * Issue 15: RFC 7591 dynamic client registration and RFC 7592 management
 * through the gateway, per tenant policy: the default tenant open
 * (rate-limited per address), acme behind an initial access token (and
 * confidential clients allowed), globex off. Real authz service, real
 * gateway, real Redis; oauth4webapi as the client.
 */
const INITIAL_ACCESS_TOKEN = "initial-access-token-0123456789abcdefghijklmnop";
const TTL_SECONDS = 3_600;
const TOUCH_SECONDS = 600;
let stack: TestStack;
let now = Date.now();
let secretsDir: string;
const insecure = { [oauth.allowInsecureRequests]: true } as const;

beforeAll(async () => {
  secretsDir = mkdtempSync(join(tmpdir(), "gatehouse-registration-"));
  const tokenFile = join(secretsDir, "initial-access-token");
  writeFileSync(tokenFile, INITIAL_ACCESS_TOKEN);
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    authzOverrides: { clock: () => now },
    patch: (file) => {
      file.registration = { policy: "open", rateLimit: { max: 1_000, windowSeconds: 60 }, scopes: ["read", "write"], unusedClientTtlSeconds: TTL_SECONDS, touchIntervalSeconds: TOUCH_SECONDS };
      file.tenants = [
        { ...tenantSection("acme"), registration: { policy: "initialAccessToken", initialAccessTokens: [{ file: tokenFile }], allowConfidential: true, scopes: ["read"] } },
        tenantSection("globex"),
        { ...tenantSection("tight"), registration: { policy: "open", rateLimit: { max: 2, windowSeconds: 600 }, scopes: ["read"] } },
      ];
    },
  });
});
afterAll(async () => {
  await stack?.close();
  rmSync(secretsDir, { recursive: true, force: true });
});

const register = (base: string, metadata: unknown, headers: Record<string, string> = {}) =>
  fetch(`${stack.issuer}${base}/oauth2/register`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(metadata) });

/** Discovery of a tenant's metadata (RFC 8414 §3.1 path insertion for a named tenant). */
async function discover(base: string): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(`${stack.issuer}${base}`);
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
}

/** The authorization request through the gateway as a signed-in browser; the consent page's HTML, or the redirect. */
async function authorize(agent: UserAgent, base: string, parameters: Record<string, string>) {
  const response = await agent.get(`${base}/oauth2/authorize?${new URLSearchParams(parameters)}`);
  return { status: response.status, html: await response.text(), location: response.headers.get("location") };
}

describe("RFC 7591 registration policies", () => {
  it("RFC 8414 §2: registration_endpoint is advertised where the policy is on, and only there", async () => {
    expect((await discover("")).registration_endpoint).toBe(`${stack.issuer}/oauth2/register`);
    expect((await discover("/acme")).registration_endpoint).toBe(`${stack.issuer}/acme/oauth2/register`);
    expect((await discover("/globex")).registration_endpoint).toBeUndefined();
  });

  it("policy off: the registration endpoint does not exist (404), and RFC 7592 management neither", async () => {
    const response = await register("/globex", { redirect_uris: ["http://127.0.0.1/cb"] });
    expect(response.status).toBe(404);
    expect((await fetch(`${stack.issuer}/globex/oauth2/register?client_id=x`, { headers: { authorization: "Bearer x" } })).status).toBe(404);
  });

  it("policy initialAccessToken: RFC 7591 §3 / RFC 6750 §3.1: no or a wrong token is 401 invalid_token with a Bearer challenge; the right one registers", async () => {
    const metadata = { redirect_uris: ["https://app.example/cb"], client_name: "Acme CLI" };
    for (const headers of [{}, { authorization: `Bearer ${INITIAL_ACCESS_TOKEN.slice(0, -1)}x` }] as Array<Record<string, string>>) {
      const refused = await register("/acme", metadata, headers);
      expect(refused.status).toBe(401);
      expect(refused.headers.get("www-authenticate")).toMatch(/^Bearer .*error="invalid_token"/);
      expect(await refused.json()).toMatchObject({ error: "invalid_token" });
    }
    const accepted = await register("/acme", metadata, { authorization: `Bearer ${INITIAL_ACCESS_TOKEN}` });
    expect(accepted.status).toBe(201);
    // The same token is no key to another tenant: the default tenant is open anyway, globex is off.
    expect((await register("/globex", metadata, { authorization: `Bearer ${INITIAL_ACCESS_TOKEN}` })).status).toBe(404);
  });

  it("RFC 7591 §3.2.2: invalid_redirect_uri and invalid_client_metadata in the RFC's JSON shape, 400, never cached", async () => {
    const cases: Array<[unknown, string]> = [
      [{ redirect_uris: ["http://app.example/cb"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["https://app.example/cb#frag"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["myapp:/cb"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["https://app.example/cb"], grant_types: ["client_credentials"] }, "invalid_client_metadata"],
      // The default tenant does not allow confidential clients.
      [{ redirect_uris: ["https://app.example/cb"], token_endpoint_auth_method: "client_secret_basic" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], client_id: "chosen-by-me" }, "invalid_client_metadata"],
    ];
    for (const [metadata, error] of cases) {
      const response = await register("", metadata);
      expect(response.status, JSON.stringify(metadata)).toBe(400);
      expect(response.headers.get("cache-control")).toBe("no-store");
      const body = (await response.json()) as Record<string, unknown>;
      expect(body.error).toBe(error);
      expect(body.error_description).toBeTypeOf("string");
    }
    const notJson = await fetch(`${stack.issuer}/oauth2/register`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(((await notJson.json()) as { error: string }).error).toBe("invalid_client_metadata");
    const form = await fetch(`${stack.issuer}/oauth2/register`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "redirect_uris=x" });
    expect(form.status).toBe(415);
  });

  it("RFC 7591 §3.2.1: a public client (none) by default; with allowConfidential a secret is shown once and client_secret_expires_at is sent", async () => {
    const open = (await (await register("", { redirect_uris: ["http://127.0.0.1/cb"] })).json()) as Record<string, unknown>;
    expect(open).toMatchObject({ token_endpoint_auth_method: "none", grant_types: ["authorization_code"], response_types: ["code"], scope: "read write" });
    expect(open.client_secret).toBeUndefined();
    expect(open.client_secret_expires_at).toBeUndefined();
    expect(open.client_id_issued_at).toBe(Math.floor(now / 1000));

    const confidential = (await (await register("/acme", { redirect_uris: ["https://app.example/cb"], token_endpoint_auth_method: "client_secret_basic" }, { authorization: `Bearer ${INITIAL_ACCESS_TOKEN}` })).json()) as Record<string, unknown>;
    expect(confidential.client_secret).toBeTypeOf("string");
    expect((confidential.client_secret as string).length).toBeGreaterThanOrEqual(43);
    expect(confidential.client_secret_expires_at).toBe(0);
    // RFC 7592 §2.1: a read does not show the secret again.
    const read = (await (await fetch(confidential.registration_client_uri as string, { headers: { authorization: `Bearer ${confidential.registration_access_token as string}` } })).json()) as Record<string, unknown>;
    expect(read.client_secret).toBeUndefined();
    expect(read.client_secret_expires_at).toBe(0);
  });
});

describe("RFC 7592 management with the registration access token", () => {
  it("RFC 7592 §2.1–2.3: read, update (whole replacement), delete; a wrong token or another client's is 401 invalid_token", async () => {
    const created = (await (await register("", { redirect_uris: ["http://127.0.0.1/cb"], client_name: "First" })).json()) as Record<string, string>;
    const other = (await (await register("", { redirect_uris: ["http://127.0.0.1/cb"] })).json()) as Record<string, string>;
    const uri = created.registration_client_uri!;
    // Management without naming the client is the client's error, in the RFC's shape.
    const unnamed = await fetch(`${stack.issuer}/oauth2/register`, { headers: { authorization: `Bearer ${created.registration_access_token!}` } });
    expect(unnamed.status).toBe(400);
    expect(((await unnamed.json()) as { error: string }).error).toBe("invalid_request");
    expect(uri).toBe(`${stack.issuer}/oauth2/register?client_id=${encodeURIComponent(created.client_id!)}`);
    const as = (token: string) => ({ authorization: `Bearer ${token}` });

    const read = await fetch(uri, { headers: as(created.registration_access_token!) });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ client_id: created.client_id, client_name: "First", registration_client_uri: uri, registration_access_token: created.registration_access_token });

    for (const token of ["", other.registration_access_token!, `${created.registration_access_token!.slice(0, -2)}AA`]) {
      const refused = await fetch(uri, { headers: token === "" ? {} : as(token) });
      expect(refused.status).toBe(401);
      expect(refused.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
    }

    const put = (body: unknown) => fetch(uri, { method: "PUT", headers: { ...as(created.registration_access_token!), "content-type": "application/json" }, body: JSON.stringify(body) });
    // §2.2: the client_id must be the client's; server-assigned fields must not be sent.
    expect((await put({ client_id: other.client_id, redirect_uris: ["http://127.0.0.1/cb"] })).status).toBe(400);
    expect(((await (await put({ client_id: created.client_id, redirect_uris: ["http://127.0.0.1/cb"], registration_access_token: "x" })).json()) as { error: string }).error).toBe("invalid_client_metadata");
    const updated = await put({ client_id: created.client_id, redirect_uris: ["https://app.example/new"], scope: "read" });
    expect(updated.status).toBe(200);
    const body = (await updated.json()) as Record<string, unknown>;
    // §2.2: omitted fields are removed: the name is gone.
    expect(body).toMatchObject({ client_id: created.client_id, redirect_uris: ["https://app.example/new"], scope: "read" });
    expect(body.client_name).toBeUndefined();

    const remove = () => fetch(uri, { method: "DELETE", headers: as(created.registration_access_token!) });
    expect((await remove()).status).toBe(204);
    // §2.3: the client is gone: its token no longer works, and it cannot be used to sign in.
    expect((await remove()).status).toBe(401);
    expect((await fetch(uri, { headers: as(created.registration_access_token!) })).status).toBe(401);
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "");
    const page = await authorize(agent, "", { response_type: "code", client_id: created.client_id!, redirect_uri: "https://app.example/new", code_challenge: "x".repeat(43), code_challenge_method: "S256" });
    expect(page.status).toBe(400);
  });

  it("clients are per tenant: acme's registration access token manages nothing in the default tenant", async () => {
    const acme = (await (await register("/acme", { redirect_uris: ["https://app.example/cb"] }, { authorization: `Bearer ${INITIAL_ACCESS_TOKEN}` })).json()) as Record<string, string>;
    expect(acme.registration_client_uri).toBe(`${stack.issuer}/acme/oauth2/register?client_id=${encodeURIComponent(acme.client_id!)}`);
    const elsewhere = await fetch(`${stack.issuer}/oauth2/register?client_id=${encodeURIComponent(acme.client_id!)}`, { headers: { authorization: `Bearer ${acme.registration_access_token!}` } });
    expect(elsewhere.status).toBe(401);
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "");
    expect((await authorize(agent, "", { response_type: "code", client_id: acme.client_id!, redirect_uri: "https://app.example/cb", code_challenge: "x".repeat(43), code_challenge_method: "S256" })).status).toBe(400);
  });
});

describe("a dynamically registered public client with oauth4webapi", () => {
  it("RFC 7591 + RFC 6749 §4.1 + RFC 7636: registers, and completes the code flow with PKCE from a loopback redirect on any port (RFC 8252 §7.3)", async () => {
    const as = await discover("");
    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(as, { redirect_uris: ["http://127.0.0.1/callback"], client_name: "Loopback CLI", token_endpoint_auth_method: "none", scope: "read" }, insecure),
    );
    const client: oauth.Client = { client_id: registered.client_id };
    const redirectUri = "http://127.0.0.1:49152/callback";
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "");
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const parameters = { response_type: "code", client_id: client.client_id, redirect_uri: redirectUri, scope: "read", state, code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: "S256" };
    const page = await authorize(agent, "", parameters);
    expect(page.status).toBe(200);
    // The consent page says the name is self-asserted.
    expect(page.html).toContain("Loopback CLI");
    expect(page.html).toContain("registered itself");
    const decided = await agent.submit(page.html, "/oauth2/consent", { decision: "allow" });
    expect(decided.status).toBe(303);
    const location = new URL(decided.headers.get("location")!);
    expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
    const callback = oauth.validateAuthResponse(as, client, location, state);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), callback, redirectUri, codeVerifier, insecure));
    expect(tokens.access_token).toBeTypeOf("string");
    expect(tokens.scope).toBe("read");
    // And a refresh works only if the client registered the refresh_token grant: it did not.
    expect(tokens.refresh_token).toBeUndefined();
  });

  it("RFC 9700 §2.1.1: a registered public client must use PKCE; RFC 8252 §7.3: leniency is for the port only", async () => {
    const registered = (await (await register("", { redirect_uris: ["http://127.0.0.1/callback"] })).json()) as Record<string, string>;
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "");
    const noPkce = await authorize(agent, "", { response_type: "code", client_id: registered.client_id!, redirect_uri: "http://127.0.0.1:5000/callback", state: "s" });
    expect(noPkce.status).toBe(302);
    expect(new URL(noPkce.location!).searchParams.get("error")).toBe("invalid_request");
    const otherPath = await authorize(agent, "", { response_type: "code", client_id: registered.client_id!, redirect_uri: "http://127.0.0.1:5000/other", code_challenge: "x".repeat(43), code_challenge_method: "S256" });
    expect(otherPath.status).toBe(400);
  });
});

describe("expiry of unused dynamic clients (the clock is the authz service's, moved, not waited for)", () => {
  it("a client unused for unusedClientTtlSeconds is forgotten; one used within it lives on (its use recorded at most once per touch interval)", async () => {
    const pkce = { code_challenge: "x".repeat(43), code_challenge_method: "S256" };
    const used = (await (await register("", { redirect_uris: ["http://127.0.0.1/cb"], client_name: "Used" })).json()) as Record<string, string>;
    const unused = (await (await register("", { redirect_uris: ["http://127.0.0.1/cb"], client_name: "Unused" })).json()) as Record<string, string>;
    const agent = new UserAgent(stack.gateway.url);
    await signInAt(agent, "");
    const ask = (client: Record<string, string>) => authorize(agent, "", { response_type: "code", client_id: client.client_id!, redirect_uri: "http://127.0.0.1/cb", ...pkce });

    now += (TOUCH_SECONDS + 1) * 1000;
    expect((await ask(used)).status).toBe(200); // a use, recorded
    now += (TTL_SECONDS - TOUCH_SECONDS) * 1000;
    // unused: TTL + 1 s since its registration; used: TTL - TOUCH since its last use.
    const gone = await ask(unused);
    expect(gone.status).toBe(400);
    expect(unescapeHtml(gone.html)).toContain("unknown client_id");
    expect((await fetch(unused.registration_client_uri!, { headers: { authorization: `Bearer ${unused.registration_access_token!}` } })).status).toBe(401);
    expect((await ask(used)).status).toBe(200);

    // The sweep deletes what lookups already refuse, from the tenant's registry, and nothing else.
    const deps = stack.authz.running.deps;
    const registry = deps.store.registry.clients;
    expect(await registry.get(unused.client_id!)).toMatchObject({ source: "registration" });
    const registration = deps.server().registration;
    let deleted = 0;
    for (let after: string | undefined, page; ; after = page.next) {
      page = await registration.sweepUnused(after, 2);
      deleted += page.deleted;
      if (page.next === undefined) break;
    }
    expect(deleted).toBeGreaterThanOrEqual(1);
    expect(await registry.get(unused.client_id!)).toBeUndefined();
    expect(await registry.get(used.client_id!)).toMatchObject({ source: "registration" });
  });
});

describe("open registration's per-address limit, shared by replicas", () => {
  let replicas: TestAuthz[] = [];
  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.close()));
  });

  it("RFC 7591 §3 open registration: the limit per address counts across two authz replicas over one Redis; another address is not affected", async () => {
    const keyPrefix = `registration-replicas-${Date.now()}:`;
    const patch = (file: Record<string, unknown>) => {
      file.registration = { policy: "open", rateLimit: { max: 3, windowSeconds: 600 }, scopes: ["read"] };
    };
    replicas = await Promise.all([0, 1].map(() => startTestAuthz({ redisUrl: inject("redisUrl"), keyPrefix, patch })));
    const clients = replicas.map((replica) => createClient(RegistrationService, replica.transport));
    const from = (address: string) => ({ headers: { [SERVICE_CREDENTIAL_HEADER]: SECRETS.service, [CLIENT_ADDRESS_HEADER]: address } });
    const metadataJson = JSON.stringify({ redirect_uris: ["http://127.0.0.1/cb"] });
    for (let i = 0; i < 3; i++) {
      const { client } = await clients[i % 2]!.registerClient({ metadataJson }, from("203.0.113.7"));
      expect(client?.clientId).toBeTypeOf("string");
    }
    for (const replica of clients) {
      const error = await replica.registerClient({ metadataJson }, from("203.0.113.7")).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error?.code).toBe(Code.ResourceExhausted);
      const [detail] = error!.findDetails(OAuthErrorDetailSchema);
      expect(detail?.error).toBe("too_many_attempts");
      expect(Number(detail?.retryAfter)).toBeGreaterThan(0);
    }
    expect((await clients[1]!.registerClient({ metadataJson }, from("203.0.113.8"))).client?.clientId).toBeTypeOf("string");
    // Without the gateway's credential, the service refuses (the client address would be anyone's to claim).
    await expect(clients[0]!.registerClient({ metadataJson }, { headers: { [CLIENT_ADDRESS_HEADER]: "203.0.113.9" } })).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("through the gateway: past the limit, 429 with Retry-After (tenant tight allows 2 per address)", async () => {
    for (let i = 0; i < 2; i++) expect((await register("/tight", { redirect_uris: ["http://127.0.0.1/cb"] })).status).toBe(201);
    const refused = await register("/tight", { redirect_uris: ["http://127.0.0.1/cb"] });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await refused.json()) as { error: string }).error).toBe("temporarily_unavailable");
  });
});
