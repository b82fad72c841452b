import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import * as oauth from "oauth4webapi";

/** Where the demo client finds gatehouse, and who it is there. */
export interface DemoClientOptions {
  /** The gatehouse issuer (the gateway's public URL); discovery starts here (RFC 8414 §3). */
  issuer: string;
  /** A public client registered with PKCE required (config/dev.yaml: demo-app). */
  clientId: string;
  /** Its registered redirect URI; the demo listens where it points. */
  redirectUri: string;
  /** The scopes to ask for. */
  scope: string;
  /** Base URL of the guarded demo API, behind the gateway. */
  apiBase: string;
}

interface TokenState {
  accessToken: string;
  refreshToken: string | undefined;
  scope: string | undefined;
  expiresAt: number;
  /** The ID Token (OpenID Connect Core §2), as received, and its claims validated by oauth4webapi. */
  idToken: string | undefined;
  idTokenClaims: Record<string, unknown> | undefined;
  /** The UserInfo answer (Core §5.3), fetched after sign-in. */
  userInfo: Record<string, unknown> | undefined;
}

interface BrowserState {
  /** The authorization request in flight: its state, nonce (OpenID Connect Core §3.1.2.1) and PKCE verifier (RFC 7636 §4.1). */
  pending?: { state: string; nonce: string; codeVerifier: string };
  tokens?: TokenState;
  apiAnswer?: { request: string; status: number; headers: Record<string, string>; body: string };
  notice?: string;
}

const COOKIE = "demo_client_session";

/**
 * The demo web app: a public client that signs its user in with OpenID
 * Connect (the authorization code grant with PKCE, RFC 7636, and a nonce)
 * through oauth4webapi, shows the ID Token's claims (validated by the
 * library) and the UserInfo answer, the tokens it received (decoded, and the
 * access token verified against the issuer's JWKS, RFC 9068), calls the demo
 * API through the gateway, and signs out at gatehouse too (RP-Initiated
 * Logout).
 * Everything it does over the network goes through the library; nothing is
 * hand-written OAuth. State is kept in memory per browser, for the demo only.
 */
