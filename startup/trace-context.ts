/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) as both processes
 * read and write it: the `traceparent` header parsed by hand, so that a
 * caller's trace id reaches the logs even when tracing is off (no SDK, no
 * context manager: one regular expression per request that carries one).
 */

/** The ids of a trace context, as they are logged (`trace_id`, `span_id`: the OpenTelemetry log data model's names). */
export interface TraceIds {
  readonly trace_id: string;
  readonly span_id: string;
}

/** A parsed `traceparent`: W3C Trace Context §3.2. */
export interface Traceparent extends TraceIds {
  /** The trace flags; bit 0 is `sampled` (§3.2.2.5). */
  readonly flags: number;
}

/**
 * §3.2.2: version-traceid-parentid-flags, lower-case hex. A version other
 * than 00 is parsed as 00 (§3.2.4: "parse the first four fields"), ff is
 * invalid, and so are all-zero ids (§3.2.2.3, §3.2.2.4).
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** Parses a `traceparent` header value; undefined when absent or invalid (§3.2.4: then it is ignored). */
export function parseTraceparent(value: string | string[] | undefined | null): Traceparent | undefined {
  if (typeof value !== "string" || value.length < 55 || value.length > 512) return undefined;
  const match = TRACEPARENT.exec(value.trim());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { trace_id: traceId!, span_id: spanId!, flags: parseInt(flags!, 16) };
}

/** Formats a `traceparent` header value (version 00). */
export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${flags < 16 ? "0" : ""}${flags.toString(16)}`;
}
