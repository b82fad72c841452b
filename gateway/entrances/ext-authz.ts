import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { isProtectedResourceMetadataPath, type Allowance, type GuardDecision, type GuardPipeline, type GuardRequest, type Refusal } from "../guard/pipeline.js";
import type { CheckAnswer, EnvoyCheck, EnvoyHttpRequest, HeaderToSet } from "./ext-authz-wire.js";
import { parseTraceparent, type TraceIds } from "../../startup/trace-context.js";

/**
 * Entrance 3: Envoy's external authorization, v3 over gRPC
 * (`envoy.service.auth.v3.Authorization/Check`), as the ext_authz HTTP
 * filter calls it, and everything that speaks it (Istio's CUSTOM
 * AuthorizationPolicy, Contour, Emissary). This module only translates:
 *
 *   CheckRequest.attributes.request.http → GuardRequest → the pipeline →
 *   Refusal → DeniedHttpResponse / Allowance → OkHttpResponse
 *
 * Envoy forwards or answers the request itself; no byte of it passes here.
 */

/** A Check, decoded, to its answer. Envoy's ext_authz filter lets the request through on OK and denies it on anything else. */
export type ExtAuthzCheck = (request: EnvoyCheck) => CheckAnswer | Promise<CheckAnswer>;

/** Header fields an authorization service may not set for Envoy: its own hop-by-hop and framing fields. */
const NOT_SET = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "host"]);
/** A request id worth keeping (as the sidecar takes X-Request-Id): a plain token. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The pipeline behind a `Check`: the same decision the sidecar and the check endpoint make. */
export function createExtAuthzCheck(pipeline: Pick<GuardPipeline, "decide" | "protectedResourceMetadata">): ExtAuthzCheck {
  return (check) => {
    // The network (TCP) filter sends no HTTP attributes: there is no request to decide on.
    if (check.http === undefined) return WITHOUT_HTTP;
    const request = toGuardRequest(check.http, check.peer);
    // RFC 9728 §3: behind Envoy the metadata of a protected resource is answered here, as the sidecar's gateway serves it.
    const metadata = protectedResourceMetadataAnswer(pipeline, request);
    if (metadata !== undefined) return metadata;
    const decision = pipeline.decide(request);
    return decision instanceof Promise ? decision.then((d) => toCheckAnswer(d, request.target)) : toCheckAnswer(decision, request.target);
  };
}

/**
 * The request as Envoy describes it. Envoy sends header names in lower case
 * (attribute_context.proto, HttpRequest.headers) with repeated fields joined
 * by ","; with `encode_raw_headers` it sends them one by one in `header_map`
 * instead, which also tells a repeated Authorization apart. Pseudo-headers
 * (`:path`, `:authority`, ...) in the map are left out: `path` and `host`
 * carry them.
 */
export function toGuardRequest(http: EnvoyHttpRequest, peer: string): GuardRequest {
  // No prototype: a field named `__proto__` is a field like any other (as in Node's own header objects).
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  let rawHeaders: string[] | undefined;
  const entries = http.headerMap;
  if (entries !== undefined && entries.length > 0) {
    rawHeaders = [];
    for (const entry of entries) {
      const name = entry.key.toLowerCase();
      if (name.startsWith(":")) continue;
      const value = entry.value;
      rawHeaders.push(name, value);
      // Node's own merge for the one-valued view: repeated fields joined (the pipeline reads rawHeaders for a second Authorization).
      const existing = headers[name];
      headers[name] = existing === undefined ? value : `${existing}${name === "cookie" ? "; " : ", "}${value}`;
    }
  } else {
    for (const name of Object.keys(http.headers)) {
      if (name.charCodeAt(0) === 0x3a /* ":" */) continue;
      headers[name.toLowerCase()] = http.headers[name]!;
    }
  }
  if (http.host !== "") headers.host = http.host;
  const requestId = REQUEST_ID.test(http.id) ? http.id : (headers["x-request-id"] !== undefined && REQUEST_ID.test(headers["x-request-id"]) ? headers["x-request-id"] : randomUUID());
  return {
    method: http.method,
    // The request target as received, path and query, not decoded (HttpRequest.path); the pipeline normalises it.
    target: http.path,
    headers,
    ...(rawHeaders === undefined ? {} : { rawHeaders }),
    peer,
    websocket: http.method === "GET" && headers.upgrade?.toLowerCase() === "websocket",
    requestId,
    // The original request's W3C traceparent, as Envoy passes it on: its trace id reaches the pipeline's log lines.
    ...logIdsOf(headers.traceparent),
  };
}

