import type { CallOptions } from "@connectrpc/connect";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { TokenSet } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import {
  afterLogin,
  AUTHORIZATION_REQUEST_PARAMETERS,
  openIdParameters,
  serializeAuthorizationRequest,
  type AuthorizationParameters,
} from "../authorization-request.js";
import type { BrowserSession } from "../browser-session.js";
import { createCachedCall } from "../cached-call.js";
import { createTenantBrowsers } from "../tenant-browser.js";
import { createTenantHook, tenantOf, type TenantRoute, type TenantRouting } from "../tenant-routing.js";
import type { GatewayDeps } from "../deps.js";
import { acceptOnlyFormBodies, describeFormErrors, formSchema } from "../form-body.js";
import { parseForm, REPEATABLE_PARAMETERS } from "../parse-form.js";
import { renderConsentPage } from "../views/consent-page.js";
import { sendErrorPage } from "../views/error-page.js";
import { renderLoginPage } from "../views/login-page.js";
import { renderMessagePage } from "../views/message-page.js";
import { formTargetOf, pageHeaders, sendPage } from "../views/page.js";
import { oauthFailureFromRpc } from "../oauth-error-response.js";
import { createLoadShedHook } from "../load-shed.js";
import { buildServerMetadata } from "../server-metadata.js";
import { ENDPOINT_URL_HEADER } from "../../contract/metadata.js";
import { clientFields, OnlyOneResource } from "../service-grants.js";
import {
  introspectionResponseBody,
  requestIntrospection,
  requestToken,
  TOKEN_OPERATION_PARAMETERS,
  TOKEN_REQUEST_PARAMETERS,
  TOKEN_REQUEST_REQUIRED,
  tokenResponseBody,
  UNSUPPORTED_GRANT_TYPE,
} from "../token-endpoints.js";
import { allowAnyOrigin, NO_STORE } from "../response-headers.js";

export interface OAuthRoutesOptions {
  deps: GatewayDeps;
  /** The gateway's service credential: these endpoints exist only on a gateway that has one. It also keys the CSRF tokens. */
  serviceCredential: string;
  /** Where this registration lives and whose endpoints they are: the default tenant's, or the named tenants' under `/:tenant` (tenant-routing.ts). */
  routing: TenantRouting;
}

/** Metadata and JWKS are read on every client start; the authz service is asked at most this often. */
const PUBLIC_DOCUMENT_TTL_MS = 30_000;

/** The token request (token-endpoints.ts has its parameters, shared with the endpoint beneath fastify). */
const TOKEN_REQUEST = formSchema(TOKEN_REQUEST_PARAMETERS, { required: TOKEN_REQUEST_REQUIRED, unknown: "ignore" });

/** RFC 7662 §2.1 and RFC 7009 §2.1 requests. */
const TOKEN_OPERATION_REQUEST = formSchema(TOKEN_OPERATION_PARAMETERS, { unknown: "ignore" });

/** The consent page's form (renderConsentPage). */
const CONSENT_DECISION = formSchema(
  {
    request_id: { pattern: "^[A-Za-z0-9_-]+$", maxLength: 128 },
    csrf_token: { pattern: "^[A-Za-z0-9_-]+$", maxLength: 64 },
    decision: { enum: ["allow", "deny"], maxLength: 5 },
    remember: { enum: ["yes"], maxLength: 3 },
  },
  { required: ["request_id", "csrf_token", "decision"], unknown: "reject" },
);

/**
 * The browser-facing and client-facing OAuth endpoints. They translate HTTP
 * to the authz service's RPCs and back, and decide nothing themselves: every
 * redirect target is a URL the authz service returned (Decide, or an error
 * detail's redirect_url), never one built from the request.
 */
