import { ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * Answers a unary call when its signal aborts (the client's deadline passed,
 * the client went away, the server drains) instead of when its handler
 * returns: connect-node aborts the handler's signal at the deadline but sends
 * nothing until the handler ends, and gatehouse's handlers do not all watch
 * their signal (a delayed failed login sleeps). With it, a call past the
 * deadline its client sent (connect-timeout-ms, grpc-timeout) is answered
 * deadline_exceeded on time on every protocol, as the fast path
 * (transport/connect-unary.ts) answers it. Streams watch their signal already.
 */
export function createDeadlineInterceptor(): Interceptor {
  return (next) => (request) => {
    if (request.stream) return next(request);
    const { signal } = request;
    if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(ConnectError.from(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      next(request).then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  };
}
