import { Code, ConnectError } from "@connectrpc/connect";
import type { ServerResponse } from "node:http";
import type { FastifyReply } from "fastify";
import { OAuthErrorDetailSchema } from "../gen/gatehouse/v1/errors_pb.js";
import { NO_STORE } from "./response-headers.js";

/**
 * The gateway's error responses, built in one place: RFC 6749 §5.2 JSON (and
 * the §4.1.2.1 redirect), RFC 6750 §3 bearer challenges, RFC 9457
 * problem+json. The oauth-errors plugin sends them through fastify; the guard
 * writes them beneath it.
 */

/**
 * An OAuth error as the HTTP response carries it: the RFC's error code and
 * description (RFC 6749 §5.2), the status, and what a client needs to react.
 */
export interface OAuthFailure {
  status: number;
  error: string;
  description: string;
  /** RFC 6749 §5.2: a client that authenticated with HTTP Basic gets a 401 with this challenge. */
  challenge?: "Basic";
  /** Seconds (RFC 9110 §10.2.3). */
  retryAfter?: number;
  /**
   * For authorization endpoint errors the authz service verified the client
   * and redirect URI for: where to send the browser (RFC 6749 §4.1.2.1).
   */
  redirectUrl?: string;
}

/** An RFC 6750 §3 failure at a guarded route. */
export interface BearerFailure {
  status: 401 | 403 | 503 | 502 | 504 | 400 | 404;
  /** invalid_request, invalid_token, insufficient_scope; none for a request without a token (RFC 6750 §3.1). */
  error?: "invalid_request" | "invalid_token" | "insufficient_scope";
  description?: string;
  /** RFC 6750 §3: the scope the resource needs (insufficient_scope, and the challenges of a protected resource's routes). */
  scope?: string;
  /** RFC 9728 §5.1: the URL of the protected resource's metadata, on its 401 and 403 challenges. */
  resourceMetadata?: string;
  realm: string;
  style: "rfc6750" | "problem+json";
  retryAfter?: number;
}

/** The JSON error of a guard failure that carries no RFC 6750 code (RFC 6749's registry where one fits). */
const BEARER_FAILURE_ERROR: Readonly<Record<number, string>> = {
  400: "invalid_request",
  404: "not_found",
  502: "bad_gateway",
  503: "temporarily_unavailable",
  504: "gateway_timeout",
};
/** RFC 9457 §3.1.4: the title of a problem without a more specific one is the status's text. */
const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * Maps a failed RPC to the OAuth response the RFC asks for. The status of each
 * error code is decided here and nowhere else:
 * invalid_client → 401 with a Basic challenge when the client used Basic, else
 * 400 (RFC 6749 §5.2); store or authz service down → 503 temporarily_unavailable;
 * too many failures → 429 with Retry-After; server_error → 500; the rest → 400.
 */
export function oauthFailureFromRpc(error: unknown, options: { usedBasic: boolean }): OAuthFailure {
  const connectError = ConnectError.from(error);
  const [detail] = connectError.findDetails(OAuthErrorDetailSchema);
  const retryAfter = detail !== undefined && detail.retryAfter > 0n ? Number(detail.retryAfter) : undefined;
  if (detail === undefined) {
    // No OAuth detail: the authz service was not reached, or failed outside the protocol.
    if (connectError.code === Code.Unavailable || connectError.code === Code.DeadlineExceeded || connectError.code === Code.Canceled) {
      return { status: 503, error: "temporarily_unavailable", description: "the authorization server is unavailable", retryAfter: 1 };
    }
    return { status: 500, error: "server_error", description: "the authorization server failed to handle the request" };
  }
  const base = { error: detail.error, description: detail.errorDescription, redirectUrl: detail.redirectUrl || undefined, retryAfter };
  switch (detail.error) {
    case "invalid_client":
      return options.usedBasic ? Object.assign({}, base, { status: 401, challenge: "Basic" as const }) : Object.assign({}, base, { status: 400 });
    case "temporarily_unavailable":
      return Object.assign({}, base, { status: 503, retryAfter: retryAfter ?? 1 });
    case "too_many_attempts":
      // No RFC 6749 code fits a rate limit; temporarily_unavailable is the closest and clients retry it.
      return Object.assign({}, base, { status: 429, error: "temporarily_unavailable" });
    case "server_error":
      return Object.assign({}, base, { status: 500 });
    case "registration_not_supported":
      // The tenant's registration policy is off: there is no registration endpoint (RFC 7591 §3).
      return { status: 404, error: "not_found", description: "" };
    case "unknown_tenant":
      // A tenant removed at the authz service before this gateway reloaded: gone, as for the gateway's own 404.
      return { status: 404, error: "not_found", description: "no such tenant" };
    case "unauthenticated_caller":
      // The gateway's own credential was refused: a deployment error, not the client's.
      return { status: 500, error: "server_error", description: "the gateway is not authorized at the authorization server" };
    default:
      return Object.assign({}, base, { status: 400 });
  }
}

