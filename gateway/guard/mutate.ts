import type { IncomingHttpHeaders } from "node:http";
import type { Principal } from "./introspection-cache.js";

/**
 * The fifth step of the guard: the request headers the upstream sees. What the
 * caller said about who it is, or where it came from, is removed; what the
 * guard verified is written instead.
 */

export interface IdentityHeaderNames {
  readonly subject: string;
  readonly client: string;
  readonly scope: string;
}

/** Where the request came from, as the gateway determined it (trusting only configured proxies). */
export interface ForwardedFor {
  readonly for: string;
  readonly proto: string;
  readonly host: string;
}

export interface UpstreamRequest {
  /** The verified caller; undefined on the unguarded passthrough. */
  readonly principal: Principal | undefined;
  /** Keep the caller's `Authorization` header (per route); otherwise it is removed. */
  readonly forwardAuthorization: boolean;
  readonly forwarded: ForwardedFor;
  readonly requestId: string;
  /** A WebSocket handshake keeps `Connection: Upgrade` and `Upgrade: websocket`. */
  readonly websocket: boolean;
}

/**
 * RFC 9110 §7.6.1: hop-by-hop fields a proxy must not forward, and the ones
 * that act like them. `Expect` was answered by this server already;
 * `HTTP2-Settings` belongs to an h2c upgrade that is not forwarded.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
  "expect",
  "http2-settings",
]);

/** Fields that claim where a request came from: believed only as the gateway computes them. */
const FORWARDING = new Set(["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix", "x-real-ip", "x-request-id"]);

/** Returns the headers for the upstream: a new object; the caller's is left as it was. */
export type HeaderRewriter = (headers: IncomingHttpHeaders, request: UpstreamRequest) => IncomingHttpHeaders;

/**
 * Builds the header rewrite for the configured identity header names. A
 * caller's identity header is removed in every spelling an upstream might
 * read as the same field: any letter case (node lower-cases names) and with
 * `_` for `-` (CGI, WSGI and some proxies fold them together).
 */
export function createHeaderRewriter(names: IdentityHeaderNames): HeaderRewriter {
  const subject = names.subject.toLowerCase();
  const client = names.client.toLowerCase();
  const scope = names.scope.toLowerCase();
  const identity = new Set([subject, client, scope]);

  return (headers, request) => {
    const out: IncomingHttpHeaders = {};
    const connection = headers.connection;
    const listed = connection === undefined ? undefined : new Set(connection.toLowerCase().split(",").map((t) => t.trim()));
    for (const name of Object.keys(headers)) {
      if (
        HOP_BY_HOP.has(name) ||
        FORWARDING.has(name) ||
        identity.has(name) ||
        (name === "authorization" && !request.forwardAuthorization) ||
        (name.includes("_") && identity.has(name.replace(/_/g, "-"))) ||
        listed?.has(name) === true
      ) {
        continue;
      }
      out[name] = headers[name];
    }
    if (request.websocket) {
      out.connection = "Upgrade";
      out.upgrade = "websocket";
    }
    const { principal } = request;
    if (principal !== undefined) {
      out[subject] = principal.headerValues.subject;
      out[client] = principal.headerValues.client;
      out[scope] = principal.headerValues.scope;
    }
    out["x-forwarded-for"] = request.forwarded.for;
    out["x-forwarded-proto"] = request.forwarded.proto;
    out["x-forwarded-host"] = request.forwarded.host;
    out["x-request-id"] = request.requestId;
    return out;
  };
}
