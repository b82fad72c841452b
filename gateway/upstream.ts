import type { Agent as HttpAgent, IncomingMessage, RequestOptions, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { UrlWithStringQuery } from "node:url";

/** What the guard needs of the proxy (plugins/proxy.ts: node:http for requests, http-proxy for WebSockets). */

/** An upstream URL, parsed once at start-up. */
export interface UpstreamTarget {
  readonly url: string;
  readonly parsed: UrlWithStringQuery;
  /** Where a request goes and through which pooled connections, built once. */
  readonly web: { readonly origin: Pick<RequestOptions, "protocol" | "hostname" | "port">; readonly agent: HttpAgent };
  /** The upstream URL's own path, prefixed to every request's ("" for none). */
  readonly basePath: string;
  /** The http-proxy options of a WebSocket handshake (http-proxy would parse a string target on every request). */
  readonly ws: { readonly target: UrlWithStringQuery; readonly agent: false };
}

/** A request as it goes upstream: the path (and query) to ask for and the header fields, as name/value pairs. */
export interface OutgoingRequest {
  /** The checked path and the query as it came; the target's basePath goes before it. */
  readonly path: string;
  /** Lower-case names; a repeated field is repeated. */
  readonly headers: readonly string[];
}

/** Why an upstream did not answer. */
export interface UpstreamFailure {
  /** timeout: no byte for upstreamTimeoutMs (504); unreachable: refused, reset, unknown host (502). */
  readonly kind: "timeout" | "unreachable";
  /** The system error code (ECONNREFUSED, ...), for the log. */
  readonly code: string | undefined;
  /**
   * The response had started when it failed. The client connection is then
   * cut (a truncated body must not look complete) and nothing else is sent.
   */
  readonly responseStarted: boolean;
}

export interface UpstreamProxy {
  target(url: string): UpstreamTarget;
  /** Proxies a request: `outgoing` is what the guard decided to send, the body streams from `req`, the answer to `res`. */
  web(req: IncomingMessage, res: ServerResponse, target: UpstreamTarget, outgoing: OutgoingRequest, onFailure: (failure: UpstreamFailure) => void): void;
  /**
   * Proxies a WebSocket handshake whose `url` and headers the guard has
   * already rewritten, then the connection, both ways. `onOpen`
   * gets the upstream's socket once the upstream accepted the upgrade, before
   * the two are piped together (the guard ends a connection whose token is
   * revoked with a close frame of its own).
   */
  ws(req: IncomingMessage, socket: Duplex, head: Buffer, target: UpstreamTarget, onFailure: (failure: UpstreamFailure) => void, onOpen?: (upstream: Duplex) => void): void;
}
