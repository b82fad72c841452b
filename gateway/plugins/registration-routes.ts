import type { CallOptions } from "@connectrpc/connect";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { ClientInformation } from "../../gen/gatehouse/v1/registration_service_pb.js";
import type { GatewayDeps } from "../deps.js";
import { createLoadShedHook } from "../load-shed.js";
import { bearerFailureResponse, oauthErrorResponse, oauthFailureFromRpc, sendErrorResponse } from "../oauth-error-response.js";
import { createTenantHook, tenantOf, type TenantRouting } from "../tenant-routing.js";
import { ANY_ORIGIN, NO_STORE } from "../response-headers.js";

export interface RegistrationRoutesOptions {
  deps: GatewayDeps;
  routing: TenantRouting;
}

/** RFC 7591 §3.2.1 / RFC 7592 §3: client information carries secrets, never cached. */
/**
 * Browser-based clients (an MCP client in a web page) register from their
 * own origin: the endpoint uses no cookies or other ambient credentials, so
 * any origin may call it, and the preflight of a JSON POST is answered.
 */
const PREFLIGHT = {
  ...ANY_ORIGIN,
  "access-control-allow-methods": "GET, POST, PUT, DELETE",
  "access-control-allow-headers": "authorization, content-type",
  "access-control-max-age": "600",
} as const;
/** Client metadata is small; a larger body is refused before it is read whole. */
const BODY_LIMIT = 16 * 1024;
/** RFC 7592 §3: the management URL names the client; a query keeps it one of the gateway's own paths. */
const MANAGEMENT_QUERY = {
  type: "object",
  properties: { client_id: { type: "string", minLength: 1, maxLength: 256, pattern: "^[\\x20-\\x7E]+$" } },
  required: ["client_id"],
  additionalProperties: false,
} as const;

/**
 * RFC 7591 dynamic client registration (POST `paths.register`) and RFC 7592
 * management of a registration (GET / PUT / DELETE
 * `paths.register?client_id=...`, the `registration_client_uri`), per tenant.
 * The authz service decides everything (its RegistrationService, per the
 * tenant's policy); a tenant whose policy is off answers 404.
 */