/** `{ logIds }` from a valid traceparent (W3C Trace Context §3.2), else nothing. */
function logIdsOf(traceparent: string | undefined): { logIds: TraceIds } | Record<string, never> {
  const parsed = traceparent === undefined ? undefined : parseTraceparent(traceparent);
  return parsed === undefined ? {} : { logIds: { trace_id: parsed.trace_id, span_id: parsed.span_id } };
}

/**
 * A GET (or HEAD) of a protected resource's metadata path (RFC 9728 §3.1) at
 * its canonical spelling: Envoy answers the client with the document itself
 * (a "denied" response with status 200, as Envoy passes any status on), with
 * the CORS header the gateway's own endpoint sends. Anything else: undefined,
 * and the pipeline decides (an unknown metadata path is its 404).
 */
function protectedResourceMetadataAnswer(pipeline: Pick<GuardPipeline, "protectedResourceMetadata">, request: GuardRequest): CheckAnswer | undefined {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  const target = request.target;
  const mark = target.indexOf("?");
  const path = mark === -1 ? target : target.slice(0, mark);
  if (!isProtectedResourceMetadataPath(path)) return undefined;
  const document = pipeline.protectedResourceMetadata(path);
  if (document === undefined) return undefined;
  return {
    kind: "denied",
    code: Code.PermissionDenied,
    message: "protected_resource_metadata",
    httpStatus: 200,
    headers: [
      ["content-type", "application/json; charset=utf-8"],
      ["access-control-allow-origin", "*"],
      ["cache-control", "public, max-age=60"],
    ],
    body: request.method === "HEAD" ? "" : JSON.stringify(document),
  };
}

/** The pipeline's decision as Envoy takes it. */
export function toCheckAnswer(decision: GuardDecision, target: string): CheckAnswer {
  return decision.kind === "allow" ? allowed(decision, target) : denied(decision);
}

/**
 * A refusal: Envoy answers the client with this status, these headers
 * (`WWW-Authenticate` per RFC 6750 §3, `Retry-After` on 503, ...) and this
 * body, exactly what the sidecar would have sent. The gRPC status says why,
 * for Envoy's logs and stats; Envoy denies on any status but OK.
 */
function denied(refusal: Refusal): CheckAnswer {
  const headers: HeaderToSet[] = [];
  for (const name of Object.keys(refusal.headers)) {
    const lower = name.toLowerCase();
    if (!NOT_SET.has(lower)) headers.push([lower, refusal.headers[name]!]);
  }
  return {
    kind: "denied",
    code: refusal.status === 401 ? Code.Unauthenticated : refusal.status === 503 ? Code.Unavailable : Code.PermissionDenied,
    message: refusal.outcome,
    httpStatus: refusal.status,
    headers,
    body: refusal.body,
  };
}

/**
 * An allowance: the identity headers are set, replacing any copy the caller
 * sent (append false); the other fields the pipeline strips (the caller's
 * Authorization unless the route forwards it, path- and method-overriding
 * headers, `_` spellings of identity headers) are removed.
 *
 * Envoy applies `headers_to_remove` after `headers` (ext_authz filter,
 * onComplete), so a field that is set is never also listed for removal: it
 * would take the verified value away with the caller's.
 *
 * The upstream must get the path that was checked, as the sidecar sends it:
 * when the pipeline's normal form differs from what the client sent, `:path`
 * is set to it.
 */
function allowed(allowance: Allowance, target: string): CheckAnswer {
  const headers: HeaderToSet[] = [];
  const set = new Set<string>();
  for (const name of Object.keys(allowance.setHeaders)) {
    const lower = name.toLowerCase();
    if (NOT_SET.has(lower) || lower.startsWith(":")) continue;
    set.add(lower);
    headers.push([lower, allowance.setHeaders[name]!]);
  }
  const checked = allowance.path + allowance.search;
  if (checked !== target) headers.push([":path", checked]);
  const headersToRemove: string[] = [];
  for (const name of allowance.removeHeaders) {
    const lower = name.toLowerCase();
    if (!set.has(lower) && lower !== "host" && !lower.startsWith(":")) headersToRemove.push(lower);
  }
  return { kind: "ok", headers, headersToRemove };
}

/** A Check without HTTP attributes (Envoy's network filter): nothing the guard can decide on, so no. */
const WITHOUT_HTTP: CheckAnswer = Object.freeze({ kind: "status", code: Code.InvalidArgument, message: "no HTTP request attributes: gatehouse guards HTTP requests only" });
