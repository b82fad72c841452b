import type { Agent as HttpAgent, IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { UrlWithStringQuery } from "node:url";

/** What the guard needs of the proxy (plugins/proxy.ts, the only user of http-proxy). */

/** An upstream URL, parsed once at start-up. */
export interface UpstreamTarget {
  readonly url: string;
  readonly parsed: UrlWithStringQuery;
  /** The http-proxy options for it, built once (http-proxy would parse a string target on every request). */
  readonly web: { readonly target: UrlWithStringQuery; readonly agent: HttpAgent };
  readonly ws: { readonly target: UrlWithStringQuery; readonly agent: false };
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
  /** Proxies a request whose `url` and headers the guard has already rewritten. */
  web(req: IncomingMessage, res: ServerResponse, target: UpstreamTarget, onFailure: (failure: UpstreamFailure) => void): void;
  /**
   * Proxies a WebSocket handshake, then the connection, both ways. `onOpen`
   * gets the upstream's socket once the upstream accepted the upgrade, before
   * the two are piped together (the guard ends a connection whose token is
   * revoked with a close frame of its own).
   */
  ws(req: IncomingMessage, socket: Duplex, head: Buffer, target: UpstreamTarget, onFailure: (failure: UpstreamFailure) => void, onOpen?: (upstream: Duplex) => void): void;
}
