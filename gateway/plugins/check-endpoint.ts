import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import { createCheckEntrance, type CheckAnswer, type CheckEntranceOptions } from "../entrances/check-endpoint.js";
import type { GuardPipeline } from "../guard/pipeline.js";
import type { Logger } from "pino";
import { bearerFailureResponse, oauthErrorResponse, writeErrorResponse } from "../oauth-error-response.js";
import { createTlsCheck } from "../tls-check.js";
import { createRequestTracing, type RequestTracing } from "../request-tracing.js";
import { tracingOff } from "../../startup/tracing.js";

export interface CheckEndpointOptions extends CheckEntranceOptions {
  /** config.paths.check: one of the gateway's own paths, so the guard never proxies it. */
  path: string;
  /** config.requireHttps: the original request must have come over TLS (the proxy's X-Forwarded-Proto says so). */
  requireHttps: boolean;
  /** The guard's pipeline: the same route table, introspection cache and revocation feed as the sidecar. */
  pipeline: GuardPipeline;
  /** The gateway's request tracing (request-tracing.ts): the check request's span and log ids; none when absent. */
  requestTracing?: RequestTracing;
  /** Installs an entry beneath fastify (gateway/app.ts): it returns false for what it does not serve. */
  addRawEntry: (entry: (req: IncomingMessage, res: ServerResponse) => boolean) => void;
  /** The request id of a raw request, as fastify's genReqId would give it. */
  requestIdOf: (req: IncomingMessage) => string;
}

/**
 * The guard's check endpoint (gateway/entrances/check-endpoint.ts) for nginx
 * `auth_request`, Traefik `forwardAuth` and Caddy `forward_auth`. A proxy
 * calls it once for every request it lets through, so it is served beneath
 * fastify like the sidecar (no request cycle, no hooks, no child logger): the
 * exact path, any method (nginx's subrequest keeps the original method, so a
 * POST is checked with a POST), answered at once, without reading a body the
 * proxy is not meant to send. What node hands over outside its 'request'
 * event (`Expect: 100-continue`, an upgrade) and any other spelling of the
 * path reach the same answer through fastify's route.
 */
const plugin: FastifyPluginAsync<CheckEndpointOptions> = async (app, options) => {
  const entrance = createCheckEntrance(options);
  const requestTracing = options.requestTracing ?? createRequestTracing(tracingOff);
  const log = app.log as unknown as Logger;
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
  const failed: CheckAnswer = oauthErrorResponse({ status: 500, error: "server_error", description: "the gateway failed to handle the request" });

  /** The check, from Node's request to the answer written; `requestId` as fastify's genReqId gives it. */
  const check = (req: IncomingMessage, res: ServerResponse, requestId: string): void => {
    const ids = requestTracing.begin(req);
    const description = entrance.describe({ headers: req.headers, rawHeaders: req.rawHeaders, peer: req.socket.remoteAddress ?? "", requestId });
    if (description.kind === "answer") {
      log.info({ reqId: requestId, ...ids, status: description.answer.status }, "check: refused the check request");
      return writeErrorResponse(res, description.answer);
    }
    if (cameOverTls !== undefined && !cameOverTls(req)) return writeErrorResponse(res, notOverTls);
    // The pipeline's log lines carry the check request's trace ids (request-tracing.ts).
    const asked = ids === undefined ? description.request : Object.assign({}, description.request, { logIds: ids });
    const fail = (error: unknown) => {
      // A bug must not become a pass (nor a hang): the proxy refuses on a 500.
      log.error({ reqId: requestId, ...ids, err: error }, "check: failed");
      writeErrorResponse(res, failed);
    };
    try {
      // With tracing on, the decision runs under the check request's span: guard.authenticate and the Introspect RPC join its trace.
      const decided = requestTracing.tracing.enabled ? requestTracing.run(req, () => options.pipeline.decide(asked)) : options.pipeline.decide(asked);
      // The cached path answers synchronously.
      if (!(decided instanceof Promise)) return writeErrorResponse(res, entrance.answer(decided, asked));
      decided.then((decision) => writeErrorResponse(res, entrance.answer(decision, asked)), fail);
    } catch (error) {
      fail(error);
    }
  };

  options.addRawEntry((req, res) => {
    const url = req.url ?? "";
    if (!(url === options.path || (url.startsWith(options.path) && url.charCodeAt(options.path.length) === QUESTION_MARK))) return false;
    if (requestTracing.tracing.enabled) {
      requestTracing.begin(req);
      requestTracing.watch(req, res);
      requestTracing.route(req, options.path);
    }
    check(req, res, options.requestIdOf(req));
    return true;
  });

  app.route({
    method: app.supportedMethods,
    url: options.path,
    onRequest: (request, reply) => {
      reply.hijack();
      check(request.raw, reply.raw, request.id);
    },
    handler: async (_request, reply) => reply.code(500).send(),
  });
};

const QUESTION_MARK = 0x3f;

/** The check endpoint; registered by gateway/app.ts beside the guard, on the same pipeline. */
export const checkEndpoint = fp(plugin, { name: "check-endpoint", fastify: "5.x", dependencies: ["oauth-errors"] });
