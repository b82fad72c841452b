import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type UnaryRequest, type StreamRequest } from "@connectrpc/connect";
import type { Logger } from "pino";
import { OAuthErrorDetailSchema } from "../../../gen/gatehouse/v1/errors_pb.js";
import { OAuthError, type OAuthErrorCode } from "../oauth/errors.js";
import { callLogIds } from "./call-log-ids.js";
import { tracingOff, type Tracing } from "../../../startup/tracing.js";

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
  unauthenticated_caller: Code.Unauthenticated,
  invalid_credentials: Code.Unauthenticated,
  too_many_attempts: Code.ResourceExhausted,
};

/**
 * The only place that builds a ConnectError from a domain error: the OAuth
 * code and description travel in an OAuthErrorDetail, so the gateway can
 * rebuild the RFC's response. Anything that is not an OAuthError becomes
 * server_error; its cause is logged, never sent.
 */
export function createErrorInterceptor(options: { log: Logger; tracing?: Tracing }): Interceptor {
  const tracing = options.tracing ?? tracingOff;
  const toConnectError = (error: unknown, request: UnaryRequest | StreamRequest): ConnectError => {
    const procedure = request.method.name;
    if (error instanceof OAuthError) {
      if (error.code === "temporarily_unavailable" || error.code === "server_error") {
        options.log.warn({ procedure, ...callLogIds(tracing, request), err: error.cause ?? error }, "call failed: %s", error.code);
      }
      return fromOAuthError(error);
    }
    if (error instanceof ConnectError) return error; // the protocol's own: malformed message, deadline, cancel
    options.log.error({ procedure, ...callLogIds(tracing, request), err: error }, "unexpected error");
    return fromOAuthError(new OAuthError("server_error", "the authorization server failed to handle the request"));
  };

  return (next) => async (request) => {
    try {
      const response = await next(request);
      if (!response.stream) return response;
      const messages = response.message;
      return {
        ...response,
        message: (async function* () {
          try {
            yield* messages;
          } catch (error) {
            throw toConnectError(error, request);
          }
        })(),
      };
    } catch (error) {
      throw toConnectError(error, request);
    }
  };
}

function fromOAuthError(error: OAuthError): ConnectError {
  const metadata = error.retryAfter === undefined ? undefined : { "retry-after": String(error.retryAfter) };
  return new ConnectError(error.description, STATUS[error.code], metadata, [
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
