import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { CallNotSentError } from "./call-not-sent-error.js";

/**
 * Spreads calls over the endpoints in turn. A call goes to the next endpoint,
 * each endpoint at most once, when its replica is Unavailable and the call is
 * idempotent, or whatever the call when its transport says it was never sent
 * (a CallNotSentError: connection not established, HTTP/2 stream refused or
 * above a GOAWAY's last stream id): that is what a replica that is restarting
 * or gone looks like. Anything else, a failed write included, is the caller's
 * to see: a token request retried after the first replica had redeemed the
 * code would fail as a replay (and revoke the grant).
 *
 * Streams are not retried: each goes to the next endpoint in turn, and its
 * consumer (revocation-feed.ts) resubscribes.
 */
export function createFailoverTransport(transports: readonly Transport[], idempotent: (method: DescMethod) => boolean): Transport {
  if (transports.length === 1) return transports[0]!;
  let next = 0;
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const first = next++ % transports.length;
      let lastError: unknown;
      for (let i = 0; i < transports.length; i++) {
        try {
          return await transports[(first + i) % transports.length]!.unary(method, signal, timeoutMs, header, input, contextValues);
        } catch (error) {
          lastError = error;
          const retry = error instanceof CallNotSentError || (idempotent(method) && ConnectError.from(error).code === Code.Unavailable);
          if (!retry || signal?.aborted) throw error;
        }
      }
      throw lastError;
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      return transports[next++ % transports.length]!.stream(method, signal, timeoutMs, header, input, contextValues);
    },
  };
}