export const oauthRoutes: FastifyPluginAsync<OAuthRoutesOptions> = async (app, { deps, serviceCredential, routing }) => {
  const { config, authz } = deps;
  const { paths } = config;
  const browserOf = createTenantBrowsers(deps, serviceCredential);
  // Per tenant: each tenant's metadata and JWKS are its own (one cached call each, made on first use).
  const documents = new Map<string, { metadata: () => ReturnType<typeof authz.authz.getMetadata>; jwks: () => ReturnType<typeof authz.authz.getJwks> }>();
  const documentsOf = (tenant: TenantRoute) => {
    let entry = documents.get(tenant.name);
    if (entry === undefined) {
      const options = { headers: { ...tenant.rpcHeaders } };
      entry = {
        metadata: createCachedCall(() => authz.authz.getMetadata({}, options), { ttlMs: PUBLIC_DOCUMENT_TTL_MS, now: deps.clock }),
        jwks: createCachedCall(() => authz.authz.getJwks({}, options), { ttlMs: PUBLIC_DOCUMENT_TTL_MS, now: deps.clock }),
      };
      documents.set(tenant.name, entry);
    }
    return entry;
  };
  acceptOnlyFormBodies(app);

  app.addHook("onRequest", async (request, reply) => {
    if (request.routeOptions.config?.html === true) reply.headers(pageHeaders());
  });
  app.addHook("onRequest", createLoadShedHook(deps.overload));
  app.addHook("onRequest", createTenantHook(routing));

  /**
   * RFC 6749 §4.1.1 / §4.2.1 authorization endpoint (GET, RFC 6749 §3.1).
   * The query is parsed strictly before anything else: a repeated parameter
   * or a malformed encoding is shown on an error page (the client is not yet
   * verified, so there is nowhere safe to redirect).
   */
  app.get(
    routing.at(paths.authorize),
    {
      config: { html: true },
      // A HEAD must not park authorization requests at the authz service.
      exposeHeadRoute: false,
      schema: { querystring: formSchema(AUTHORIZATION_REQUEST_PARAMETERS, { unknown: "ignore" }) },
      schemaErrorFormatter: describeFormErrors,
      preValidation: async (request) => {
        const url = request.raw.url ?? "";
        const mark = url.indexOf("?");
        request.query = mark === -1 ? {} : parseForm(url.slice(mark + 1), { repeatable: REPEATABLE_PARAMETERS });
      },
    },
    async (request, reply) => {
      const parameters = request.query as AuthorizationParameters;
      const tenant = tenantOf(request);
      const { sessions, csrf } = browserOf(tenant);
      let session: BrowserSession | undefined;
      try {
        session = await sessions.lookup(request);
      } catch (error) {
        return sendErrorPage(reply, oauthFailureFromRpc(error, { usedBasic: false }));
      }
      let pending;
      try {
        pending = await authz.authz.authorize(
          {
            responseType: parameters.response_type ?? "",
            clientId: parameters.client_id ?? "",
            redirectUri: parameters.redirect_uri ?? "",
            scope: parameters.scope ?? "",
            state: parameters.state ?? "",
            codeChallenge: parameters.code_challenge ?? "",
            codeChallengeMethod: parameters.code_challenge_method ?? "",
            subject: session?.subject ?? "",
            authTime: session?.authTime ?? 0n,
            // RFC 8707 §2: every resource indicator, in order.
            resource: parameters.resource ?? [],
            ...openIdParameters(parameters),
          },
          { headers: { ...authz.forBrowser(request.ip).headers, ...tenant.rpcHeaders } },
        );
      } catch (error) {
        return sendAuthorizationFailure(reply, error);
      }
      const formTargets = [formTargetOf(pending.redirectUri)].filter((t): t is string => t !== undefined);
      const resume = serializeAuthorizationRequest(parameters);

      if (session === undefined || pending.loginRequired) {
        // No login session, or OpenID Connect asks for a fresh one: the login page, which comes back here afterwards
        // with the request that forced the login relaxed (afterLogin), so that it does not force it again.
        const nonce = sessions.loginNonce(request, reply);
        const page = renderLoginPage({
          action: tenant.base + paths.login,
          csrfToken: csrf.token("login", nonce),
          clientName: pending.clientName,
          clientHost: pending.clientHost,
          authorizationRequest: serializeAuthorizationRequest(afterLogin(parameters)),
          // OpenID Connect Core §3.1.2.1 login_hint: pre-fills the user name.
          ...(parameters.login_hint === undefined || parameters.login_hint === "" ? {} : { username: parameters.login_hint }),
        });
        return sendPage(reply, 200, page, formTargets);
      }
      if ((pending.firstParty || pending.consentRemembered) && !pending.consentRequired) {
        return decide(reply, tenant, session, pending.requestId, { approved: true, rememberConsent: false }, 302);
      }
      const page = renderConsentPage({
        action: tenant.base + paths.consent,
        csrfToken: csrf.token("consent", session.token, pending.requestId),
        requestId: pending.requestId,
        clientName: pending.clientName,
        clientId: pending.clientId,
        scopes: pending.scopes,
        withheldScopes: pending.withheldScopes,
        resources: pending.resources,
        redirectUri: pending.redirectUri,
        subject: session.subject,
        userName: pending.userName,
        clientSource: pending.clientSource,
        clientHost: pending.clientHost,
        logoUri: pending.logoUri,
        switchAccount: { action: tenant.base + paths.logout, csrfToken: csrf.token("logout", session.token), authorizationRequest: resume },
      });
      return sendPage(reply, 200, page, formTargets, logoOrigin(pending.logoUri));
    },
  );

  /**
   * OpenID Connect Core §3.1.2.1: "Authorization Servers MUST support the use
   * of the HTTP GET and POST methods". A form post is answered with a 303 to
   * the same request as a GET (its parameters re-encoded, nothing added), so
   * one handler validates every request, and the browser's SameSite=Lax
   * session cookie, which a cross-site POST does not carry, comes along.
   */
  app.post(
    routing.at(paths.authorize),
    { config: { html: true }, schema: { body: formSchema(AUTHORIZATION_REQUEST_PARAMETERS, { unknown: "ignore" }) }, schemaErrorFormatter: describeFormErrors },
    async (request, reply) => {
      const query = new URLSearchParams();
      // Every parameter as posted, a repeated `resource` (RFC 8707 §2) as each of its values.
      for (const [name, value] of Object.entries(request.body as Record<string, string | string[]>)) for (const one of [value].flat()) query.append(name, one);
      const endpoint = tenantOf(request).base + paths.authorize;
      return reply.code(303).header("location", query.size === 0 ? endpoint : `${endpoint}?${query.toString()}`).send();
    },
  );

  /**
   * The consent page's decision. Only the browser whose session the page was
   * rendered for can post it (CSRF token bound to session and request); the
   * resource owner asserted to Decide is that session's subject.
   */
  app.post(
    routing.at(paths.consent),
    { config: { html: true }, schema: { body: CONSENT_DECISION }, schemaErrorFormatter: describeFormErrors },
    async (request, reply) => {
      const form = request.body as { request_id: string; csrf_token: string; decision: "allow" | "deny"; remember?: "yes" };
      const tenant = tenantOf(request);
      const { sessions, csrf } = browserOf(tenant);
      let session: BrowserSession | undefined;
      try {
        session = await sessions.lookup(request);
      } catch (error) {
        return sendErrorPage(reply, oauthFailureFromRpc(error, { usedBasic: false }));
      }
      if (session === undefined) {
        return sendErrorPage(reply, { status: 401, description: "Your sign-in session has ended. Go back to the application and start again." });
      }
      if (!csrf.verify(form.csrf_token, "consent", session.token, form.request_id)) {
        return sendErrorPage(reply, { status: 403, description: "This form was not issued to you, or has expired. Go back to the application and start again." });
      }
      const approved = form.decision === "allow";
      // RFC 9700 §4.12: a redirect that answers a POST is a 303, so the browser follows it with GET.
      return decide(reply, tenant, session, form.request_id, { approved, rememberConsent: approved && form.remember === "yes" }, 303);
    },
  );

  /** Calls Decide and sends the browser exactly where the authz service says (RFC 6749 §4.1.2). */
  async function decide(
    reply: FastifyReply,
    tenant: TenantRoute,
    session: BrowserSession,
    requestId: string,
    decision: { approved: boolean; rememberConsent: boolean },
    status: 302 | 303,
  ): Promise<FastifyReply> {
    try {
      const { redirectUrl } = await authz.authz.decide(
        { requestId, subject: session.subject, authTime: session.authTime, sid: session.sid, ...decision },
        { headers: { ...tenant.rpcHeaders } },
      );
      return reply.code(status).headers(NO_STORE).header("location", redirectUrl).send();
    } catch (error) {
      return sendAuthorizationFailure(reply, error);
    }
  }

  /**
   * RFC 6749 §4.1.2.1: an error the authz service could address to a verified
   * redirect URI goes there (302); any other is shown to the resource owner.
   */
  function sendAuthorizationFailure(reply: FastifyReply, error: unknown): FastifyReply {
    const failure = oauthFailureFromRpc(error, { usedBasic: false });
    if (failure.redirectUrl !== undefined && failure.error === "access_denied") {
      // Issue 12: the authz service refused the request for the resource owner (their account lacks the rights
      // for what the client asked, or is disabled). Redirecting at once would leave them with whatever the client
      // makes of access_denied; they are told why first, and the link carries the client's answer (RFC 6749 §4.1.2.1).
      const page = renderMessagePage({
        title: "You cannot continue",
        message: `${failure.description.replace(/^the resource owner's account/, "Your account")}. Ask your administrator if you need this access.`,
        link: { href: failure.redirectUrl, text: "Return to the application" },
      });
      return sendPage(reply, 403, page, [formTargetOf(failure.redirectUrl)].filter((t): t is string => t !== undefined));
    }
    if (failure.redirectUrl !== undefined) return reply.sendOAuthError(failure);
    return sendErrorPage(reply, failure);
  }

  /**
   * RFC 6749 §3.2 token endpoint: grant types authorization_code (§4.1.3,
   * RFC 7636 §4.5) and refresh_token (§6). The client authenticates to the
   * authz service, which sees its Authorization header (client_secret_basic)
   * or its body fields (client_secret_post), and the browser's or server's
   * address for its failure limits.
   */
  app.post(
    routing.at(paths.token),
    { schema: { body: TOKEN_REQUEST }, schemaErrorFormatter: describeFormErrors, onRequest: allowAnyOrigin },
    async (request, reply) => {
      // RFC 8707 §2: `resource` may repeat (an array, form-body.ts); every other parameter is one string.
      const { resource, ...fields } = request.body as Record<string, string | string[] | undefined>;
      const form = fields as Partial<Record<string, string>>;
      const resources = (resource ?? []) as string[];
      const { callOptions, usedBasic } = clientCallOptions(request, tenantOf(request).issuer + paths.token);
      let token: TokenSet | undefined | "unsupported";
      try {
        token = await requestToken(authz.authz, form, resources, callOptions);
      } catch (error) {
        if (error instanceof OnlyOneResource) return reply.sendOAuthError({ status: 400, error: error.error, description: error.message });
        return reply.sendOAuthError(oauthFailureFromRpc(error, { usedBasic }));
      }
      if (token === "unsupported") return reply.sendOAuthError({ status: 400, error: "unsupported_grant_type", description: UNSUPPORTED_GRANT_TYPE });
      if (token === undefined) return reply.sendOAuthError({ status: 500, error: "server_error", description: "the authorization server returned no token" });
      return reply.code(200).headers(NO_STORE).type("application/json; charset=utf-8").send(tokenResponseBody(token));
    },
  );

  /** RFC 7662 §2: the caller (a resource server) authenticates as a confidential client. */
  app.post(
    routing.at(paths.introspect),
    { schema: { body: TOKEN_OPERATION_REQUEST }, schemaErrorFormatter: describeFormErrors },
    async (request, reply) => {
      const form = request.body as Partial<Record<string, string>>;
      const { callOptions, usedBasic } = clientCallOptions(request, tenantOf(request).issuer + paths.introspect);
      let result;
      try {
        result = await requestIntrospection(authz.authz, form, callOptions);
      } catch (error) {
        return reply.sendOAuthError(oauthFailureFromRpc(error, { usedBasic }));
      }
      return reply.code(200).headers(NO_STORE).type("application/json; charset=utf-8").send(introspectionResponseBody(result));
    },
  );

  /** RFC 7009 §2: 200 for any token the client may revoke, including unknown and invalid ones (§2.2). */
  app.post(
    routing.at(paths.revoke),
    { schema: { body: TOKEN_OPERATION_REQUEST }, schemaErrorFormatter: describeFormErrors, onRequest: allowAnyOrigin },
    async (request, reply) => {
      const form = request.body as Partial<Record<string, string>>;
      const { callOptions, usedBasic } = clientCallOptions(request, tenantOf(request).issuer + paths.revoke);
      try {
        await authz.authz.revoke(
          { token: form.token ?? "", tokenTypeHint: form.token_type_hint ?? "", ...clientFields(form) },
          callOptions,
        );
      } catch (error) {
        return reply.sendOAuthError(oauthFailureFromRpc(error, { usedBasic }));
      }
      return reply.code(200).headers(NO_STORE).send();
    },
  );

  /**
   * RFC 8414 §2 authorization server metadata, at the RFC 8414 §3 well-known
   * path. The protocol facts come from the authz service (GetMetadata); the
   * endpoints are the issuer plus the configured paths.
   */
  // The same document at OpenID Connect Discovery 1.0 §4's path, `{issuer}/.well-known/openid-configuration` (gateway/server-metadata.ts).
  for (const path of [routing.metadataPath, routing.at(paths.openidConfiguration)])
  app.get(path, { schema: { querystring: NO_PARAMETERS }, onRequest: allowAnyOrigin }, async (request, reply) => {
    const tenant = tenantOf(request);
    const issuer = tenant.issuer;
    let facts;
    try {
      facts = await documentsOf(tenant).metadata();
    } catch (error) {
      return reply.sendOAuthError(oauthFailureFromRpc(error, { usedBasic: false }));
    }
    const document = buildServerMetadata(facts, issuer, paths);
    return reply
      .code(200)
      .header("cache-control", `public, max-age=${PUBLIC_DOCUMENT_TTL_MS / 1000}`)
      .type("application/json; charset=utf-8")
      .send(JSON.stringify(document));
  });

  /** The JWK Set (RFC 7517 §5) that verifies access tokens, from GetJwks, verbatim. */
  app.get(routing.at(paths.jwks), { schema: { querystring: NO_PARAMETERS }, onRequest: allowAnyOrigin }, async (request, reply) => {
    let set;
    try {
      set = await documentsOf(tenantOf(request)).jwks();
    } catch (error) {
      return reply.sendOAuthError(oauthFailureFromRpc(error, { usedBasic: false }));
    }
    return reply
      .code(200)
      .header("cache-control", `public, max-age=${PUBLIC_DOCUMENT_TTL_MS / 1000}`)
      .type("application/jwk-set+json")
      .send(set.jwksJson);
  });

  /**
   * What the authz service needs to authenticate the client (RFC 6749 §2.3.1):
   * its Authorization header as call metadata, untouched, and the address the
   * request came from (request.ip: X-Forwarded-For only from trusted proxies).
   */
  function clientCallOptions(request: FastifyRequest, endpointUrl: string): { callOptions: CallOptions; usedBasic: boolean } {
    const authorization = request.headers.authorization;
    // RFC 7523 §3: a client assertion may name this endpoint's URL as its aud.
    const headers: Record<string, string> = { ...authz.forBrowser(request.ip).headers, ...tenantOf(request).rpcHeaders, [ENDPOINT_URL_HEADER]: endpointUrl };
    if (authorization !== undefined) headers.authorization = authorization;
    return { callOptions: { headers }, usedBasic: authorization !== undefined && /^basic(?:\s|$)/i.test(authorization) };
  }
};

/** The CSP img-src of a client's logo: its https origin, or nothing. */
function logoOrigin(logoUri: string): string[] {
  if (logoUri === "") return [];
  try {
    const url = new URL(logoUri);
    return url.protocol === "https:" && /^[A-Za-z0-9.:[\]-]+$/.test(url.host) ? [url.origin] : [];
  } catch {
    return [];
  }
}

/** The metadata and JWKS documents take no parameters. */
const NO_PARAMETERS = { type: "object", maxProperties: 0 } as const;

