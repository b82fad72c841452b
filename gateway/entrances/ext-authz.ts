import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { HeaderValueOption_HeaderAppendAction, HeaderValueOptionSchema, type HeaderValueOption } from "../../gen/envoy/config/core/v3/base_pb.js";
import type { AttributeContext_HttpRequest, AttributeContext_Peer } from "../../gen/envoy/service/auth/v3/attribute_context_pb.js";
import { CheckResponseSchema, type CheckRequest, type CheckResponse } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { StatusCode } from "../../gen/envoy/type/v3/http_status_pb.js";
import type { Allowance, GuardDecision, GuardPipeline, GuardRequest, Refusal } from "../guard/pipeline.js";

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

/** What Envoy's ext_authz filter does with a CheckResponse: OK lets the request through, anything else denies it. */
export type ExtAuthzCheck = (request: CheckRequest) => CheckResponse | Promise<CheckResponse>;

/** Header fields an authorization service may not set for Envoy: its own hop-by-hop and framing fields. */
const NOT_SET = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "host"]);
/** A request id worth keeping (as the sidecar takes X-Request-Id): a plain token. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The pipeline behind a `Check`: the same decision the sidecar and the check endpoint make. */
export function createExtAuthzCheck(pipeline: Pick<GuardPipeline, "decide">): ExtAuthzCheck {
  return (check) => {
    const http = check.attributes?.request?.http;
    // The network (TCP) filter sends no HTTP attributes: there is no request to decide on.
    if (http === undefined) return denyWithoutHttp();
    const request = toGuardRequest(http, check.attributes?.source);
    const decision = pipeline.decide(request);
    return decision instanceof Promise ? decision.then((d) => toCheckResponse(d, request.target)) : toCheckResponse(decision, request.target);
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
export function toGuardRequest(http: AttributeContext_HttpRequest, source: AttributeContext_Peer | undefined): GuardRequest {
  const headers: Record<string, string> = {};
  let rawHeaders: string[] | undefined;
  const entries = http.headerMap?.headers;
  if (entries !== undefined && entries.length > 0) {
    rawHeaders = [];
    for (const entry of entries) {
      const name = entry.key.toLowerCase();
      if (name.startsWith(":")) continue;
      const value = entry.rawValue.length > 0 ? Buffer.from(entry.rawValue).toString("latin1") : entry.value;
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
  const address = source?.address?.address;
  return {
    method: http.method,
    // The request target as received, path and query, not decoded (HttpRequest.path); the pipeline normalises it.
    target: http.path,
    headers,
    ...(rawHeaders === undefined ? {} : { rawHeaders }),
    peer: address?.case === "socketAddress" ? address.value.address : "",
    websocket: http.method === "GET" && headers.upgrade?.toLowerCase() === "websocket",
    requestId,
  };
}

/** The pipeline's decision as Envoy takes it. */
export function toCheckResponse(decision: GuardDecision, target: string): CheckResponse {
  return decision.kind === "allow" ? allowed(decision, target) : denied(decision);
}

/**
 * A refusal: Envoy answers the client with this status, these headers
 * (`WWW-Authenticate` per RFC 6750 §3, `Retry-After` on 503, ...) and this
 * body, exactly what the sidecar would have sent. The gRPC status says why,
 * for Envoy's logs and stats; Envoy denies on any status but OK.
 */
function denied(refusal: Refusal): CheckResponse {
  const code = refusal.status === 401 ? Code.Unauthenticated : refusal.status === 503 ? Code.Unavailable : Code.PermissionDenied;
  return create(CheckResponseSchema, {
    status: { code, message: refusal.outcome },
    httpResponse: {
      case: "deniedResponse",
      value: {
        status: { code: refusal.status as StatusCode },
        headers: Object.entries(refusal.headers)
          .filter(([name]) => !NOT_SET.has(name.toLowerCase()))
          .map(([name, value]) => replace(name.toLowerCase(), value)),
        body: refusal.body,
      },
    },
  });
}

/**
 * An allowance: the identity headers are set, replacing any copy the caller
 * sent; the other fields the pipeline strips (the caller's Authorization
 * unless the route forwards it, path-rewriting headers, `_` spellings of
 * identity headers) are removed.
 *
 * Envoy applies `headers_to_remove` after `headers` (ext_authz filter,
 * onComplete), so a field that is set is never also listed for removal: it
 * would take the verified value away with the caller's.
 *
 * The upstream must get the path that was checked, as the sidecar sends it:
 * when the pipeline's normal form differs from what the client sent, `:path`
 * is set to it.
 */
function allowed(allowance: Allowance, target: string): CheckResponse {
  const headers: HeaderValueOption[] = [];
  const set = new Set<string>();
  for (const [name, value] of Object.entries(allowance.setHeaders)) {
    const lower = name.toLowerCase();
    if (NOT_SET.has(lower) || lower.startsWith(":")) continue;
    set.add(lower);
    headers.push(replace(lower, value));
  }
  const checked = allowance.path + allowance.search;
  if (checked !== target) headers.push(replace(":path", checked));
  const remove: string[] = [];
  for (const name of allowance.removeHeaders) {
    const lower = name.toLowerCase();
    if (!set.has(lower) && lower !== "host" && !lower.startsWith(":")) remove.push(lower);
  }
  return create(CheckResponseSchema, {
    status: { code: 0 },
    httpResponse: { case: "okResponse", value: { headers, headersToRemove: remove } },
  });
}

/**
 * A field that replaces any field of the same name. `append: false` is what
 * every Envoy version reads; newer ones read `append_action` only when
 * `append` is unset, so the two agree.
 */
function replace(key: string, value: string): HeaderValueOption {
  return create(HeaderValueOptionSchema, {
    header: { key, value },
    append: false,
    appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
  });
}

/** A Check without HTTP attributes (Envoy's network filter): nothing the guard can decide on, so no. */
function denyWithoutHttp(): CheckResponse {
  return create(CheckResponseSchema, { status: { code: Code.InvalidArgument, message: "no HTTP request attributes: gatehouse guards HTTP requests only" } });
}
