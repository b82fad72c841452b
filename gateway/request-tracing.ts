import type { IncomingMessage, ServerResponse } from "node:http";
import { SpanStatusCode } from "@opentelemetry/api";
import { endWithError, logIdsOf, traceIdsOf, type Span, type Tracing } from "../startup/tracing.js";
import type { AuthenticateTracer } from "./guard/pipeline.js";
import type { TraceIds } from "../startup/trace-context.js";

/**
 * The browser-facing request as a trace: a SERVER span per request that
 * continues the caller's W3C `traceparent`, ended when the response closes,
 * and the ids every log line of the request carries. Used by fastify's child
 * logger (app.ts) for the gateway's own endpoints and by the guard's raw
 * entry (plugins/guard.ts) for guarded requests.
 *
 * Tracing off: no span and no listener; a caller's `traceparent` is parsed
 * only for the log lines (its trace id and the caller's span id), and it
 * reaches a guarded route's upstream as sent. It is not sent on to the authz
 * service: that would need the request's context in every RPC call, the cost
 * tracing off is meant not to have.
 */
export interface RequestTracing {
  readonly tracing: Tracing;
  /** Starts the request's span (tracing on) and gives the ids its log lines carry. */
  begin(req: IncomingMessage): TraceIds | undefined;
  /** Ends the request's span when its response closes, with the status sent. */
  watch(req: IncomingMessage, res: ServerResponse): void;
  /** The request's span, while it is open. */
  spanOf(req: IncomingMessage): Span | undefined;
  /** Names the span after the route that serves the request (`POST /oauth2/token`). */
  route(req: IncomingMessage, route: string): void;
  /** Runs `run` with the request's span active, so the RPCs it makes join the trace. */
  run<T>(req: IncomingMessage, run: () => T): T;
}

export function createRequestTracing(tracing: Tracing): RequestTracing {
  if (!tracing.enabled) {
    return {
      tracing,
      begin: (req) => logIdsOf(undefined, req.headers.traceparent),
      watch: () => {},
      spanOf: () => undefined,
      route: () => {},
      run: (_req, run) => run(),
    };
  }
  const spans = new WeakMap<IncomingMessage, Span>();
  return {
    tracing,
    begin(req) {
      const existing = spans.get(req);
      if (existing !== undefined) return traceIdsOf(existing);
      const method = req.method ?? "GET";
      const span = tracing.startServerSpan(method, req.headers.traceparent, req.headers.tracestate, {
        "http.request.method": method,
        "url.path": pathOf(req.url),
      });
      spans.set(req, span);
      return traceIdsOf(span);
    },
    watch(req, res) {
      const span = spans.get(req);
      if (span === undefined) return;
      // 'close' comes once the response is sent or the connection is gone, whoever answered.
      res.once("close", () => {
        spans.delete(req);
        span.setAttribute("http.response.status_code", res.statusCode);
        if (res.statusCode >= 500 || !res.writableFinished) span.setStatus({ code: SpanStatusCode.ERROR, ...(res.writableFinished ? {} : { message: "the response was not completed" }) });
        span.end();
      });
    },
    spanOf: (req) => spans.get(req),
    route(req, route) {
      const span = spans.get(req);
      if (span === undefined) return;
      span.updateName(`${req.method ?? "GET"} ${route}`);
      span.setAttribute("http.route", route);
    },
    run(req, run) {
      const span = spans.get(req);
      return span === undefined ? run() : tracing.withSpan(span, run);
    },
  };
}

/**
 * The guard pipeline's step 3 as a span, `guard.authenticate`, with
 * `gatehouse.cache` hit or miss; on a miss the Introspect RPC is its child.
 * Undefined when tracing is off: the pipeline then wraps nothing.
 */
export function createAuthenticateTracer(tracing: Tracing): AuthenticateTracer | undefined {
  if (!tracing.enabled) return undefined;
  return (authenticate) => {
    const span = tracing.startSpan("guard.authenticate");
    let result: ReturnType<typeof authenticate>;
    try {
      result = tracing.withSpan(span, authenticate);
    } catch (error) {
      endWithError(span, error);
      throw error;
    }
    span.setAttribute("gatehouse.cache", result instanceof Promise ? "miss" : "hit");
    if (result instanceof Promise) {
      result.then(
        () => span.end(),
        (error: unknown) => endWithError(span, error),
      );
    } else {
      span.end();
    }
    return result;
  };
}

/** The path without its query: a query may carry secrets. */
function pathOf(url: string | undefined): string {
  if (url === undefined) return "";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}
