import type { Principal } from "./introspection-cache.js";
import type { RequestHeaders } from "./request-headers.js";

/**
 * The fifth step of the guard: the request headers the upstream sees. What the
 * caller said about who it is, or how the upstream should read the path, is
 * removed; what the guard verified is written instead.
 *
 * Two halves: the pipeline decides which fields to set and which of the
 * caller's to remove (`createIdentityMutation`, the same for every entrance);
 * the sidecar applies that decision to the request it proxies, together with
 * what belongs to the hop (`createUpstreamHeaders`: hop-by-hop fields,
 * X-Forwarded-*, X-Request-Id).
 */

export interface IdentityHeaderNames {
  readonly subject: string;
  readonly client: string;
  readonly scope: string;
  /** The tenant that issued the token (issue 11); written where tenants are configured, always removed from the caller's request. */
  readonly tenant?: string | undefined;
}

/** Where the request came from, as the gateway determined it (trusting only configured proxies). */
export interface ForwardedFor {
  readonly for: string;
  readonly proto: string;
  readonly host: string;
}

/** The pipeline's half: the fields to set and the caller's fields to remove. */
export interface IdentityMutation {
  /** The verified identity (subject, client, scope), lower-case names; empty for the passthrough. */
  setHeaders(principal: Principal | undefined): Readonly<Record<string, string>>;
  /**
   * The names of the request's fields that must not reach the upstream: the
   * caller's identity fields (in any spelling), the path- and
   * method-overriding fields, and Authorization unless the route forwards it.
   */
  removeHeaders(headers: RequestHeaders, forwardAuthorization: boolean): readonly string[];
  /**
   * The fields `Connection` must not name (RFC 9110 §7.6.1 lets it name
   * fields a proxy then drops): Host, Authorization, Content-Length,
   * Transfer-Encoding and the identity fields. Returns the first one named.
   */
  forbiddenConnectionOption(connection: string): string | undefined;
}

const NOTHING: readonly string[] = Object.freeze([]);
const AUTHORIZATION_ONLY: readonly string[] = Object.freeze(["authorization"]);
const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

/** Fields whose removal by a `Connection` option would change what the upstream reads (framing, target, credentials). */
const PROTECTED_FROM_CONNECTION = ["host", "authorization", "content-length", "transfer-encoding"];

/**
 * Builds the pipeline's header decision for the configured identity header
 * names and override list. A caller's identity or override field is removed
 * in every spelling an upstream might read as the same field: any letter case
 * (names are lower case here) and with `_` for `-` (CGI, WSGI and some proxies
 * fold them together).
 */
export function createIdentityMutation(options: { identityHeaders: IdentityHeaderNames; overrideHeaders: readonly string[] }): IdentityMutation {
  const subject = options.identityHeaders.subject.toLowerCase();
  const client = options.identityHeaders.client.toLowerCase();
  const scope = options.identityHeaders.scope.toLowerCase();
  const tenant = (options.identityHeaders.tenant ?? "X-Gatehouse-Tenant").toLowerCase();
  /** Removed whatever their spelling; `_` folded to `-` before the lookup. */
  const removed = new Set([subject, client, scope, tenant, ...options.overrideHeaders.map((name) => name.toLowerCase())]);
  const protectedFromConnection = new Set([...PROTECTED_FROM_CONNECTION, subject, client, scope, tenant]);

  // A principal is served from the cache to many requests: its fields are built once (an
  // object with computed names is slow to make, and this is the cached path).
  const identityOf = new WeakMap<Principal, Readonly<Record<string, string>>>();

  return {
    setHeaders(principal) {
      if (principal === undefined) return EMPTY;
      let fields = identityOf.get(principal);
      if (fields === undefined) {
        const built: Record<string, string> = {};
        built[subject] = principal.headerValues.subject;
        built[client] = principal.headerValues.client;
        built[scope] = principal.headerValues.scope;
        if (principal.headerValues.tenant !== undefined) built[tenant] = principal.headerValues.tenant;
        identityOf.set(principal, (fields = Object.freeze(built)));
      }
      return fields;
    },

    removeHeaders(headers, forwardAuthorization) {
      let authorization = false;
      let extra: string[] | undefined;
      for (const name in headers) {
        if (headers[name] === undefined) continue;
        if (name === "authorization") {
          authorization = !forwardAuthorization;
        } else if (removed.has(name) || (name.includes("_") && removed.has(name.replace(/_/g, "-")))) {
          (extra ??= []).push(name);
        }
      }
      // The common answers are shared: nothing is allocated for a request without extra fields.
      if (extra === undefined) return authorization ? AUTHORIZATION_ONLY : NOTHING;
      if (authorization) extra.push("authorization");
      return extra;
    },

    forbiddenConnectionOption(connection) {
      for (const option of connection.split(",")) {
        const name = option.trim().toLowerCase().replace(/_/g, "-");
        if (protectedFromConnection.has(name)) return name;
      }
      return undefined;
    },
  };
}

