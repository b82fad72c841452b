import type { FastifyReply, FastifyRequest } from "fastify";
import type { ConcurrencyLimiter } from "../startup/concurrency-limiter.js";
import type { OverloadReporter } from "../startup/overload-reporter.js";
import type { GatewayOverloadKind } from "./metrics.js";
import { OVERLOADED } from "./oauth-error-response.js";
import { sendErrorPage } from "./views/error-page.js";

/** The gateway's concurrency limit and the reporter of what it sheds and what times out. */
export interface GatewayOverload {
  readonly limiter: ConcurrencyLimiter;
  readonly reporter: OverloadReporter<GatewayOverloadKind>;
}

/**
 * An onRequest hook that admits a request to the OAuth endpoints and pages
 * within the limit (gateway.overload), or sheds it: 503, Retry-After,
 * temporarily_unavailable (RFC 6749 §5.2) as JSON, or as an error page on an
 * HTML route. The slot is freed when the response closes, whether it was
 * sent or the client went away (also while it waited for the slot). Runs before the body is read, so a shed
 * request costs almost nothing.
 */
export function createLoadShedHook(overload: GatewayOverload) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    let release = overload.limiter.acquire();
    if (release instanceof Promise) release = await release;
    if (release === undefined) {
      overload.reporter.report("shed", { route: request.routeOptions.url });
      return request.routeOptions.config?.html === true ? sendErrorPage(reply, OVERLOADED) : reply.sendOAuthError(OVERLOADED);
    }
    // A client that left while the request waited in the queue closed its response already: 'close'
    // will not come again, and the slot would be held for good (at 1024 connections past saturation,
    // every slot was lost within seconds and everything after was shed).
    if (reply.raw.closed) {
      release();
      return reply.hijack();
    }
    reply.raw.once("close", release);
    return undefined;
  };
}
