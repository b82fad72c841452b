import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { BrowserSession } from "../browser-session.js";
import type { GatewayDeps } from "../deps.js";
import { acceptOnlyFormBodies, describeFormErrors, formSchema, type ParameterSyntax } from "../form-body.js";
import { createLoadShedHook } from "../load-shed.js";
import { oauthFailureFromRpc } from "../oauth-error-response.js";
import { parseForm } from "../parse-form.js";
import { createTenantBrowsers, type TenantBrowser } from "../tenant-browser.js";
import { createTenantHook, tenantOf, type TenantRoute, type TenantRouting } from "../tenant-routing.js";
import { sendErrorPage } from "../views/error-page.js";
import { html } from "../views/html.js";
import { renderMessagePage } from "../views/message-page.js";
import { formTargetOf, pageHeaders, sendPage } from "../views/page.js";

export interface EndSessionRoutesOptions {
  deps: GatewayDeps;
  serviceCredential: string;
  /** Where this registration lives and whose endpoint it is (tenant-routing.ts): a tenant's sessions end at its own. */
  routing: TenantRouting;
}

/** RP-Initiated Logout 1.0 §2 parameters, bounded; what they mean is the authz service's to judge (PlanLogout). */
const LOGOUT_PARAMETERS = {
  id_token_hint: { maxLength: 4096 },
  logout_hint: { maxLength: 256 },
  client_id: { maxLength: 256 },
  post_logout_redirect_uri: { maxLength: 2048 },
  state: { maxLength: 1024 },
  ui_locales: { maxLength: 256 },
} as const satisfies Record<string, ParameterSyntax>;
type LogoutParameters = Partial<Record<keyof typeof LOGOUT_PARAMETERS, string>>;

/** The confirmation page's own fields, beside the request's parameters it carries. */
const CONFIRMATION_FIELDS = {
  csrf_token: { pattern: "^[A-Za-z0-9_-]+$", maxLength: 64 },
  decision: { enum: ["logout", "stay"], maxLength: 6 },
} as const satisfies Record<string, ParameterSyntax>;

/**
 * OpenID Connect RP-Initiated Logout 1.0: the end_session_endpoint (§2, GET
 * and POST). A request that can be tied to the browser's session (an
 * id_token_hint for this session and user) ends it at once; any other asks
 * the user first on a confirmation page (CSRF-bound to the session), so that
 * a link elsewhere cannot sign anyone out. Afterwards the browser goes to the
 * post_logout_redirect_uri the authz service verified (with state), or sees
 * a "signed out" page. Ending the session triggers back-channel logout and
 * revokeOnLogout at the authz service (SessionService.Logout).
 */
