import { type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CallNotSentError } from "./call-not-sent-error.js";

export interface ConnectEsTransportOptions {
  /** The server's base URL (http://host:port), HTTP/2 with prior knowledge. */
  baseUrl: string;
  /** Deadline of a call that names none. */
  defaultTimeoutMs: number;
  /** Headers every call carries (the gateway's service credential); a call's own win. */
  header: Readonly<Record<string, string>>;
  /** HTTP/2 PING interval that notices a dead connection before a call needs it. */
  pingIntervalMs: number;
}

/**
 * connect-es's own Connect transport (binary, HTTP/2), for `authz.transport:
 * connect`: what the lean transport (connect-unary-transport.ts) does by hand,
 * done by the library, for every call. It is the reference the lean one is
 * tested against (test/integration/rpc-protocol-suite.ts), and the fallback
 * should the lean one ever misbehave.
 *
 * A call whose connection could not be established (the Node error code
 * ECONNREFUSED in its cause chain: no connection, so no byte of the request)
 * becomes a CallNotSentError for the failover. connect-es reports a refused
 * HTTP/2 stream only in a message, so with this transport such a call is
 * retried elsewhere only when it is idempotent.
 */
export function createConnectEsTransport(options: ConnectEsTransportOptions): Transport {
  const withHeader: Interceptor = (next) => (request) => {
    for (const [name, value] of Object.entries(options.header)) {
      if (!request.header.has(name)) request.header.set(name, value);
    }
    return next(request);
  };
  const inner = createConnectTransport({
    baseUrl: options.baseUrl,
    httpVersion: "2",
    useBinaryFormat: true,
    defaultTimeoutMs: options.defaultTimeoutMs,
    interceptors: [withHeader],
    pingIntervalMs: options.pingIntervalMs,
    pingTimeoutMs: 2_000,
  });
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      try {
        return await inner.unary(method, signal, timeoutMs, header, input, contextValues);
      } catch (error) {
        throw connectionRefused(error) ? new CallNotSentError(`the connection to ${options.baseUrl} was refused`, error) : error;
      }
    },
    stream: (method, signal, timeoutMs, header, input, contextValues) => inner.stream(method, signal, timeoutMs, header, input, contextValues),
  };
}

/** True when a Node system error in the cause chain says the TCP connection was refused. */
function connectionRefused(error: unknown): boolean {
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 10; cause = cause.cause, depth++) {
    if ((cause as NodeJS.ErrnoException).code === "ECONNREFUSED") return true;
  }
  return false;
}