/**
 * The gateway's own shed beyond its concurrency limit (gateway.overload):
 * RFC 6749 §5.2 temporarily_unavailable with 503 and Retry-After (RFC 9110
 * §15.6.4, §10.2.3), on every endpoint and page the limit covers.
 */
export const OVERLOADED: Readonly<OAuthFailure> = {
  status: 503,
  error: "temporarily_unavailable",
  description: "the server is overloaded; retry later",
  retryAfter: 1,
};

/** A complete error response; each shape below is built once, then sent through fastify or written raw. */
export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** RFC 6749 §5.2 JSON error (or the §4.1.2.1 redirect it names), with no-store. */
export function oauthErrorResponse(failure: OAuthFailure): ErrorResponse {
  if (failure.redirectUrl !== undefined) return { status: 302, headers: Object.assign({}, NO_STORE, { location: failure.redirectUrl }), body: "" };
  const headers: Record<string, string> = Object.assign({}, NO_STORE, { "content-type": "application/json; charset=utf-8" });
  if (failure.challenge === "Basic") headers["www-authenticate"] = `Basic realm=${quote("gatehouse")}, charset="UTF-8"`;
  if (failure.retryAfter !== undefined) headers["retry-after"] = String(failure.retryAfter);
  const body = JSON.stringify({ error: failure.error, ...(failure.description === "" ? {} : { error_description: failure.description }) });
  return { status: failure.status, headers, body };
}

/** RFC 6750 §3 challenge, in the route's style (RFC 6750 JSON or RFC 9457 problem+json). */
export function bearerFailureResponse(failure: BearerFailure): ErrorResponse {
  const params = [`realm=${quote(failure.realm)}`];
  if (failure.error !== undefined) params.push(`error=${quote(failure.error)}`);
  if (failure.description !== undefined) params.push(`error_description=${quote(failure.description)}`);
  if (failure.scope !== undefined) params.push(`scope=${quote(failure.scope)}`);
  if (failure.resourceMetadata !== undefined) params.push(`resource_metadata=${quote(failure.resourceMetadata)}`);
  const headers: Record<string, string> = { "cache-control": "no-store" };
  // RFC 6750 §3: every refusal of the request itself carries the challenge with its error
  // code: 401, 403, and the 400 invalid_request of §3.1 (a token in the query, two
  // Authorization fields, a path that is refused). A 404 or 5xx does not challenge the client.
  if (failure.status === 401 || failure.status === 403 || (failure.status === 400 && failure.error !== undefined)) {
    headers["www-authenticate"] = `Bearer ${params.join(", ")}`;
  }
  if (failure.retryAfter !== undefined) headers["retry-after"] = String(failure.retryAfter);
  const detail = failure.description ?? (failure.status === 401 ? "a bearer token is required" : "request refused");
  if (failure.style === "problem+json") {
    headers["content-type"] = "application/problem+json";
    return {
      status: failure.status,
      headers,
      body: JSON.stringify({ type: "about:blank", title: failure.error ?? STATUS_TEXT[failure.status] ?? "Error", status: failure.status, detail }),
    };
  }
  // RFC 6750 names only the client's errors; what is not the client's fault
  // says so, and a request without a token gets no error code at all (§3.1).
  const error = failure.error ?? BEARER_FAILURE_ERROR[failure.status];
  headers["content-type"] = "application/json; charset=utf-8";
  return { status: failure.status, headers, body: JSON.stringify(error === undefined ? { error_description: detail } : { error, error_description: detail }) };
}

/** The gateway's 404 for a path nothing serves. */
export const NOT_FOUND: ErrorResponse = {
  status: 404,
  headers: { "content-type": "application/json; charset=utf-8" },
  body: JSON.stringify({ error: "not_found" }),
};

/** Sends an error response through fastify. */
export function sendErrorResponse(reply: FastifyReply, response: ErrorResponse): FastifyReply {
  return reply.code(response.status).headers(response.headers).send(response.body);
}

/** Writes an error response on a raw Node response: the guard's path beneath fastify, and fastify's frameworkErrors. */
export function writeErrorResponse(res: ServerResponse, response: ErrorResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(response.status, Object.assign({}, response.headers, { "content-length": String(Buffer.byteLength(response.body)) }));
  res.end(response.body);
}

/** RFC 6750 §3 / RFC 7235: auth-param values are quoted strings; quotes and backslashes are escaped. */
function quote(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
