import { ConnectError } from "@connectrpc/connect";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { OAuthErrorDetailSchema } from "../../gen/gatehouse/v1/errors_pb.js";
import type { GatewayDeps } from "../deps.js";
import { acceptOnlyFormBodies, describeFormErrors, formSchema, VSCHAR } from "../form-body.js";
import { createLoadShedHook } from "../load-shed.js";
import { allowAnyOrigin } from "../response-headers.js";
import type { BearerFailure } from "../oauth-error-response.js";
import { oauthFailureFromRpc } from "../oauth-error-response.js";
import { createTenantHook, tenantOf, type TenantRouting } from "../tenant-routing.js";

export interface OpenIdRoutesOptions {
  deps: GatewayDeps;
  /** Where this registration lives and whose endpoints they are (tenant-routing.ts). */
  routing: TenantRouting;
}

/** RFC 6750 §2.2: the form-encoded body parameter; anything else in the form is ignored. */
const USERINFO_FORM = formSchema({ access_token: { pattern: VSCHAR, maxLength: 8192 } }, { unknown: "ignore" });

/**
 * OpenID Connect endpoints beside the OAuth ones (plugins/oauth-routes.ts
 * serves Discovery at both well-known paths): UserInfo (Core §5.3), GET and
 * POST, answered from the authz service's GetUserInfo. It uses no cookies, so
 * any origin may call it (a browser-based client).
 */
export const openIdRoutes: FastifyPluginAsync<OpenIdRoutesOptions> = async (app, { deps, routing }) => {
  const { config, authz } = deps;
  const realm = config.guard.realm;
  acceptOnlyFormBodies(app);
  app.addHook("onRequest", createLoadShedHook(deps.overload));
  app.addHook("onRequest", createTenantHook(routing));
  const userinfo = routing.at(config.paths.userinfo);

  const answer = async (request: FastifyRequest, reply: FastifyReply, bodyToken: string | undefined) => {
    const header = request.headers.authorization;
    // RFC 6750 §2.3 (the URI query) is not supported: a token there would end up in logs.
    if (typeof request.query === "object" && request.query !== null && "access_token" in request.query) {
      return reply.sendBearerFailure(bearer(realm, 400, "invalid_request", "send the access token in the Authorization header"));
    }
    const headerToken = header === undefined ? undefined : /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header)?.[1];
    if (header !== undefined && headerToken === undefined) {
      return reply.sendBearerFailure(bearer(realm, 401, "invalid_token", "the Authorization header is not a Bearer token"));
    }
    // RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in each request."
    if (headerToken !== undefined && bodyToken !== undefined) {
      return reply.sendBearerFailure(bearer(realm, 400, "invalid_request", "the access token was sent twice"));
    }
    const token = headerToken ?? bodyToken;
    // RFC 6750 §3.1: a request without authentication gets the challenge without an error code.
    if (token === undefined || token === "") return reply.sendBearerFailure({ status: 401, realm, style: "rfc6750" });
    let claimsJson: string;
    try {
      ({ claimsJson } = await authz.authz.getUserInfo({ accessToken: token }, { headers: { ...authz.forBrowser(request.ip).headers, ...tenantOf(request).rpcHeaders } }));
    } catch (error) {
      const [detail] = ConnectError.from(error).findDetails(OAuthErrorDetailSchema);
      switch (detail?.error) {
        case "invalid_token":
          return reply.sendBearerFailure(bearer(realm, 401, "invalid_token", detail.errorDescription));
        case "insufficient_scope":
          return reply.sendBearerFailure({ ...bearer(realm, 403, "insufficient_scope", detail.errorDescription), scope: "openid" });
        case "invalid_request":
          return reply.sendBearerFailure(bearer(realm, 400, "invalid_request", detail.errorDescription));
        default:
          return reply.sendOAuthError(oauthFailureFromRpc(error, { usedBasic: false }));
      }
    }
    // Core §5.3.2: a JSON object; personal data, so never cached.
    return reply.code(200).header("cache-control", "no-store").type("application/json; charset=utf-8").send(claimsJson);
  };

  // A browser-based client sends the token in the Authorization header, which needs a CORS preflight.
  app.options(userinfo, { onRequest: allowAnyOrigin }, async (_request, reply) =>
    reply
      .code(204)
      .headers({ "access-control-allow-methods": "GET, POST", "access-control-allow-headers": "authorization, content-type", "access-control-max-age": "600" })
      .send(),
  );
  app.get(userinfo, { onRequest: allowAnyOrigin }, async (request, reply) => answer(request, reply, undefined));
  app.post(userinfo, { schema: { body: USERINFO_FORM }, schemaErrorFormatter: describeFormErrors, onRequest: allowAnyOrigin }, async (request, reply) =>
    answer(request, reply, (request.body as { access_token?: string } | undefined)?.access_token),
  );
};

function bearer(realm: string, status: BearerFailure["status"], error: NonNullable<BearerFailure["error"]>, description: string): BearerFailure {
  return { status, error, description, realm, style: "rfc6750" };
}