export const endSessionRoutes: FastifyPluginAsync<EndSessionRoutesOptions> = async (app, { deps, serviceCredential, routing }) => {
  const { config, authz } = deps;
  const path = routing.at(config.paths.endSession);
  const browserOf = createTenantBrowsers(deps, serviceCredential);
  acceptOnlyFormBodies(app);
  app.addHook("onRequest", createLoadShedHook(deps.overload));
  app.addHook("onRequest", createTenantHook(routing));
  app.addHook("onRequest", async (_request, reply) => {
    reply.headers(pageHeaders());
  });

  app.get(
    path,
    {
      // Bad input (a repeated parameter, a bad encoding, an oversized one) is an error page, as on the other pages.
      config: { html: true },
      schema: { querystring: formSchema(LOGOUT_PARAMETERS, { unknown: "ignore" }) },
      schemaErrorFormatter: describeFormErrors,
      exposeHeadRoute: false,
      preValidation: async (request) => {
        const url = request.raw.url ?? "";
        const mark = url.indexOf("?");
        request.query = mark === -1 ? {} : parseForm(url.slice(mark + 1));
      },
    },
    async (request, reply) => handle(request, reply, request.query as LogoutParameters, undefined, 302),
  );
  app.post(
    path,
    { config: { html: true }, schema: { body: formSchema({ ...LOGOUT_PARAMETERS, ...CONFIRMATION_FIELDS }, { unknown: "ignore" }) }, schemaErrorFormatter: describeFormErrors },
    async (request, reply) => {
      const { csrf_token: csrfToken, decision, ...parameters } = request.body as LogoutParameters & { csrf_token?: string; decision?: "logout" | "stay" };
      return handle(request, reply, parameters, csrfToken === undefined ? undefined : { csrfToken, decision: decision ?? "stay" }, 303);
    },
  );

  async function handle(
    request: FastifyRequest,
    reply: FastifyReply,
    parameters: LogoutParameters,
    confirmation: { csrfToken: string; decision: "logout" | "stay" } | undefined,
    status: 302 | 303,
  ): Promise<FastifyReply> {
    const tenant = tenantOf(request);
    const browser = browserOf(tenant);
    const { sessions, csrf } = browser;
    const calls = { headers: { ...tenant.rpcHeaders } };
    let session: BrowserSession | undefined;
    let plan;
    try {
      session = await sessions.lookup(request);
      plan = await authz.sessions.planLogout(
        {
          idTokenHint: parameters.id_token_hint ?? "",
          logoutHint: parameters.logout_hint ?? "",
          clientId: parameters.client_id ?? "",
          postLogoutRedirectUri: parameters.post_logout_redirect_uri ?? "",
          state: parameters.state ?? "",
          sessionToken: session?.token ?? "",
        },
        calls,
      );
    } catch (error) {
      // §3: an unverified post_logout_redirect_uri is never redirected to.
      return sendErrorPage(reply, oauthFailureFromRpc(error, { usedBasic: false }));
    }
    const leave = (message: string) =>
      plan.redirectUrl !== "" ? reply.code(status).header("location", plan.redirectUrl).send() : sendPage(reply, 200, renderMessagePage({ title: "Signed out", message }));

    if (session === undefined || !plan.sessionActive) {
      sessions.clear(reply);
      return leave("You are signed out.");
    }
    if (plan.confirmationRequired) {
      if (confirmation === undefined) return sendConfirmation(reply, tenant, browser, session, parameters, plan.clientName, plan.redirectUrl);
      if (!csrf.verify(confirmation.csrfToken, "end-session", session.token)) {
        return sendErrorPage(reply, { status: 403, description: "This sign-out form was not issued to you, or has expired." });
      }
      if (confirmation.decision === "stay") return sendPage(reply, 200, renderMessagePage({ title: "Still signed in", message: "You are still signed in." }));
    }
    try {
      await authz.sessions.logout({ sessionToken: session.token }, calls);
    } catch (error) {
      return sendErrorPage(reply, oauthFailureFromRpc(error, { usedBasic: false }));
    }
    sessions.clear(reply);
    return leave("You are signed out.");
  }

  function sendConfirmation(
    reply: FastifyReply,
    tenant: TenantRoute,
    { csrf }: TenantBrowser,
    session: BrowserSession,
    parameters: LogoutParameters,
    clientName: string,
    redirectUrl: string,
  ): FastifyReply {
    const hidden = (Object.keys(LOGOUT_PARAMETERS) as Array<keyof LogoutParameters>)
      .filter((name) => parameters[name] !== undefined && parameters[name] !== "")
      .map((name) => html`<input type="hidden" name="${name}" value="${parameters[name]!}">`);
    const form = html`<form method="post" action="${tenant.base + config.paths.endSession}">
<input type="hidden" name="csrf_token" value="${csrf.token("end-session", session.token)}">
${hidden}
<div class="actions">
<button type="submit" name="decision" value="stay">Stay signed in</button>
<button type="submit" name="decision" value="logout" class="primary" autofocus>Sign out</button>
</div>
</form>`;
    const page = renderMessagePage({
      title: "Sign out?",
      message: clientName === "" ? "Do you want to sign out?" : `${clientName} asks you to sign out. Do you want to sign out?`,
      form,
    });
    // The form posts here; the redirect after it goes to the client (CSP form-action covers the 303's target).
    return sendPage(reply, 200, page, [formTargetOf(redirectUrl)].filter((t): t is string => t !== undefined));
  }
};
