import { Code, type Interceptor } from "@connectrpc/connect";
import type { ConcurrencyLimiter } from "../../../startup/concurrency-limiter.js";
import type { OverloadReporter } from "../../../startup/overload-reporter.js";
import { BatchService } from "../../../gen/gatehouse/v1/batch_service_pb.js";
import { OAuthError } from "../oauth/errors.js";
import type { AuthzOverloadKind } from "../metrics.js";
import { connectErrorOf } from "./errors.js";
import { CONNECT_TIMEOUT_HEADER } from "../../../contract/metadata.js";

export interface CallBudget {
  /** Given up this long (at most a tenth of the deadline) before the caller's propagated deadline, so the caller still gets the answer in time. */
  marginMs: number;
  /** The budget of a call that carries no deadline. */
  defaultMs: number;
}

/** RFC 9110 §10.2.3: seconds. One second is the shortest a client can be told, and a shed clears in less. */
const RETRY_AFTER_SECONDS = 1;

/**
 * The authz service's deliberate answer beyond saturation, on both RPC paths
 * (the fast path and connect-node's adapter run the same interceptors):
 *
 * - a unary call waits for one of `maxConcurrent` slots, in a queue of at most
 *   `maxQueue`, for no longer than its budget or the queue's wait; otherwise
 *   it is shed: Unavailable with an OAuthErrorDetail temporarily_unavailable
 *   and retry-after (the gateway answers 503 with Retry-After);
 * - every call has a budget: the deadline its caller propagated
 *   (connect-timeout-ms, grpc-timeout) less a margin (a tenth of it, at most
 *   `marginMs`), or a default. When it runs out the call is answered
 *   DeadlineExceeded with the OAuthErrorDetail temporarily_unavailable and a
 *   retry-after (the gateway's 503) before the caller's
 *   own deadline fires, so the caller gets a real answer and this service
 *   says why (counted and logged as kind deadline). The handler's slot is
 *   held until it really ends: a call given up on still occupies the core.
 *
 * Streams (WatchRevocations) live as long as their subscriber and take no slot;
 * nor does a CallBatch, whose calls each take one.
 * Outermost: a shed call costs no per-call log line (the reporter's line is rate-limited).
 */
export function createOverloadInterceptor(options: {
  limiter: ConcurrencyLimiter;
  budget: CallBudget;
  reporter: OverloadReporter<AuthzOverloadKind>;
}): Interceptor {
  const { limiter, budget, reporter } = options;
  return (next) => async (request) => {
    // A batch takes no slot: each of its calls takes its own (transport/call-batch.ts), and a batch that
    // held one while its calls waited for theirs could hold them all.
    if (request.stream || request.method === BatchService.method.callBatch) return next(request);
    const started = performance.now();
    const propagated = propagatedTimeoutMs(request.header);
    // A tenth of a short deadline, at most marginMs of a long one: a 300 ms caller still gets 270 ms of work.
    const budgetMs = propagated === undefined ? budget.defaultMs : propagated - Math.min(budget.marginMs, propagated / 10);
    const procedure = request.method.name;
    if (budgetMs <= 0) {
      reporter.report("deadline", { procedure });
      throw outOfTime();
    }
    let release = limiter.acquire(budgetMs);
    if (release instanceof Promise) release = await release;
    if (release === undefined) {
      reporter.report("shed", { procedure });
      throw connectErrorOf(new OAuthError("temporarily_unavailable", "the authorization server is overloaded; retry later", { retryAfter: RETRY_AFTER_SECONDS }));
    }
    const free = release;
    const running = next(request);
    void running.then(free, free);
    const left = budgetMs - (performance.now() - started);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        running,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            reporter.report("deadline", { procedure, budgetMs });
            reject(outOfTime());
          }, Math.max(0, left));
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** DeadlineExceeded, as the protocols name it, with the detail that makes it a 503 temporarily_unavailable at the gateway. */
function outOfTime() {
  return connectErrorOf(
    new OAuthError("temporarily_unavailable", "the authorization server ran out of time for this request; retry later", { retryAfter: RETRY_AFTER_SECONDS }),
    Code.DeadlineExceeded,
  );
}

/** gRPC's timeout units (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md), in milliseconds. */
const GRPC_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/** The caller's deadline as it travelled: Connect's connect-timeout-ms, or gRPC's grpc-timeout. */
export function propagatedTimeoutMs(header: Headers): number | undefined {
  const connect = header.get(CONNECT_TIMEOUT_HEADER);
  if (connect !== null && /^\d{1,10}$/.test(connect)) return Number(connect);
  const grpc = header.get("grpc-timeout");
  const match = grpc === null ? null : /^(\d{1,8})([HMSmun])$/.exec(grpc);
  return match === null ? undefined : Number(match[1]) * GRPC_UNIT_MS[match[2]!]!;
}
