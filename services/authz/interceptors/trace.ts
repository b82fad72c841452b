import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { SpanStatusCode } from "@opentelemetry/api";
import type { Tracing } from "../../../startup/tracing.js";

/**
 * Continues the caller's trace (W3C `traceparent`/`tracestate` in the call's
 * headers, as the gateway sends them) with a SERVER span per call, named as
 * OpenTelemetry's RPC conventions ask (`gatehouse.v1.AuthorizationService/
 * ExchangeCode`), and runs the call with it active, so that the core's steps
 * and the store's operations nest under it. The outermost interceptor, on
 * both paths (the fast path and connect-node's adapter run the same list):
 * its span covers the error mapping and the log line too. Installed only when
 * tracing is on (app.ts).
 */
export function createTraceInterceptor(tracing: Tracing): Interceptor {
  return (next) => async (request) => {
    const span = tracing.startServerSpan(
      `${request.service.typeName}/${request.method.name}`,
      request.header.get("traceparent") ?? undefined,
      request.header.get("tracestate") ?? undefined,
      { "rpc.system.name": "connectrpc", "rpc.method": `${request.service.typeName}/${request.method.name}` },
    );
    try {
      const response = await tracing.withSpan(span, () => next(request));
      return response;
    } catch (error) {
      const code = ConnectError.from(error).code;
      span.setAttribute("rpc.response.status_code", Code[code]);
      // OpenTelemetry's RPC conventions: a server marks only server faults as errors.
      if (code === Code.Internal || code === Code.Unavailable || code === Code.DeadlineExceeded || code === Code.Unknown || code === Code.DataLoss) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: Code[code] });
      }
      throw error;
    } finally {
      span.end();
    }
  };
}