/** The headers a proxied request is sent with (the sidecar's half). */
export interface UpstreamHeaderRequest {
  /** From the pipeline's Allowance. */
  readonly setHeaders: Readonly<Record<string, string>>;
  readonly removeHeaders: readonly string[];
  readonly forwarded: ForwardedFor;
  readonly requestId: string;
  /** A WebSocket handshake keeps `Connection: Upgrade` and `Upgrade: websocket`. */
  readonly websocket: boolean;
  /** W3C Trace Context of the gateway's span, in place of the caller's (tracing on); absent: the caller's pass as sent. */
  readonly traceContext?: { readonly traceparent: string; readonly tracestate: string | undefined };
}

/**
 * Returns the header fields for the upstream as name/value pairs (what
 * node:http writes as they are; a repeated field is repeated); the caller's
 * headers are left as they were.
 */
export type UpstreamHeaders = (headers: RequestHeaders, request: UpstreamHeaderRequest) => string[];

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

/**
 * The sidecar's header rewrite: the pipeline's decision (fields to remove and
 * to set), the hop-by-hop fields and those `Connection` names (RFC 9110
 * §7.6.1; the pipeline refused a `Connection` that names a protected field),
 * and the gateway's own X-Forwarded-* and X-Request-Id.
 */
export function createUpstreamHeaders(): UpstreamHeaders {
  return (headers, request) => {
    const out: string[] = [];
    const connection = headers.connection;
    const listed = connection === undefined ? undefined : new Set(String(connection).toLowerCase().split(",").map((t) => t.trim()));
    const remove = request.removeHeaders;
    const trace = request.traceContext;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || HOP_BY_HOP.has(name) || FORWARDING.has(name) || listed?.has(name) === true || (remove.length > 0 && remove.includes(name))) continue;
      if (trace !== undefined && (name === "traceparent" || name === "tracestate")) continue;
      if (typeof value === "string") out.push(name, value);
      else for (const one of value) out.push(name, one);
    }
    if (request.websocket) out.push("connection", "Upgrade", "upgrade", "websocket");
    const set = request.setHeaders;
    for (const name in set) out.push(name, set[name]!);
    if (trace !== undefined) {
      out.push("traceparent", trace.traceparent);
      if (trace.tracestate !== undefined && trace.tracestate !== "") out.push("tracestate", trace.tracestate);
    }
    out.push("x-forwarded-for", request.forwarded.for, "x-forwarded-proto", request.forwarded.proto, "x-forwarded-host", request.forwarded.host, "x-request-id", request.requestId);
    return out;
  };
}

/** Name/value pairs as an object (what http-proxy's WebSocket handshake reads from `req.headers`); a repeated field becomes a list. */
export function headerObject(pairs: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i]!;
    const value = pairs[i + 1]!;
    const seen = out[name];
    out[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return out;
}
