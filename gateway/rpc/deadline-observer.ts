import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { OAuthErrorDetailSchema } from "../../gen/gatehouse/v1/errors_pb.js";

/**
 * Tells `onDeadline` of every unary RPC that outlived its deadline
 * (gateway.authz.timeoutMs): the one kind of failed call the authz service
 * cannot report itself. A DeadlineExceeded that carries an OAuthErrorDetail
 * is the authz service giving up inside its own budget, which it counted and
 * logged itself: not counted again here. Everything passes through untouched.
 */
export function observeDeadlines(inner: Transport, onDeadline: (procedure: string) => void): Transport {
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      try {
        return await inner.unary(method, signal, timeoutMs, header, input, contextValues);
      } catch (error) {
        if (error instanceof ConnectError && error.code === Code.DeadlineExceeded && error.findDetails(OAuthErrorDetailSchema).length === 0) onDeadline(method.name);
        throw error;
      }
    },
    stream: (method, signal, timeoutMs, header, input, contextValues) => inner.stream(method, signal, timeoutMs, header, input, contextValues),
  };
}
