import type { StreamRequest, UnaryRequest } from "@connectrpc/connect";
import { logIdsOf, type Tracing } from "../../../startup/tracing.js";
import type { TraceIds } from "../../../startup/trace-context.js";

/**
 * The `trace_id` and `span_id` a call's log lines carry: the call's span when
 * tracing is on (interceptors/trace.ts made it active), else the caller's
 * `traceparent` as sent, parsed only when a line is written. Empty when
 * neither is there, so that it can be spread into a log object.
 */
export function callLogIds(tracing: Tracing, request: UnaryRequest | StreamRequest): TraceIds | Record<string, never> {
  return logIdsOf(tracing.activeSpan(), request.header.get("traceparent")) ?? {};
}
