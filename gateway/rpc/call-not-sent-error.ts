import { Code, ConnectError } from "@connectrpc/connect";

const kNotSent = Symbol("gatehouse.callNotSent");

/**
 * A call that provably never reached a server: the connection was never
 * established, or the HTTP/2 stream was refused (RFC 9113 §8.7: REFUSED_STREAM,
 * and the streams above a GOAWAY's last stream id, §6.8, "have not been
 * processed") before the server could act on it. Sending it to another
 * replica cannot make it happen twice, so the failover transport
 * (failover-transport.ts) retries even calls that change something.
 *
 * It is an Unavailable ConnectError, so a caller that does not know the type
 * sees what connect-es would have thrown; the transport's Node error is its
 * `cause`. The transports (connect-unary-transport.ts, connect-es-transport.ts)
 * are the only ones that decide it, from what they saw on the wire.
 */
export class CallNotSentError extends ConnectError {
  readonly [kNotSent] = true;

  constructor(message: string, cause?: unknown) {
    super(message, Code.Unavailable, undefined, undefined, cause);
  }

  /**
   * ConnectError's own `instanceof` accepts any ConnectError (it checks the
   * shape, across copies of the library), which would make every error look
   * unsent; this one checks for the mark only a CallNotSentError carries.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as { [kNotSent]?: boolean })[kNotSent] === true;
  }
}
