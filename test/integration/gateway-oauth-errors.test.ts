import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { basic, obtainCode, pkcePair, SECRETS, WEB_REDIRECT } from "../support/authz.js";
import { UserAgent, signIn } from "../support/gateway-oauth-flow.js";
import { startTestStack, type TestStack } from "../support/stack.js";

/**
 * One test per error response the gateway's endpoints can give, on its
 * status, headers and body shape (RFC 6749 §4.1.2.1 and §5.2, RFC 7662,
 * RFC 7009). Each test sends from its own address (X-Forwarded-For from a
 * trusted proxy), so the per-address failure limits of one test never touch
 * another.
 */
let stack: TestStack;
let nextAddress = 1;
/** A documentation address (RFC 5737) of its own for each caller. */
const freshAddress = () => `198.51.100.${nextAddress++}`;

beforeAll(async () => {
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      // The patch runs for the authz service's file too, which has no gateway section yet.
      if (file.gateway !== undefined) (file.gateway as Record<string, unknown>).trustedProxies = ["127.0.0.1"];
      file.attempts = { windowSeconds: 60, maxFailuresPerUser: 3, maxFailuresPerAddress: 3, delayPerFailureMs: 0, maxDelayMs: 0 };
    },
  });
});
afterAll(() => stack.close());

