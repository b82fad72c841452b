import { ConnectError } from "@connectrpc/connect";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { OAuthErrorDetailSchema } from "../../gen/gatehouse/v1/errors_pb.js";
import { parseResumedAuthorizationRequest } from "../authorization-request.js";
import type { BrowserSession } from "../browser-session.js";
import { createTenantBrowsers } from "../tenant-browser.js";
import { createTenantHook, tenantOf, type TenantRouting } from "../tenant-routing.js";
import type { GatewayDeps } from "../deps.js";
import { acceptOnlyFormBodies, describeFormErrors, formSchema, UNICODECHARNOCRLF } from "../form-body.js";
import { sendErrorPage } from "../views/error-page.js";
import { renderLoginPage } from "../views/login-page.js";
import { renderMessagePage, signOutForm } from "../views/message-page.js";
import { pageHeaders, sendPage } from "../views/page.js";
import { oauthFailureFromRpc } from "../oauth-error-response.js";
import { createLoadShedHook } from "../load-shed.js";

export interface PagesOptions {
  deps: GatewayDeps;
  /** The gateway's service credential: these endpoints exist only on a gateway that has one. It also keys the CSRF tokens. */
  serviceCredential: string;
  /** Where this registration lives and whose pages they are (tenant-routing.ts). */
  routing: TenantRouting;
}

const TOKEN_FIELD = { pattern: "^[A-Za-z0-9_-]+$", maxLength: 64 } as const;
/** A resumed authorization request: its parameters' bounds (authorization-request.ts), encoded. */
const RESUME_FIELD = { pattern: "^[\\x21-\\x7E]+$", maxLength: 8192 } as const;

/** The login form (renderLoginPage); RFC 6749 Appendix A.15/A.16 syntax for username and password. */
const LOGIN_FORM = formSchema(
  {
    username: { pattern: UNICODECHARNOCRLF, maxLength: 256 },
    password: { pattern: UNICODECHARNOCRLF, maxLength: 1024 },
    csrf_token: TOKEN_FIELD,
    authorization_request: RESUME_FIELD,
  },
  { required: ["csrf_token"], unknown: "reject" },
);

/** The sign-out forms (signed-in page, and "use another account" on the consent page). */
const LOGOUT_FORM = formSchema({ csrf_token: TOKEN_FIELD, authorization_request: RESUME_FIELD }, { required: ["csrf_token"], unknown: "reject" });

/** The login and logout pages take no parameters in the URL. */
const NO_PARAMETERS = { type: "object", maxProperties: 0 } as const;

/**
 * The resource owner's login and logout pages. Passwords are checked by the
 * authz service (SessionService.Login), which also slows down and then
 * refuses repeated failures per username and per address; the gateway only
 * shows the outcome, and never says whether the username or the password
 * was wrong.
 */
