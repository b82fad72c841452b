import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { buildApp } from "../../gateway/app.js";
import { parseGatewayConfig } from "../../gateway/config.js";
import { createGatewayDeps } from "../../gateway/deps.js";
import { baseConfigFile, basic, issueTokens, obtainCode, pkcePair, SECRETS, startTestAuthz, testEnvironment, WEB_REDIRECT, type TestAuthz } from "../support/authz.js";
import { freePort } from "../support/redis-server.js";
import { gatewaySection } from "../support/stack.js";

/**
 * The token and introspection endpoints beneath fastify
 * (gateway/plugins/lean-token-endpoints.ts) answer exactly as the routes
 * through fastify do: two gateways on one authz service, one with
 * `leanEndpoints: false`, get the same requests and must give the same
 * status, headers and body; and the lean one must really have served them
 * beneath fastify (its fastify never saw them), except what it leaves to
 * fastify on purpose.
 */
interface Gateway {
  readonly app: FastifyInstance;
  readonly url: string;
  /** Requests fastify's request cycle saw, by URL. */
  readonly seenByFastify: string[];
}

let authz: TestAuthz;
let lean: Gateway;
let routed: Gateway;
const issuerPort = await freePort();
const issuer = `http://127.0.0.1:${issuerPort}`;

async function startGateway(leanEndpoints: boolean, port: number): Promise<Gateway> {
  const file = baseConfigFile();
  file.issuer = issuer;
  file.requireHttps = false;
  file.gateway = { ...gatewaySection(authz.running.url, port), leanEndpoints };
  const config = parseGatewayConfig(stringify(file), await testEnvironment(inject("redisUrl")));
  const deps = createGatewayDeps(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }));
  const app = await buildApp(deps);
  const seenByFastify: string[] = [];
  app.addHook("onRequest", async (request) => void seenByFastify.push(request.url));
  await app.listen({ host: "127.0.0.1", port });
  return { app, url: `http://127.0.0.1:${port}`, seenByFastify };
}

beforeAll(async () => {
  authz = await startTestAuthz({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      file.issuer = issuer;
      file.requireHttps = false;
    },
  });
  lean = await startGateway(true, issuerPort);
  routed = await startGateway(false, await freePort());
});
afterAll(async () => {
  await lean?.app.close();
  await routed?.app.close();
  await authz?.close();
});

const FORM = "application/x-www-form-urlencoded";
const web = basic("web", SECRETS.web).headers;
const wrongSecret = basic("web", "not-the-secret").headers;
const resourceServer = basic("resource-server", SECRETS.resourceServer).headers;