async function post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${stack.gateway.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": freshAddress(), ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/**
 * RFC 6749 §5.2: JSON with `error` (and `error_description` in its allowed
 * characters), never cached; WWW-Authenticate only on a 401.
 */
async function expectOAuthError(response: Response, expected: { status: number; error: string; basicChallenge?: boolean }): Promise<Record<string, unknown>> {
  expect(response.status).toBe(expected.status);
  expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
  expect(response.headers.get("cache-control")).toBe("no-store");
  expect(response.headers.get("pragma")).toBe("no-cache");
  const body = (await response.json()) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(["error", "error_description"]);
  expect(body.error).toBe(expected.error);
  // RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
  expect(body.error_description).toMatch(/^[\x20\x21\x23-\x5B\x5D-\x7E]+$/);
  if (expected.basicChallenge === true) expect(response.headers.get("www-authenticate")).toBe('Basic realm="gatehouse", charset="UTF-8"');
  else expect(response.headers.get("www-authenticate")).toBeNull();
  return body;
}

async function freshCode(clientId = "web") {
  const pkce = pkcePair();
  const { code } = await obtainCode(stack.authz, { clientId, redirectUri: clientId === "web" ? WEB_REDIRECT : "", scope: "read", codeChallenge: pkce.challenge });
  return { code, verifier: pkce.verifier };
}

async function tokensFor(clientId: "web") {
  const { code, verifier } = await freshCode(clientId);
  const response = await post("/oauth2/token", { grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: verifier }, basic("web", SECRETS.web).headers);
  expect(response.status).toBe(200);
  return (await response.json()) as { access_token: string; refresh_token: string };
}

describe("token endpoint errors (RFC 6749 §5.2)", () => {
  it("invalid_request: grant_type missing", async () => {
    const body = await expectOAuthError(await post("/oauth2/token", { code: "x" }), { status: 400, error: "invalid_request" });
    expect(body.error_description).toBe("grant_type is required");
  });

  it("invalid_request: a parameter given twice (RFC 6749 §3.2)", async () => {
    const response = await fetch(`${stack.gateway.url}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=authorization_code&code=a&code=b",
    });
    const body = await expectOAuthError(response, { status: 400, error: "invalid_request" });
    expect(body.error_description).toBe("code is given more than once");
  });

  it("invalid_request: client_secret_basic and client_secret_post at once (RFC 6749 §2.3)", async () => {
    const { code, verifier } = await freshCode();
    const response = await post(
      "/oauth2/token",
      { grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: verifier, client_secret: SECRETS.web },
      basic("web", SECRETS.web).headers,
    );
    await expectOAuthError(response, { status: 400, error: "invalid_request" });
  });

  it("invalid_client with HTTP Basic: 401 and a Basic challenge", async () => {
    const { code, verifier } = await freshCode();
    const response = await post(
      "/oauth2/token",
      { grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: verifier },
      basic("web", "wrong-secret").headers,
    );
    await expectOAuthError(response, { status: 401, error: "invalid_client", basicChallenge: true });
  });

  it("invalid_client with client_secret_post: 400 and no challenge", async () => {
    const { code, verifier } = await freshCode();
    const response = await post("/oauth2/token", {
      grant_type: "authorization_code",
      code,
      redirect_uri: WEB_REDIRECT,
      code_verifier: verifier,
      client_id: "web",
      client_secret: "wrong-secret",
    });
    await expectOAuthError(response, { status: 400, error: "invalid_client" });
  });

  it("invalid_client: a confidential client that sends no secret", async () => {
    await expectOAuthError(await post("/oauth2/token", { grant_type: "authorization_code", code: "x", client_id: "web" }), {
      status: 400,
      error: "invalid_client",
    });
  });

  it("invalid_grant: an unknown code", async () => {
    const response = await post("/oauth2/token", { grant_type: "authorization_code", code: "no-such-code", redirect_uri: WEB_REDIRECT, code_verifier: pkcePair().verifier }, basic("web", SECRETS.web).headers);
    await expectOAuthError(response, { status: 400, error: "invalid_grant" });
  });

  it("invalid_grant: a code used twice (RFC 6749 §4.1.2)", async () => {
    const { code, verifier } = await freshCode();
    const fields = { grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: verifier };
    expect((await post("/oauth2/token", fields, basic("web", SECRETS.web).headers)).status).toBe(200);
    await expectOAuthError(await post("/oauth2/token", fields, basic("web", SECRETS.web).headers), { status: 400, error: "invalid_grant" });
  });

  it("unauthorized_client: a grant type the client is not registered for", async () => {
    await expectOAuthError(await post("/oauth2/token", { grant_type: "refresh_token", refresh_token: "x" }, basic("legacy", SECRETS.legacy).headers), {
      status: 400,
      error: "unauthorized_client",
    });
  });

  it("unauthorized_client: client_credentials (RFC 6749 §4.4) for a client not registered for it", async () => {
    await expectOAuthError(await post("/oauth2/token", { grant_type: "client_credentials" }, basic("web", SECRETS.web).headers), {
      status: 400,
      error: "unauthorized_client",
    });
  });

  it("unsupported_grant_type: password and made-up grants", async () => {
    for (const grantType of ["password", "urn:example:made-up"]) {
      await expectOAuthError(await post("/oauth2/token", { grant_type: grantType }, basic("web", SECRETS.web).headers), {
        status: 400,
        error: "unsupported_grant_type",
      });
    }
  });

  it("invalid_scope: a refresh that asks for more than was granted (RFC 6749 §6)", async () => {
    const tokens = await tokensFor("web");
    const response = await post("/oauth2/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token, scope: "read write" }, basic("web", SECRETS.web).headers);
    await expectOAuthError(response, { status: 400, error: "invalid_scope" });
  });

  it("429 with Retry-After once one address has failed client authentication too often", async () => {
    const address = freshAddress();
    const attempt = () =>
      post("/oauth2/token", { grant_type: "authorization_code", code: "x" }, { ...basic("web", "wrong").headers, "x-forwarded-for": address });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 5; i++) {
      last = await attempt();
      statuses.push(last.status);
      if (last.status === 429) break;
      await last.body?.cancel();
    }
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses.at(-1)).toBe(429);
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThan(0);
    const body = (await last!.json()) as Record<string, unknown>;
    expect(body.error).toBe("temporarily_unavailable");
    // Another address is not affected.
    const { code, verifier } = await freshCode();
    expect((await post("/oauth2/token", { grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: verifier }, basic("web", SECRETS.web).headers)).status).toBe(200);
  });
});

describe("authorization endpoint errors (RFC 6749 §4.1.2.1)", () => {
  const authorize = (parameters: Record<string, string>) =>
    fetch(`${stack.gateway.url}/oauth2/authorize?${new URLSearchParams(parameters)}`, { redirect: "manual" });

  async function expectErrorPage(response: Response, status = 400): Promise<string> {
    expect(response.status).toBe(status);
    expect(response.headers.get("location")).toBeNull();
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    return response.text();
  }

  async function expectRedirectedError(response: Response, error: string, state: string): Promise<URL> {
    expect(response.status).toBe(302);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const location = new URL(response.headers.get("location")!);
    expect(location.origin + location.pathname).toBe(WEB_REDIRECT);
    expect(location.searchParams.get("error")).toBe(error);
    expect(location.searchParams.get("state")).toBe(state);
    expect(location.searchParams.get("iss")).toBe(stack.issuer);
    return location;
  }

  it("an unknown client_id is shown on a page and never redirected", async () => {
    const page = await expectErrorPage(await authorize({ response_type: "code", client_id: "nobody", redirect_uri: WEB_REDIRECT, state: "s" }));
    expect(page).toContain("unknown client_id");
    expect(page).not.toContain("web.test");
  });

  it("a missing client_id is shown on a page", async () => {
    await expectErrorPage(await authorize({ response_type: "code" }));
  });

  it("an unregistered redirect_uri is shown on a page and never redirected (RFC 9700 §4.11: no open redirector)", async () => {
    const page = await expectErrorPage(await authorize({ response_type: "code", client_id: "web", redirect_uri: "https://evil.example/cb", state: "s" }));
    expect(page).toContain("redirect_uri is not registered");
    expect(page).not.toContain("evil.example");
  });

  it("a redirect_uri that differs only by a trailing slash is not registered", async () => {
    await expectErrorPage(await authorize({ response_type: "code", client_id: "web", redirect_uri: `${WEB_REDIRECT}/`, state: "s" }));
  });

  it("invalid_request (response_type missing) goes back to the client with state and iss", async () => {
    await expectRedirectedError(await authorize({ client_id: "web", redirect_uri: WEB_REDIRECT, state: "st-1" }), "invalid_request", "st-1");
  });

  it("invalid_request: PKCE is required (RFC 9700 §2.1.1)", async () => {
    await expectRedirectedError(await authorize({ response_type: "code", client_id: "web", redirect_uri: WEB_REDIRECT, state: "st-2", scope: "read" }), "invalid_request", "st-2");
  });

  it("unsupported_response_type", async () => {
    await expectRedirectedError(
      await authorize({ response_type: "id_token", client_id: "web", redirect_uri: WEB_REDIRECT, state: "st-3", code_challenge: pkcePair().challenge, code_challenge_method: "S256" }),
      "unsupported_response_type",
      "st-3",
    );
  });

  it("invalid_scope: a scope the client may not ask for", async () => {
    await expectRedirectedError(
      await authorize({ response_type: "code", client_id: "web", redirect_uri: WEB_REDIRECT, state: "st-4", scope: "admin", code_challenge: pkcePair().challenge, code_challenge_method: "S256" }),
      "invalid_scope",
      "st-4",
    );
  });

  it("access_denied: the resource owner denies (RFC 6749 §4.1.2.1)", async () => {
    const agent = new UserAgent(stack.gateway.url);
    await signIn(agent);
    const page = await agent.get(
      `/oauth2/authorize?${new URLSearchParams({ response_type: "code", client_id: "web", redirect_uri: WEB_REDIRECT, state: "st-5", scope: "write", code_challenge: pkcePair().challenge, code_challenge_method: "S256" })}`,
    );
    expect(page.status).toBe(200);
    const denied = await agent.submit(await page.text(), "/oauth2/consent", { decision: "deny" });
    expect(denied.status).toBe(303);
    const location = new URL(denied.headers.get("location")!);
    expect(Object.fromEntries(location.searchParams)).toMatchObject({ error: "access_denied", state: "st-5", iss: stack.issuer });
    expect(location.searchParams.has("code")).toBe(false);
  });

  it("a parameter given twice is shown on a page, since the client is not verified yet (RFC 6749 §3.1)", async () => {
    const response = await fetch(`${stack.gateway.url}/oauth2/authorize?client_id=web&response_type=code&state=a&state=b`, { redirect: "manual" });
    const page = await expectErrorPage(response);
    expect(page).toContain("state is given more than once");
  });
});

describe("introspection and revocation errors (RFC 7662 §2.3, RFC 7009 §2.2.1)", () => {
  it("introspection: invalid_client for a public client, which cannot authenticate", async () => {
    await expectOAuthError(await post("/oauth2/introspect", { token: "x", client_id: "spa" }), { status: 400, error: "invalid_client" });
  });

  it("introspection: invalid_client with a wrong Basic secret is a 401 with a challenge", async () => {
    await expectOAuthError(await post("/oauth2/introspect", { token: "x" }, basic("resource-server", "wrong").headers), {
      status: 401,
      error: "invalid_client",
      basicChallenge: true,
    });
  });

  it("introspection: invalid_request without a token", async () => {
    await expectOAuthError(await post("/oauth2/introspect", {}, basic("resource-server", SECRETS.resourceServer).headers), { status: 400, error: "invalid_request" });
  });

  it("introspection: a token that is not one of ours is inactive, not an error (RFC 7662 §2.2)", async () => {
    const response = await post("/oauth2/introspect", { token: "garbage" }, basic("resource-server", SECRETS.resourceServer).headers);
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(await response.json()).toEqual({ active: false });
  });

  it("revocation: invalid_request without a token", async () => {
    await expectOAuthError(await post("/oauth2/revoke", {}, basic("web", SECRETS.web).headers), { status: 400, error: "invalid_request" });
  });

  it("revocation: a token issued to another client is refused (RFC 7009 §2.1)", async () => {
    const tokens = await tokensFor("web");
    await expectOAuthError(await post("/oauth2/revoke", { token: tokens.refresh_token }, basic("grace", SECRETS.grace).headers), {
      status: 400,
      error: "unauthorized_client",
    });
  });

  it("revocation: invalid_client with a wrong secret", async () => {
    await expectOAuthError(await post("/oauth2/revoke", { token: "x" }, basic("web", "wrong").headers), { status: 401, error: "invalid_client", basicChallenge: true });
  });
});

describe("when the authz service cannot answer: refused, never passed", () => {
  let down: TestStack;
  beforeAll(async () => {
    down = await startTestStack({ redisUrl: inject("redisUrl") });
    await down.authz.close();
  });
  afterAll(() => down.gateway.close());

  it("token endpoint: 503 temporarily_unavailable with Retry-After", async () => {
    const response = await fetch(`${down.gateway.url}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...basic("web", SECRETS.web).headers },
      body: "grant_type=authorization_code&code=x",
    });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(await response.json()).toEqual({ error: "temporarily_unavailable", error_description: "the authorization server is unavailable" });
  });

  it("authorization endpoint: a 503 page, no redirect", async () => {
    const response = await fetch(`${down.gateway.url}/oauth2/authorize?response_type=code&client_id=web`, { redirect: "manual" });
    expect(response.status).toBe(503);
    expect(response.headers.get("location")).toBeNull();
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
  });

  it("a session cookie cannot be checked: 503, not the login page and not a pass", async () => {
    const response = await fetch(`${down.gateway.url}/login`, { headers: { cookie: "gatehouse_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } });
    expect(response.status).toBe(503);
  });

  it("metadata and JWKS: 503 in the RFC's shape", async () => {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/jwks.json"]) {
      const response = await fetch(`${down.gateway.url}${path}`);
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: string }).error).toBe("temporarily_unavailable");
    }
  });
});
