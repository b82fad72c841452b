import type { Agent as HttpAgent, ClientRequest, IncomingMessage } from "node:http";
import { connect as connectTcp, isIP, type Socket } from "node:net";
import { connect as connectTls, type ConnectionOptions as TlsOptions } from "node:tls";

/**
 * The guard's kept-alive connections to one upstream origin, in the place
 * node:http gives its `agent`: a ClientRequest asks it for a socket
 * (`addRequest`) and, once its response has ended with the connection kept
 * alive, hands the socket back (the socket's 'free' event). That is all of
 * the Agent contract node:http uses; the rest of http.Agent is not needed.
 *
 * Why not http.Agent:
 * - A reused connection took the upstream's Keep-Alive hint as its request
 *   timeout. The Agent shortens an idle socket's timeout to the hint minus a
 *   second (a Node upstream announces `timeout=5`: 4 s) and leaves it there
 *   when the socket is reused, so a request on a reused connection to such an
 *   upstream failed with 504 after 4 s of silence, whatever upstreamTimeoutMs
 *   said, while the same request on a fresh connection was given the full time.
 *   Here the hint only decides how long an idle connection may be reused;
 *   a request always gets `timeoutMs`.
 * - Per request the Agent copied the request's options into a dictionary
 *   object, named the pool three times, built the response's header object to
 *   read the hint, and set the socket's timer twice: about a tenth of the
 *   sidecar's CPU per proxied request (bench:guard profiles). Here a request
 *   takes the newest idle socket, and the hint is read from the raw headers.
 */

/** Where the connections go: the upstream URL's origin, parsed once. */
export interface UpstreamOrigin {
  readonly secure: boolean;
  readonly hostname: string;
  readonly port: number;
}

export interface UpstreamPoolOptions {
  /**
   * A connection silent this long: a request on it is told ('timeout' on the
   * ClientRequest; the caller fails it with 504), an idle one is closed.
   */
  readonly timeoutMs: number;
  /** Idle connections kept at most (more are closed when freed); http.Agent's default. */
  readonly maxIdle?: number;
  /** https: what tls.connect gets besides host, port and SNI (a private CA, in tests). */
  readonly tls?: Omit<TlsOptions, "host" | "port" | "servername">;
  /** The clock, ms (Date.now); tests may move it. */
  readonly now?: () => number;
}

export interface UpstreamPool {
  /** What node:http takes as `agent` (the Agent-like part of this object, typed as Node wants it). */
  readonly agent: HttpAgent;
  /** Connections open now, idle or carrying a request. */
  readonly openConnections: number;
  /** Connections idle now, waiting to be reused. */
  readonly idleConnections: number;
  /** Closes every connection, idle or not (shutdown). */
  destroy(): void;
}

/**
 * RFC 9112 §9.5: a server times out an inactive connection when it chooses
 * and may close it at any time. Many say when, in the `timeout` (seconds) of
 * the HTTP/1.0-era Keep-Alive field (RFC 2068 §19.7.1.1, not in RFC 9112). A
 * connection is reused only up to a second before that, as http.Agent does,
 * so that a request and the server's close do not cross on the wire.
 */
const KEEP_ALIVE_MARGIN_MS = 1_000;
const KEEP_ALIVE = "keep-alive";
const KEEP_ALIVE_TIMEOUT = /^\s*timeout\s*=\s*(\d+)/i;

/** What the pool knows of one connection. */
interface Connection {
  /** The request it carries, or undefined while idle. */
  request: ClientRequest | undefined;
  /** Reused only before this time (ms); Infinity when the upstream gave no hint. */
  reusableUntil: number;
}

