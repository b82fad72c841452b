import type { FastifyError, FastifyPluginAsync, FastifyReply } from "fastify";
import fp from "fastify-plugin";
import { NOT_FOUND, sendErrorResponse, bearerFailureResponse, oauthErrorResponse, type BearerFailure, type OAuthFailure } from "../oauth-error-response.js";

declare module "fastify" {
  interface FastifyReply {
    /** RFC 6749 §5.2 JSON error (or the §4.1.2.1 redirect it names), with no-store. */
    sendOAuthError(failure: OAuthFailure): FastifyReply;
    /** RFC 6750 §3 challenge, in the route's style. */
    sendBearerFailure(failure: BearerFailure): FastifyReply;
  }
  interface FastifyContextConfig {
    /** Errors of this route are rendered as an HTML page (login and consent pages). */
    html?: boolean;
  }
}

export interface OAuthErrorsOptions {
  /** Renders an HTML error page for routes with `config.html`; the pages plugin provides it. */
  renderErrorPage?: (status: number, message: string) => string;
}

const plugin: FastifyPluginAsync<OAuthErrorsOptions> = async (app, options) => {
  app.decorateReply("sendOAuthError", function (this: FastifyReply, failure: OAuthFailure) {
    return sendErrorResponse(this, oauthErrorResponse(failure));
  });

  app.decorateReply("sendBearerFailure", function (this: FastifyReply, failure: BearerFailure) {
    return sendErrorResponse(this, bearerFailureResponse(failure));
  });

  // Whatever escapes a route: parse errors, limits, bugs. A clear 4xx in the
  // RFC's shape for bad input, a bare server_error for the rest; never a stack.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) request.log.error({ err: error }, "unhandled error");
    const description = status === 500 ? "the server failed to handle the request" : describeClientError(error);
    if (request.routeOptions.config?.html === true && options.renderErrorPage !== undefined) {
      return reply.code(status).type("text/html; charset=utf-8").header("cache-control", "no-store").send(options.renderErrorPage(status, description));
    }
    return reply.sendOAuthError({ status, error: status === 500 ? "server_error" : "invalid_request", description });
  });

  app.setNotFoundHandler((request, reply) => {
    if (request.routeOptions.config?.html === true && options.renderErrorPage !== undefined) {
      return reply.code(404).type("text/html; charset=utf-8").send(options.renderErrorPage(404, "not found"));
    }
    return sendErrorResponse(reply, NOT_FOUND);
  });
};

/** A short, safe description of a 4xx fastify raised (its own messages name no internals). */
function describeClientError(error: FastifyError): string {
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return "the request body is too large";
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return "unsupported content type";
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return "malformed request body";
    case "FST_ERR_VALIDATION":
      return error.message.replace(/^body\/?/, "").slice(0, 200) || "invalid request";
    default:
      return error.message.length > 0 && error.message.length <= 200 ? error.message : "invalid request";
  }
}

/** Decorates replies with the RFC's error shapes; registered once, visible to every plugin. */
export const oauthErrors = fp(plugin, { name: "oauth-errors", fastify: "5.x" });