/** What a client sees of an answer: status, the headers that carry meaning, and the body. */
async function answerOf(gateway: Gateway, path: string, init: { body?: string; headers?: Record<string, string> }) {
  const response = await fetch(`${gateway.url}${path}`, { method: "POST", ...init });
  const headers: Record<string, string> = {};
  for (const name of ["content-type", "cache-control", "pragma", "www-authenticate", "access-control-allow-origin", "retry-after", "location"]) {
    const value = response.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  return { status: response.status, headers, body: await response.text() };
}

const long = (n: number) => "a".repeat(n);

describe("the token and introspection endpoints beneath fastify answer as the routes through it", () => {
  const cases: Array<[string, string, { body?: string; headers?: Record<string, string> }, "lean" | "fastify"]> = [
    ["RFC 6749 §5.2: grant_type missing", "/oauth2/token", { body: "code=x", headers: { "content-type": FORM, ...web } }, "lean"],
    ["RFC 6749 §5.2: unsupported_grant_type", "/oauth2/token", { body: "grant_type=password&username=a&password=b", headers: { "content-type": FORM, ...web } }, "lean"],
    ["RFC 6749 §5.2: invalid_client after Basic is 401 with a challenge", "/oauth2/token", { body: "grant_type=authorization_code&code=x", headers: { "content-type": FORM, ...wrongSecret } }, "lean"],
    ["RFC 6749 §5.2: invalid_client without credentials", "/oauth2/token", { body: "grant_type=authorization_code&code=x", headers: { "content-type": FORM } }, "lean"],
    ["RFC 6749 §5.2: invalid_grant for an unknown code", "/oauth2/token", { body: `grant_type=authorization_code&code=nope&redirect_uri=${encodeURIComponent(WEB_REDIRECT)}&code_verifier=${long(43)}`, headers: { "content-type": FORM, ...web } }, "lean"],
    ["RFC 6749 §3.2: a parameter given twice", "/oauth2/token", { body: "grant_type=refresh_token&grant_type=refresh_token", headers: { "content-type": FORM, ...web } }, "lean"],
    ["a malformed percent-encoding", "/oauth2/token", { body: "grant_type=authorization_code&code=%zz", headers: { "content-type": FORM, ...web } }, "lean"],
    ["invalid UTF-8", "/oauth2/token", { body: "grant_type=authorization_code&code=%C0%AF", headers: { "content-type": FORM, ...web } }, "lean"],
    ["a parameter without a name", "/oauth2/token", { body: "grant_type=authorization_code&=v", headers: { "content-type": FORM, ...web } }, "lean"],
    ["a code too long", "/oauth2/token", { body: `grant_type=authorization_code&code=${long(513)}`, headers: { "content-type": FORM, ...web } }, "lean"],
    ["a code outside VSCHAR", "/oauth2/token", { body: "grant_type=authorization_code&code=a%01b", headers: { "content-type": FORM, ...web } }, "lean"],
    ["grant_type missing comes before a code too long", "/oauth2/token", { body: `code=${long(600)}`, headers: { "content-type": FORM, ...web } }, "lean"],
    ["an unknown parameter too long comes before a known one malformed", "/oauth2/token", { body: `code=%01&extra=${long(4097)}&grant_type=authorization_code`, headers: { "content-type": FORM, ...web } }, "lean"],
    ["an unknown parameter with an odd name, too long", "/oauth2/token", { body: `grant_type=refresh_token&%E2%9C%93=${long(4097)}`, headers: { "content-type": FORM, ...web } }, "lean"],
    ["known parameters in the schema's order", "/oauth2/token", { body: `redirect_uri=%01&code=${long(513)}&grant_type=authorization_code`, headers: { "content-type": FORM, ...web } }, "lean"],
    ["a grant_type that is not a grant name", "/oauth2/token", { body: "grant_type=a%20b", headers: { "content-type": FORM, ...web } }, "lean"],
    ["charset=UTF-8 declared", "/oauth2/token", { body: "grant_type=authorization_code&code=x", headers: { "content-type": `${FORM}; charset=UTF-8`, ...wrongSecret } }, "lean"],
    ["another charset", "/oauth2/token", { body: "grant_type=authorization_code", headers: { "content-type": `${FORM}; charset=ISO-8859-1`, ...web } }, "fastify"],
    ["another content type", "/oauth2/token", { body: "{}", headers: { "content-type": "application/json", ...web } }, "fastify"],
    ["an empty body", "/oauth2/token", { body: "", headers: { "content-type": FORM, ...web } }, "fastify"],
    ["a body over the limit", "/oauth2/token", { body: `grant_type=x&pad=${long(20_000)}`, headers: { "content-type": FORM, ...web } }, "fastify"],
    ["RFC 8707 §2: two resources for client_credentials are invalid_target", "/oauth2/token", { body: "grant_type=client_credentials&resource=https%3A%2F%2Fa.test&resource=https%3A%2F%2Fb.test", headers: { "content-type": FORM, ...web } }, "lean"],
    ["RFC 8707 §2: resources for a code exchange", "/oauth2/token", { body: "grant_type=authorization_code&code=x&resource=https%3A%2F%2Fa.test&resource=https%3A%2F%2Fb.test", headers: { "content-type": FORM, ...web } }, "lean"],
    ["RFC 8707 §2: a resource given too many times", "/oauth2/token", { body: `grant_type=authorization_code&code=x${"&resource=https%3A%2F%2Fa.test".repeat(17)}`, headers: { "content-type": FORM, ...web } }, "lean"],
    ["RFC 8707 §2: a resource outside VSCHAR", "/oauth2/token", { body: "grant_type=authorization_code&code=x&resource=https%3A%2F%2Fa.test&resource=a%01", headers: { "content-type": FORM, ...web } }, "lean"],
    ["RFC 8707 §2: a resource too long", "/oauth2/token", { body: `grant_type=authorization_code&code=x&resource=${long(2049)}`, headers: { "content-type": FORM, ...web } }, "lean"],
    ["RFC 7662: one resource is an unknown parameter, ignored", "/oauth2/introspect", { body: "token=abc&resource=https%3A%2F%2Fa.test", headers: { "content-type": FORM, ...resourceServer } }, "lean"],
    ["RFC 7662: two resources are refused", "/oauth2/introspect", { body: "token=abc&resource=https%3A%2F%2Fa.test&resource=https%3A%2F%2Fb.test", headers: { "content-type": FORM, ...resourceServer } }, "lean"],
    ["RFC 7662: no client authentication", "/oauth2/introspect", { body: "token=abc", headers: { "content-type": FORM } }, "lean"],
    ["RFC 7662: a wrong secret after Basic", "/oauth2/introspect", { body: "token=abc", headers: { "content-type": FORM, ...wrongSecret } }, "lean"],
    ["RFC 7662 §2.2: an unknown token is inactive", "/oauth2/introspect", { body: "token=abc&token_type_hint=access_token", headers: { "content-type": FORM, ...resourceServer } }, "lean"],
    ["RFC 7662: a token outside VSCHAR", "/oauth2/introspect", { body: "token=a%0Ab", headers: { "content-type": FORM, ...resourceServer } }, "lean"],
    ["RFC 7662: a token_type_hint too long", "/oauth2/introspect", { body: `token=abc&token_type_hint=${long(65)}`, headers: { "content-type": FORM, ...resourceServer } }, "lean"],
  ];

  it.each(cases)("%s", async (_name, path, init, servedBy) => {
    const before = lean.seenByFastify.length;
    const [mine, theirs] = [await answerOf(lean, path, init), await answerOf(routed, path, init)];
    expect(mine).toEqual(theirs);
    expect(mine.status).toBeGreaterThanOrEqual(200);
    expect(lean.seenByFastify.length - before).toBe(servedBy === "lean" ? 0 : 1);
  });

  it("RFC 6749 §5.1: a code exchanged, and its refresh token rotated, carry the same headers and fields", async () => {
    const exchangeAt = async (gateway: Gateway) => {
      const pkce = pkcePair();
      const { code } = await obtainCode(authz, { clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: pkce.challenge });
      const body = new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: pkce.verifier }).toString();
      const exchanged = await answerOf(gateway, "/oauth2/token", { body, headers: { "content-type": FORM, ...web } });
      const refreshToken = (JSON.parse(exchanged.body) as { refresh_token: string }).refresh_token;
      const refreshed = await answerOf(gateway, "/oauth2/token", { body: `grant_type=refresh_token&refresh_token=${refreshToken}`, headers: { "content-type": FORM, ...web } });
      return [exchanged, refreshed].map(({ status, headers, body }) => ({ status, headers, fields: Object.keys(JSON.parse(body) as object).sort() }));
    };
    const before = lean.seenByFastify.length;
    const mine = await exchangeAt(lean);
    expect(lean.seenByFastify.length).toBe(before);
    expect(mine[0]).toMatchObject({ status: 200, headers: { "cache-control": "no-store", pragma: "no-cache", "access-control-allow-origin": "*" } });
    expect(mine[0]!.fields).toEqual(["access_token", "expires_in", "refresh_token", "scope", "token_type"]);
    expect(mine).toEqual(await exchangeAt(routed));
  });

  it("RFC 7662 §2.2: an active token's introspection is the same document", async () => {
    const token = await issueTokens(authz, { scope: "read" });
    const init = { body: `token=${token.accessToken}`, headers: { "content-type": FORM, ...resourceServer } };
    const before = lean.seenByFastify.length;
    const mine = await answerOf(lean, "/oauth2/introspect", init);
    expect(lean.seenByFastify.length).toBe(before);
    expect(mine.status).toBe(200);
    expect(JSON.parse(mine.body)).toMatchObject({ active: true, client_id: "web", scope: "read" });
    expect(mine).toEqual(await answerOf(routed, "/oauth2/introspect", init));
  });
});