export function createUpstreamPool(origin: UpstreamOrigin, options: UpstreamPoolOptions): UpstreamPool {
  const { timeoutMs } = options;
  const maxIdle = options.maxIdle ?? 256;
  const now = options.now ?? Date.now;
  const connections = new Map<Socket, Connection>();
  /** Newest last: a request takes the connection freed last (its TCP window and the upstream's caches are warm). */
  const idle: Socket[] = [];
  // SNI names a host, never an address (RFC 6066 §3); the certificate is checked against the hostname either way.
  const servername = isIP(origin.hostname) === 0 ? origin.hostname : undefined;

  const forget = (socket: Socket) => {
    if (!connections.delete(socket)) return;
    const at = idle.lastIndexOf(socket);
    if (at !== -1) idle.splice(at, 1);
  };

  const open = (): Socket => {
    const common = { host: origin.hostname, port: origin.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 1_000 };
    const socket: Socket = origin.secure ? connectTls({ ...options.tls, ...common, ...(servername === undefined ? {} : { servername }), ALPNProtocols: ["http/1.1"] }) : connectTcp(common);
    // Armed once: the timer restarts with every byte either way, so it measures silence, idle or not.
    socket.setTimeout(timeoutMs);
    const onTimeout = () => {
      const request = connections.get(socket)?.request;
      if (request === undefined) socket.destroy();
      // As with http.Agent, the request is told and its owner ends it; one nobody listens for is ended here.
      else if (!request.emit("timeout")) request.destroy(new Error(`the upstream was silent for ${timeoutMs} ms`));
    };
    const onFree = () => release(socket);
    const onClose = () => forget(socket);
    // An idle connection's error (the upstream reset it) has no request to go to; 'close' follows.
    // A request's errors reach it through node:http's own listener.
    const onError = () => {};
    // An upgraded connection (101) leaves HTTP and the pool: it is its new owner's, timer and all.
    const onRemove = () => {
      forget(socket);
      socket.setTimeout(0);
      socket.off("timeout", onTimeout).off("free", onFree).off("close", onClose).off("error", onError).off("agentRemove", onRemove);
    };
    socket.on("timeout", onTimeout).on("free", onFree).on("close", onClose).on("error", onError).on("agentRemove", onRemove);
    return socket;
  };

  /** The ClientRequest's response has ended and the connection may carry another (node:http's 'free'). */
  const release = (socket: Socket) => {
    const connection = connections.get(socket);
    const request = connection?.request as (ClientRequest & { readonly res: IncomingMessage | null }) | undefined;
    // node:http keeps the response on `res` (http.Agent reads the hint there too; the field is not in Node's types).
    const response = request?.res ?? undefined;
    const hintMs = response === undefined ? undefined : keepAliveHintMs(response.rawHeaders);
    const reusable = connection !== undefined && response !== undefined && request?.shouldKeepAlive === true && !socket.destroyed && socket.writable && idle.length < maxIdle;
    if (!reusable || (hintMs !== undefined && hintMs <= KEEP_ALIVE_MARGIN_MS)) {
      forget(socket);
      socket.destroy();
      return;
    }
    connection.request = undefined;
    connection.reusableUntil = hintMs === undefined ? Infinity : now() + hintMs - KEEP_ALIVE_MARGIN_MS;
    // An idle connection does not keep the process alive.
    socket.unref();
    idle.push(socket);
  };

  const agent = {
    // What ClientRequest reads of its agent: keep-alive (it then sends `Connection: keep-alive`), the protocol it
    // checks the request's against, the default port; no `options.timeout`, so node:http arms no timer of its own.
    keepAlive: true,
    protocol: origin.secure ? "https:" : "http:",
    defaultPort: origin.secure ? 443 : 80,
    addRequest(request: ClientRequest): void {
      let socket: Socket | undefined;
      while ((socket = idle.pop()) !== undefined) {
        const connection = connections.get(socket)!;
        if (!socket.destroyed && socket.writable && (connection.reusableUntil === Infinity || now() < connection.reusableUntil)) {
          connection.request = request;
          request.reusedSocket = true;
          socket.ref();
          request.onSocket(socket);
          return;
        }
        forget(socket);
        socket.destroy();
      }
      socket = open();
      connections.set(socket, { request, reusableUntil: Infinity });
      request.onSocket(socket);
    },
  };

  return {
    agent: agent as unknown as HttpAgent,
    get openConnections() {
      return connections.size;
    },
    get idleConnections() {
      return idle.length;
    },
    destroy() {
      for (const socket of [...connections.keys()]) socket.destroy();
      connections.clear();
      idle.length = 0;
    },
  };
}

/** The Keep-Alive `timeout` a response announced (see KEEP_ALIVE_MARGIN_MS; the field is in Node's raw name/value list), in ms. */
export function keepAliveHintMs(rawHeaders: readonly string[]): number | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== KEEP_ALIVE.length || name.toLowerCase() !== KEEP_ALIVE) continue;
    const seconds = KEEP_ALIVE_TIMEOUT.exec(rawHeaders[i + 1]!)?.[1];
    if (seconds !== undefined) return Number(seconds) * 1000;
  }
  return undefined;
}