export async function createDemoClient(options: DemoClientOptions): Promise<FastifyInstance> {
  const issuer = new URL(options.issuer);
  // http is fine on a developer's machine; oauth4webapi refuses it unless told so.
  const http = issuer.protocol === "http:" ? { [oauth.allowInsecureRequests]: true as const } : {};
  const client: oauth.Client = { client_id: options.clientId, token_endpoint_auth_method: "none" };
  const clientAuth = oauth.None();
  const browsers = new Map<string, BrowserState>();
  const openId = options.scope.split(" ").includes("openid");
  let discovered: Promise<oauth.AuthorizationServer> | undefined;
  const authorizationServer = () => {
    discovered ??= oauth
      .discoveryRequest(issuer, { algorithm: "oidc", ...http })
      .then((response) => oauth.processDiscoveryResponse(issuer, response))
      .catch((error: unknown) => {
        discovered = undefined; // try again on the next request
        throw error;
      });
    return discovered;
  };

  const app = Fastify({ logger: false });
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_request, body, done) => done(null, body));
  const stateOf = (request: FastifyRequest, reply: FastifyReply): BrowserState => {
    const id = /(?:^|;\s*)demo_client_session=([A-Za-z0-9_-]{43})/.exec(request.headers.cookie ?? "")?.[1];
    if (id !== undefined && browsers.has(id)) return browsers.get(id)!;
    const fresh = randomBytes(32).toString("base64url");
    const state: BrowserState = {};
    browsers.set(fresh, state);
    reply.header("set-cookie", `${COOKIE}=${fresh}; Path=/; HttpOnly; SameSite=Lax`);
    return state;
  };
  const page = (reply: FastifyReply, status: number, body: string) =>
    reply
      .code(status)
      .headers({
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; form-action 'self' " + issuer.origin,
        "referrer-policy": "no-referrer",
      })
      .send(layout(body));

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/", async (request, reply) => {
    const state = stateOf(request, reply);
    const notice = state.notice;
    delete state.notice;
    if (state.tokens === undefined) {
      return page(
        reply,
        200,
        `<h1>Gatehouse demo app</h1>
<p>This app signs you in with <strong>gatehouse</strong> using OpenID Connect (the authorization code grant with PKCE),
then shows who you are (the ID Token and UserInfo), the tokens it got, and calls an API through the gatehouse gateway.</p>
${notice === undefined ? "" : `<p class="notice">${escape(notice)}</p>`}
<p><a class="button" href="/login">Sign in with gatehouse</a></p>
<p class="muted">Asks for: <code>${escape(options.scope)}</code>. Client: <code>${escape(options.clientId)}</code> (public, PKCE S256).</p>`,
      );
    }
    const tokens = state.tokens;
    const as = await authorizationServer();
    let verification: string;
    try {
      const claims = await oauth.validateJwtAccessToken(
        as,
        new Request(options.apiBase, { headers: { authorization: `Bearer ${tokens.accessToken}` } }),
        as.issuer,
        http,
      );
      verification = `Signature and claims verified against ${escape(as.jwks_uri ?? "")} (RFC 9068); subject <strong>${escape(String(claims.sub))}</strong>.`;
    } catch (error) {
      verification = `Not valid: ${escape(error instanceof Error ? error.message : String(error))}`;
    }
    const answer = state.apiAnswer;
    return page(
      reply,
      200,
      `<h1>Signed in</h1>
${notice === undefined ? "" : `<p class="notice">${escape(notice)}</p>`}
<p>Granted scope: <code>${escape(tokens.scope ?? "(as requested)")}</code>. The access token expires in ${Math.max(0, Math.round((tokens.expiresAt - Date.now()) / 1000))} s.</p>
<h2>ID Token claims</h2>
<p class="muted">${tokens.idTokenClaims === undefined ? "No ID Token (the openid scope was not granted)." : "Signature, issuer, audience, nonce and lifetime validated by oauth4webapi (OpenID Connect Core §3.1.3.7)."}</p>
${tokens.idTokenClaims === undefined ? "" : `<pre id="id-token-claims">${escape(JSON.stringify(tokens.idTokenClaims, null, 2))}</pre>`}
<h2>UserInfo</h2>
<p class="muted">${tokens.userInfo === undefined ? "Not fetched." : `GET ${escape(as.userinfo_endpoint ?? "")} with the access token; sub matches the ID Token's.`}</p>
${tokens.userInfo === undefined ? "" : `<pre id="userinfo">${escape(JSON.stringify(tokens.userInfo, null, 2))}</pre>`}
<h2>Access token (JWT, decoded)</h2>
<p class="muted">${verification}</p>
<pre>${escape(decodeJwt(tokens.accessToken))}</pre>
<h2>Refresh token</h2>
<p><code>${escape(tokens.refreshToken === undefined ? "(none)" : `${tokens.refreshToken.slice(0, 24)}…`)}</code> (opaque; rotates on every use)</p>
<h2>Call the API through the gateway</h2>
<form method="post" action="/call-api" class="row">
<button name="path" value="/api/profile">GET /api/profile</button>
<button name="path" value="/api/notes">GET /api/notes</button>
</form>
${
  answer === undefined
    ? `<p class="muted">Nothing called yet.</p>`
    : `<p><strong>${escape(answer.request)}</strong> → HTTP ${answer.status}</p>
<pre>${escape(Object.entries(answer.headers).map(([k, v]) => `${k}: ${v}`).join("\n"))}

${escape(answer.body)}</pre>`
}
<h2>Session</h2>
<form method="post" action="/refresh" class="row"><button>Refresh the tokens</button></form>
<form method="post" action="/logout" class="row"><button>Sign out (revoke the tokens)</button></form>
<form method="post" action="/logout" class="row"><input type="hidden" name="everywhere" value="yes"><button>Sign out of gatehouse too</button></form>`,
    );
  });

  /** RFC 6749 §4.1.1 with RFC 7636 §4.3: a fresh state and code verifier per request. */
  app.get("/login", async (request, reply) => {
    const state = stateOf(request, reply);
    const as = await authorizationServer();
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const pending = { state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce(), codeVerifier };
    state.pending = pending;
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("client_id", options.clientId);
    url.searchParams.set("redirect_uri", options.redirectUri);
    url.searchParams.set("scope", options.scope);
    url.searchParams.set("state", pending.state);
    if (openId) url.searchParams.set("nonce", pending.nonce);
    url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(codeVerifier));
    url.searchParams.set("code_challenge_method", "S256");
    return reply.code(302).header("location", url.href).send();
  });

  /** RFC 6749 §4.1.2: the authorization response, checked by the library (state, iss per RFC 9207), then redeemed. */
  app.get(new URL(options.redirectUri).pathname, async (request, reply) => {
    const state = stateOf(request, reply);
    const pending = state.pending;
    delete state.pending;
    if (pending === undefined) {
      state.notice = "That sign-in attempt is unknown or already finished; start again.";
      return reply.code(303).header("location", "/").send();
    }
    const as = await authorizationServer();
    let callback: URLSearchParams;
    try {
      callback = oauth.validateAuthResponse(as, client, new URL(request.url, options.redirectUri), pending.state);
    } catch (error) {
      state.notice =
        error instanceof oauth.AuthorizationResponseError
          ? `The authorization server answered ${error.error}${error.error_description ? `: ${error.error_description}` : ""}.`
          : `The authorization response was refused: ${error instanceof Error ? error.message : String(error)}`;
      return reply.code(303).header("location", "/").send();
    }
    try {
      const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, callback, options.redirectUri, pending.codeVerifier, http);
      // An OpenID Connect request (scope openid) must bring an ID Token with our nonce; a plain OAuth one none.
      const result = await oauth.processAuthorizationCodeResponse(as, client, response, openId ? { expectedNonce: pending.nonce, requireIdToken: true } : {});
      const tokens = toTokenState(result);
      const claims = oauth.getValidatedIdTokenClaims(result);
      if (claims !== undefined && as.userinfo_endpoint !== undefined) {
        // OpenID Connect Core §5.3.2: the UserInfo sub must be the ID Token's; the library checks it.
        const answer = await oauth.userInfoRequest(as, client, tokens.accessToken, http);
        tokens.userInfo = { ...(await oauth.processUserInfoResponse(as, client, claims.sub, answer)) };
      }
      state.tokens = tokens;
      delete state.apiAnswer;
    } catch (error) {
      state.notice = `The token request failed: ${describe(error)}`;
    }
    return reply.code(303).header("location", "/").send();
  });

  /** Calls the demo API through the gateway with the access token (RFC 6750 §2.1) and keeps whatever comes back. */
  app.post("/call-api", async (request, reply) => {
    const state = stateOf(request, reply);
    const path = new URLSearchParams(String(request.body ?? "")).get("path");
    if (state.tokens === undefined || (path !== "/api/profile" && path !== "/api/notes")) return reply.code(303).header("location", "/").send();
    const url = new URL(path, options.apiBase);
    try {
      const response = await oauth.protectedResourceRequest(state.tokens.accessToken, "GET", url, undefined, undefined, http);
      const headers: Record<string, string> = {};
      for (const name of ["content-type", "www-authenticate", "cache-control"]) {
        const value = response.headers.get(name);
        if (value !== null) headers[name] = value;
      }
      state.apiAnswer = { request: `GET ${url.href}`, status: response.status, headers, body: prettyBody(await response.text()) };
    } catch (error) {
      // oauth4webapi raises on a 401 with a WWW-Authenticate challenge; show it as it came.
      if (error instanceof oauth.WWWAuthenticateChallengeError) {
        const { response } = error;
        state.apiAnswer = {
          request: `GET ${url.href}`,
          status: response.status,
          headers: { "www-authenticate": response.headers.get("www-authenticate") ?? "" },
          body: prettyBody(await response.text().catch(() => "")),
        };
      } else {
        state.notice = `The API call failed: ${describe(error)}`;
      }
    }
    return reply.code(303).header("location", "/").send();
  });

  /** RFC 6749 §6: a new token pair; the old refresh token is dead afterwards (rotation). */
  app.post("/refresh", async (request, reply) => {
    const state = stateOf(request, reply);
    if (state.tokens?.refreshToken !== undefined) {
      try {
        const as = await authorizationServer();
        const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, state.tokens.refreshToken, http);
        // OpenID Connect Core §12.2: the refresh brings a new ID Token, same sub and auth_time.
        state.tokens = { ...toTokenState(await oauth.processRefreshTokenResponse(as, client, response)), userInfo: state.tokens.userInfo };
        state.notice = "Refreshed: a new access token and a new refresh token.";
      } catch (error) {
        state.notice = `The refresh failed: ${describe(error)}`;
      }
    }
    return reply.code(303).header("location", "/").send();
  });

  /**
   * RFC 7009: revokes the refresh token (and with it the grant), then forgets
   * everything. "Everywhere" also ends the gatehouse session: RP-Initiated
   * Logout 1.0 with the ID Token as id_token_hint, back to this app's start.
   */
  app.post("/logout", async (request, reply) => {
    const state = stateOf(request, reply);
    const everywhere = new URLSearchParams(String(request.body ?? "")).get("everywhere") === "yes";
    const idToken = state.tokens?.idToken;
    if (state.tokens?.refreshToken !== undefined) {
      try {
        const as = await authorizationServer();
        await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, clientAuth, state.tokens.refreshToken, http));
      } catch (error) {
        state.notice = `The revocation failed: ${describe(error)}`;
      }
    }
    delete state.tokens;
    delete state.apiAnswer;
    const as = await authorizationServer();
    if (everywhere && as.end_session_endpoint !== undefined) {
      const url = new URL(as.end_session_endpoint);
      if (idToken !== undefined) url.searchParams.set("id_token_hint", idToken);
      url.searchParams.set("client_id", options.clientId);
      url.searchParams.set("post_logout_redirect_uri", new URL("/", options.redirectUri).href);
      state.notice ??= "Signed out of the demo app and of gatehouse.";
      return reply.code(303).header("location", url.href).send();
    }
    state.notice ??= "Signed out of the demo app; its tokens are revoked. Your gatehouse session stays until you sign out there.";
    return reply.code(303).header("location", "/").send();
  });

  return app;
}

function toTokenState(response: oauth.TokenEndpointResponse): TokenState {
  const claims = oauth.getValidatedIdTokenClaims(response);
  return {
    accessToken: response.access_token,
    refreshToken: response.refresh_token,
    scope: response.scope,
    expiresAt: Date.now() + (response.expires_in ?? 0) * 1000,
    idToken: response.id_token,
    idTokenClaims: claims === undefined ? undefined : { ...claims },
    userInfo: undefined,
  };
}

/** A JWT's header and payload as indented JSON (RFC 7519 §7.2 steps, without verification: that is shown apart). */
function decodeJwt(jwt: string): string {
  const [header, payload] = jwt.split(".");
  const part = (segment: string | undefined) => {
    try {
      return JSON.stringify(JSON.parse(Buffer.from(segment ?? "", "base64url").toString("utf8")), null, 2);
    } catch {
      return "(not JSON)";
    }
  };
  return `// header\n${part(header)}\n\n// payload\n${part(payload)}`;
}

function prettyBody(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text.slice(0, 4_000);
  }
}

function describe(error: unknown): string {
  if (error instanceof oauth.ResponseBodyError) return `${error.error}${error.error_description ? `: ${error.error_description}` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function layout(body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gatehouse demo app</title><link rel="icon" href="data:,">
<style>
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:46rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:1.75rem}
pre{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:.75rem;overflow-x:auto;font-size:.85rem}
code{font-size:.9em}.muted{color:#5b6475;font-size:.9rem}
.notice{background:#fff7e0;border:1px solid #f0d98c;border-radius:8px;padding:.6rem .75rem}
.button,button{display:inline-block;font:inherit;font-weight:600;padding:.6rem 1rem;border-radius:8px;border:1px solid #2456d6;background:#2456d6;color:#fff;text-decoration:none;cursor:pointer}
form.row{display:inline-flex;gap:.5rem;margin:.25rem .5rem .25rem 0}
</style></head><body><main>${body}</main></body></html>`;
}
