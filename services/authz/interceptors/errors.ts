import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type UnaryRequest, type StreamRequest } from "@connectrpc/connect";
import type { Logger } from "pino";
import { OAuthErrorDetailSchema } from "../../../gen/gatehouse/v1/errors_pb.js";
import { OAuthError, type OAuthErrorCode } from "../oauth/errors.js";
import { callLogIds } from "./call-log-ids.js";
import { tracingOff, type Tracing } from "../../../startup/tracing.js";
import type { OverloadReporter } from "../../../startup/overload-reporter.js";
import type { AuthzOverloadKind } from "../metrics.js";

/** The one mapping from OAuth error codes to RPC status codes. */
const STATUS: Readonly<Record<OAuthErrorCode, Code>> = {
  invalid_request: Code.InvalidArgument,
  invalid_client: Code.Unauthenticated,
  invalid_grant: Code.InvalidArgument,
  unauthorized_client: Code.PermissionDenied,
  unsupported_grant_type: Code.InvalidArgument,
  unsupported_response_type: Code.InvalidArgument,
  invalid_scope: Code.InvalidArgument,
  access_denied: Code.PermissionDenied,
  server_error: Code.Internal,
  temporarily_unavailable: Code.Unavailable,
  unsupported_token_type: Code.InvalidArgument,
  invalid_token: Code.Unauthenticated,
  insufficient_scope: Code.PermissionDenied,
  interaction_required: Code.FailedPrecondition,
  login_required: Code.FailedPrecondition,
  consent_required: Code.FailedPrecondition,
  request_not_supported: Code.InvalidArgument,
  request_uri_not_supported: Code.InvalidArgument,
  invalid_target: Code.InvalidArgument,
  invalid_redirect_uri: Code.InvalidArgument,
  invalid_client_metadata: Code.InvalidArgument,
  unauthenticated_caller: Code.Unauthenticated,
  invalid_credentials: Code.Unauthenticated,
  too_many_attempts: Code.ResourceExhausted,
  account_disabled: Code.PermissionDenied,
  unknown_tenant: Code.NotFound,
  registration_not_supported: Code.NotFound,
};

/**
 * The only place that builds a ConnectError from a domain error: the OAuth
 * code and description travel in an OAuthErrorDetail, so the gateway can
 * rebuild the RFC's response. Anything that is not an OAuthError becomes
 * server_error; its cause is logged, never sent.
 */
export function createErrorInterceptor(options: { log: Logger; reporter?: OverloadReporter<AuthzOverloadKind> | undefined; tracing?: Tracing }): Interceptor {
  const tracing = options.tracing ?? tracingOff;
  const toConnectError = (error: unknown, request: UnaryRequest | StreamRequest): ConnectError => {
    const procedure = request.method.name;
    if (error instanceof OAuthError) {
      if (options.reporter !== undefined && isRedisTimeout(error)) {
        // Under overload these come in bursts: counted, and logged at most once a second.
        options.reporter.report("redis_timeout", { procedure });
      } else if (error.code === "temporarily_unavailable" || error.code === "server_error") {
        options.log.warn({ procedure, ...callLogIds(tracing, request), err: error.cause ?? error }, "call failed: %s", error.code);
      }
      return connectErrorOf(error);
    }
    if (error instanceof ConnectError) return error; // the protocol's own: malformed message, deadline, cancel
    options.log.error({ procedure, ...callLogIds(tracing, request), err: error }, "unexpected error");
    return connectErrorOf(new OAuthError("server_error", "the authorization server failed to handle the request"));
  };

  return (next) => async (request) => {
    try {
      const response = await next(request);
      if (!response.stream) return response;
      const messages = response.message;
      return Object.assign({}, response, {
        message: (async function* () {
          try {
            yield* messages;
          } catch (error) {
            throw toConnectError(error, request);
          }
        })(),
      });
    } catch (error) {
      throw toConnectError(error, request);
    }
  };
}

/** ioredis rejects a command that outlives its commandTimeout with exactly this message (store/redis-client.ts). */
function isRedisTimeout(error: unknown): boolean {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    if (cause.message === "Command timed out") return true;
  }
  return false;
}

/**
 * An OAuthError as the RPC carries it: status from the one mapping above
 * (or `status`: a call whose budget ran out is DeadlineExceeded, as gRPC and
 * Connect name it), code and description in an OAuthErrorDetail.
 */
export function connectErrorOf(error: OAuthError, status: Code = STATUS[error.code]): ConnectError {
  const metadata = error.retryAfter === undefined ? undefined : { "retry-after": String(error.retryAfter) };
  return new ConnectError(error.description, status, metadata, [
    {
      desc: OAuthErrorDetailSchema,
      value: create(OAuthErrorDetailSchema, {
        error: error.code,
        errorDescription: error.description,
        redirectUrl: error.redirectUrl ?? "",
        retryAfter: BigInt(error.retryAfter ?? 0),
      }),
    },
  ]);
}
