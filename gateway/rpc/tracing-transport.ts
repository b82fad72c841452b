import type { Transport } from "@connectrpc/connect";
import { SpanStatusCode } from "@opentelemetry/api";
import { endWithError, SpanKind, traceparentOf, type Tracing } from "../../startup/tracing.js";

/**
 * Each unary RPC made for a traced request as a CLIENT span, its W3C
 * `traceparent` (and `tracestate`) sent in the call's headers: the authz
 * service continues the trace from them (services/authz/interceptors/trace.ts).
 * It wraps whichever transport carries the call, so the lean transport (which
 * writes the call's headers itself) and connect-es's carry it alike.
 *
 * Calls made outside a request (readiness probes, the metadata cache, the
 * revocation stream) start no trace of their own. Built only when tracing is
 * on (rpc/authz-client.ts).
 */
export function createTracingTransport(inner: Transport, tracing: Tracing): Transport {
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      if (tracing.activeSpan() === undefined) return inner.unary(method, signal, timeoutMs, header, input, contextValues);
      const name = `${method.parent.typeName}/${method.name}`;
      const span = tracing.startSpan(name, SpanKind.CLIENT, { "rpc.system.name": "connectrpc", "rpc.method": name });
      const headers = new Headers(header);
      headers.set("traceparent", traceparentOf(span));
      const state = span.spanContext().traceState?.serialize();
      if (state !== undefined && state !== "") headers.set("tracestate", state);
      return tracing.withSpan(span, () => inner.unary(method, signal, timeoutMs, headers, input, contextValues)).then(
        (response) => {
          span.setStatus({ code: SpanStatusCode.UNSET });
          span.end();
          return response;
        },
        (error: unknown) => {
          endWithError(span, error);
          throw error;
        },
      );
    },
    stream: (method, signal, timeoutMs, header, input, contextValues) => inner.stream(method, signal, timeoutMs, header, input, contextValues),
  };
}