export const registrationRoutes: FastifyPluginAsync<RegistrationRoutesOptions> = async (app, { deps, routing }) => {
  const { authz, config } = deps;
  const path = routing.at(config.paths.register);

  app.removeAllContentTypeParsers();
  // RFC 7591 §3.1: "The client sends an HTTP POST ... with a content type of application/json"; the JSON goes to the authz service verbatim.
  app.addContentTypeParser("application/json", { parseAs: "string", bodyLimit: BODY_LIMIT }, (_request, body, done) => done(null, body));
  app.addContentTypeParser("*", (_request, _payload, done) => {
    const error = Object.assign(new Error("the content type must be application/json (RFC 7591 §3.1)"), { statusCode: 415 });
    done(error, undefined);
  });
  app.addHook("onRequest", createLoadShedHook(deps.overload));
  app.addHook("onRequest", createTenantHook(routing));
  app.addHook("onSend", async (_request, reply) => {
    reply.headers(ANY_ORIGIN);
  });

  const callOptions = (request: FastifyRequest): CallOptions => ({ headers: { ...authz.forBrowser(request.ip).headers, ...tenantOf(request).rpcHeaders } });
  const registrationClientUri = (request: FastifyRequest, clientId: string) => `${tenantOf(request).issuer}${config.paths.register}?client_id=${encodeURIComponent(clientId)}`;

  const sendInformation = (request: FastifyRequest, reply: FastifyReply, status: 200 | 201, client: ClientInformation | undefined) => {
    if (client === undefined) return sendErrorResponse(reply, oauthErrorResponse({ status: 500, error: "server_error", description: "the authorization server answered without the client" }));
    // RFC 7591 §3.2.1 and RFC 7592 §3: the registered metadata with the server's fields.
    const body: Record<string, unknown> = {
      client_id: client.clientId,
      ...(client.clientSecret === "" ? {} : { client_secret: client.clientSecret }),
      client_id_issued_at: Number(client.clientIdIssuedAt),
      // §3.2.1: "REQUIRED if client_secret is issued"; 0: it does not expire.
      ...(client.confidential ? { client_secret_expires_at: 0 } : {}),
      ...(JSON.parse(client.metadataJson) as Record<string, unknown>),
      registration_access_token: client.registrationAccessToken,
      registration_client_uri: registrationClientUri(request, client.clientId),
    };
    return reply.code(status).headers(NO_STORE).type("application/json; charset=utf-8").send(JSON.stringify(body));
  };

  /**
   * Failures in the RFCs' shapes: RFC 7591 §3.2.2 JSON (400), RFC 6750 §3.1
   * 401 invalid_token with a Bearer challenge for a wrong initial or
   * registration access token (RFC 7591 §3, RFC 7592 §2.1), 404 when the
   * policy is off, 429 for the open endpoint's rate limit.
   */
  const sendFailure = (reply: FastifyReply, error: unknown) => {
    const failure = oauthFailureFromRpc(error, { usedBasic: false });
    if (failure.error === "invalid_token") {
      return sendErrorResponse(reply, bearerFailureResponse({ status: 401, error: "invalid_token", description: failure.description, realm: config.guard.realm, style: "rfc6750" }));
    }
    return reply.sendOAuthError(failure);
  };

  app.options(path, async (_request, reply) => reply.code(204).headers(PREFLIGHT).send());

  /** RFC 7591 §3.1: a client registration request. */
  app.post(path, { bodyLimit: BODY_LIMIT }, async (request, reply) => {
    if (Object.keys(request.query as object).length > 0) return reply.sendOAuthError({ status: 400, error: "invalid_request", description: "the registration endpoint takes no query parameters" });
    try {
      const { client } = await authz.registration.registerClient(
        { metadataJson: typeof request.body === "string" ? request.body : "", initialAccessToken: bearerToken(request) },
        callOptions(request),
      );
      return sendInformation(request, reply, 201, client);
    } catch (error) {
      return sendFailure(reply, error);
    }
  });

  /** RFC 7592 §2.1: read. */
  app.get(path, { schema: { querystring: MANAGEMENT_QUERY } }, async (request, reply) => {
    const { client_id: clientId } = request.query as { client_id: string };
    try {
      const { client } = await authz.registration.getClientRegistration({ clientId, registrationAccessToken: bearerToken(request) }, callOptions(request));
      return sendInformation(request, reply, 200, client);
    } catch (error) {
      return sendFailure(reply, error);
    }
  });

  /** RFC 7592 §2.2: update (the whole metadata). */
  app.put(path, { bodyLimit: BODY_LIMIT, schema: { querystring: MANAGEMENT_QUERY } }, async (request, reply) => {
    const { client_id: clientId } = request.query as { client_id: string };
    try {
      const { client } = await authz.registration.updateClientRegistration(
        { clientId, registrationAccessToken: bearerToken(request), metadataJson: typeof request.body === "string" ? request.body : "" },
        callOptions(request),
      );
      return sendInformation(request, reply, 200, client);
    } catch (error) {
      return sendFailure(reply, error);
    }
  });

  /** RFC 7592 §2.3: delete; 204 No Content. */
  app.delete(path, { schema: { querystring: MANAGEMENT_QUERY } }, async (request, reply) => {
    const { client_id: clientId } = request.query as { client_id: string };
    try {
      await authz.registration.deleteClientRegistration({ clientId, registrationAccessToken: bearerToken(request) }, callOptions(request));
      return reply.code(204).headers(NO_STORE).send();
    } catch (error) {
      return sendFailure(reply, error);
    }
  });
};

/** RFC 6750 §2.1: the token of `Authorization: Bearer ...`; "" when there is none. */
function bearerToken(request: FastifyRequest): string {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(request.headers.authorization ?? "");
  return match?.[1] ?? "";
}
