import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import { createCheckEntrance, type CheckAnswer, type CheckEntranceOptions } from "../entrances/check-endpoint.js";
import type { GuardPipeline } from "../guard/pipeline.js";
import { bearerFailureResponse, oauthErrorResponse } from "../oauth-error-response.js";
import { createTlsCheck } from "../tls-check.js";
import type { RequestTracing } from "../request-tracing.js";

export interface CheckEndpointOptions extends CheckEntranceOptions {
  /** config.paths.check: one of the gateway's own paths, so the guard never proxies it. */
  path: string;
  /** config.requireHttps: the original request must have come over TLS (the proxy's X-Forwarded-Proto says so). */
  requireHttps: boolean;
  /** The guard's pipeline: the same route table, introspection cache and revocation feed as the sidecar. */
  pipeline: GuardPipeline;
  /** The gateway's request tracing (request-tracing.ts): the check request's span and log ids; none when absent. */
  requestTracing?: RequestTracing;
}

/**
 * The guard's check endpoint (gateway/entrances/check-endpoint.ts) for nginx
 * `auth_request`, Traefik `forwardAuth` and Caddy `forward_auth`. nginx's
 * subrequest keeps the original method (a POST is checked with a POST), so
 * the route takes every method; the answer is sent from the onRequest hook,
 * before fastify would look at a body the proxy is not meant to send.
 */
const plugin: FastifyPluginAsync<CheckEndpointOptions> = async (app, options) => {
  const entrance = createCheckEntrance(options);
  const { requestTracing } = options;
  // Seed 002 / RFC 6750 §5.3: a bearer token sent in the clear is refused. The
  // require-https plugin exempts this path and the rule is applied here, so
  // that the refusal is a 403 nginx passes on rather than a 400 it makes a 500.
  const cameOverTls = createTlsCheck({ enabled: options.requireHttps, trustedProxies: options.trustedProxies });
  const notOverTls: CheckAnswer = bearerFailureResponse({
    status: 403,
    error: "invalid_request",
    description: "the original request must use https",
    realm: options.realm,
    style: "rfc6750",
  });
  const send = (reply: import("fastify").FastifyReply, answer: CheckAnswer) => reply.code(answer.status).headers(answer.headers).send(answer.body);

  app.route({
    method: app.supportedMethods,
    url: options.path,
    onRequest: async (request, reply) => {
      const raw = request.raw;
      const description = entrance.describe({ headers: raw.headers, rawHeaders: raw.rawHeaders, peer: raw.socket.remoteAddress ?? "", requestId: request.id });
      if (description.kind === "answer") {
        request.log.info({ status: description.answer.status }, "check: refused the check request");
        return send(reply, description.answer);
      }
      if (cameOverTls !== undefined && !cameOverTls(raw)) return send(reply, notOverTls);
      let answer: CheckAnswer;
      try {
        // The pipeline's log lines carry the check request's trace ids, as fastify's do (request-tracing.ts).
        // With tracing on, the decision runs under the check request's span: guard.authenticate and the Introspect RPC join its trace.
        const ids = requestTracing?.begin(raw);
        const asked = ids === undefined ? description.request : { ...description.request, logIds: ids };
        const decided = requestTracing === undefined ? options.pipeline.decide(asked) : requestTracing.run(raw, () => options.pipeline.decide(asked));
        answer = entrance.answer(await decided, asked);
      } catch (error) {
        // A bug must not become a pass (nor a hang): the proxy refuses on a 500.
        request.log.error({ err: error }, "check: failed");
        answer = oauthErrorResponse({ status: 500, error: "server_error", description: "the gateway failed to handle the request" });
      }
      return send(reply, answer);
    },
    handler: async (_request, reply) => reply.code(500).send(),
  });
};

/** The check endpoint; registered by gateway/app.ts beside the guard, on the same pipeline. */
export const checkEndpoint = fp(plugin, { name: "check-endpoint", fastify: "5.x", dependencies: ["oauth-errors"] });