export const pages: FastifyPluginAsync<PagesOptions> = async (app, { deps, serviceCredential, routing }) => {
  const { config, authz } = deps;
  const { paths } = config;
  const browserOf = createTenantBrowsers(deps, serviceCredential);
  acceptOnlyFormBodies(app);
  app.addHook("onRequest", async (_request, reply) => {
    reply.headers(pageHeaders());
  });
  app.addHook("onRequest", createLoadShedHook(deps.overload));
  app.addHook("onRequest", createTenantHook(routing));
  const html = { config: { html: true }, schemaErrorFormatter: describeFormErrors };

  /** The login form, or who is signed in. */
  app.get(routing.at(paths.login), { ...html, schema: { querystring: NO_PARAMETERS } }, async (request, reply) => {
    const tenant = tenantOf(request);
    const { sessions, csrf } = browserOf(tenant);
    let session: BrowserSession | undefined;
    try {
      session = await sessions.lookup(request);
    } catch (error) {
      return sendErrorPage(reply, oauthFailureFromRpc(error, { usedBasic: false }));
    }
    if (session !== undefined) return sendSignedIn(request, reply, session);
    const nonce = sessions.loginNonce(request, reply);
    return sendPage(reply, 200, renderLoginPage({ action: tenant.base + paths.login, csrfToken: csrf.token("login", nonce) }));
  });

  app.post(routing.at(paths.login), { ...html, schema: { body: LOGIN_FORM } }, async (request, reply) => {
    const tenant = tenantOf(request);
    const { sessions, csrf } = browserOf(tenant);
    const form = request.body as { username?: string; password?: string; csrf_token: string; authorization_request?: string };
    const resume = form.authorization_request === undefined ? undefined : parseResumedAuthorizationRequest(form.authorization_request);
    if (form.authorization_request !== undefined && resume === undefined) {
      return sendErrorPage(reply, { status: 400, description: "The sign-in form was altered. Go back to the application and start again." });
    }
    const showForm = (status: number, problem: string) => {
      const nonce = sessions.loginNonce(request, reply);
      const page = renderLoginPage({
        action: tenant.base + paths.login,
        csrfToken: csrf.token("login", nonce),
        ...(resume === undefined ? {} : { authorizationRequest: resume }),
        ...(form.username === undefined ? {} : { username: form.username }),
        problem,
      });
      return sendPage(reply, status, page);
    };

    // Login CSRF: the token must match this browser's login cookie (csrf.ts).
    if (!csrf.verify(form.csrf_token, "login", sessions.presentedLoginNonce(request) ?? "")) {
      return showForm(403, "This sign-in form expired. Please sign in again.");
    }
    if (form.username === undefined || form.password === undefined) return showForm(400, "Enter your username and password.");

    let opened;
    try {
      opened = await authz.sessions.login(
        { username: form.username, password: form.password, clientAddress: request.ip },
        { headers: { ...authz.forBrowser(request.ip).headers, ...tenant.rpcHeaders } },
      );
    } catch (error) {
      const connectError = ConnectError.from(error);
      const [detail] = connectError.findDetails(OAuthErrorDetailSchema);
      switch (detail?.error) {
        case "invalid_credentials":
          return showForm(401, "The username or password is wrong.");
        case "invalid_request":
          return showForm(400, "Enter your username and password.");
        case "too_many_attempts":
          if (detail.retryAfter > 0n) reply.header("retry-after", String(detail.retryAfter));
          return showForm(429, "Too many attempts. Try again later.");
        case "account_disabled":
          // Issue 12: the authz service says so only after the password verified.
          return showForm(403, "This account is disabled. Ask your administrator to enable it.");
        default:
          return sendErrorPage(reply, oauthFailureFromRpc(connectError, { usedBasic: false }));
      }
    }
    // A new session replaces whatever this browser had (no session fixation); ending the old one is best effort.
    const previous = sessions.tokenOf(request);
    if (previous !== undefined) await authz.sessions.logout({ sessionToken: previous }, { headers: { ...tenant.rpcHeaders } }).catch(() => undefined);
    sessions.open(reply, opened.sessionToken, Number(opened.expiresIn));
    // RFC 9700 §4.12: a POST that carried credentials is answered with 303, never 307.
    return reply.code(303).header("location", resume === undefined ? tenant.base + paths.login : `${tenant.base}${paths.authorize}?${resume}`).send();
  });

  /** A sign-out button for a signed-in browser (a GET never signs out: links and prefetches must not). */
  app.get(routing.at(paths.logout), { ...html, schema: { querystring: NO_PARAMETERS } }, async (request, reply) => {
    const { sessions } = browserOf(tenantOf(request));
    let session: BrowserSession | undefined;
    try {
      session = await sessions.lookup(request);
    } catch (error) {
      return sendErrorPage(reply, oauthFailureFromRpc(error, { usedBasic: false }));
    }
    if (session === undefined) return sendPage(reply, 200, renderMessagePage({ title: "Signed out", message: "You are not signed in." }));
    return sendSignedIn(request, reply, session);
  });

  /** Ends the session (SessionService.Logout) and removes the cookie. */
  app.post(routing.at(paths.logout), { ...html, schema: { body: LOGOUT_FORM } }, async (request, reply) => {
    const tenant = tenantOf(request);
    const { sessions, csrf } = browserOf(tenant);
    const form = request.body as { csrf_token: string; authorization_request?: string };
    const resume = form.authorization_request === undefined ? undefined : parseResumedAuthorizationRequest(form.authorization_request);
    if (form.authorization_request !== undefined && resume === undefined) {
      return sendErrorPage(reply, { status: 400, description: "The sign-out form was altered." });
    }
    const token = sessions.tokenOf(request);
    if (token !== undefined) {
      if (!csrf.verify(form.csrf_token, "logout", token)) {
        return sendErrorPage(reply, { status: 403, description: "This sign-out form was not issued to you, or has expired." });
      }
      try {
        await authz.sessions.logout({ sessionToken: token }, { headers: { ...tenant.rpcHeaders } });
      } catch (error) {
        // The session is still live at the authz service: say so rather than pretend.
        return sendErrorPage(reply, oauthFailureFromRpc(error, { usedBasic: false }));
      }
    }
    sessions.clear(reply);
    if (resume !== undefined) return reply.code(303).header("location", `${tenant.base}${paths.authorize}?${resume}`).send();
    return sendPage(reply, 200, renderMessagePage({ title: "Signed out", message: "You are signed out." }));
  });

  function sendSignedIn(request: FastifyRequest, reply: FastifyReply, session: BrowserSession): FastifyReply {
    const tenant = tenantOf(request);
    const page = renderMessagePage({
      title: "Signed in",
      message: `You are signed in as ${session.subject}.`,
      form: signOutForm(tenant.base + paths.logout, browserOf(tenant).csrf.token("logout", session.token)),
    });
    return sendPage(reply, 200, page);
  }
};

