import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * Answers a unary call when its client's deadline passes instead of when its
 * handler returns: connect-node aborts the handler's signal at the deadline
 * but sends nothing until the handler ends, and gatehouse's handlers do not
 * all watch their signal (a delayed failed login sleeps). With it, a call past
 * the deadline its client sent (connect-timeout-ms, grpc-timeout) is answered
 * deadline_exceeded on time on every protocol, as the fast path
 * (transport/connect-unary.ts) answers it.
 *
 * Only the deadline: when the server drains, its in-flight calls finish (the
 * signal aborts then too, and is ignored here), and a client that went away
 * needs no answer. Streams watch their signal already.
 */
export function createDeadlineInterceptor(): Interceptor {
  return (next) => (request) => {
    if (request.stream) return next(request);
    const { signal } = request;
    const deadlineError = () => {
      const error = ConnectError.from(signal.reason);
      return error.code === Code.DeadlineExceeded ? error : undefined;
    };
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const error = deadlineError();
        if (error !== undefined) reject(error);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      next(request).then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  };
}
