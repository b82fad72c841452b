import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { anyPack, AnySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ContextValues, type HandlerContext, type Interceptor, type MethodImplSpec, type ServiceImpl } from "@connectrpc/connect";
import { fieldsOfMetadata, metadataOfFields } from "../../../contract/metadata-headers.js";
import { SERVICE_CREDENTIAL_HEADER } from "../../../contract/metadata.js";
import { AuthorizationService } from "../../../gen/gatehouse/v1/authorization_service_pb.js";
import { BatchedResultSchema, BatchService, type BatchedCall, type BatchedResult } from "../../../gen/gatehouse/v1/batch_service_pb.js";
import { StatusSchema } from "../../../gen/google/rpc/status_pb.js";
import { OAuthError } from "../oauth/errors.js";
import { kPeerAddress } from "../rpc/caller.js";
import type { ServiceRegistration } from "./connect-unary.js";
import { invokeUnary } from "./invoke-unary.js";

/** The most calls one CallBatch may carry (proto/gatehouse/v1/batch_service.proto); the gateway sends at most this many. */
export const MAX_BATCH_CALLS = 64;

export interface CallBatchOptions {
  /** The services whose calls a batch may carry: only AuthorizationService's unary methods are taken from them. */
  services: readonly ServiceRegistration[];
  /** The server's interceptors, which every call of a batch runs through as it would alone. */
  interceptors: Interceptor[];
  /** A call's context values, from the address the batch came from. */
  contextValues: (remoteAddress: string) => ContextValues;
}

/**
 * BatchService: the calls of a batch, each served as if it had come alone
 * (proto/gatehouse/v1/batch_service.proto). Each runs through the server's
 * interceptors with its own metadata and deadline, so it takes its own slot
 * of the concurrency limit and its own budget (interceptors/overload.ts lets
 * the batch itself through without one), is logged and traced as itself, and
 * gets its own answer or error. The caller is the batch's: its service
 * credential replaces whatever a call names, and its peer address is every
 * call's.
 */
export function createBatchService(options: CallBatchOptions): ServiceImpl<typeof BatchService> {
  const methods = new Map<string, MethodImplSpec & { kind: "unary" }>();
  for (const { spec: service } of options.services) {
    if (service.service.typeName !== AuthorizationService.typeName) continue;
    for (const spec of Object.values(service.methods)) if (spec.kind === "unary") methods.set(`/${service.service.typeName}/${spec.method.name}`, spec);
  }
  return {
    async callBatch(request, context) {
      if (request.calls.length > MAX_BATCH_CALLS) throw new OAuthError("invalid_request", `a batch holds at most ${MAX_BATCH_CALLS} calls`);
      const batch: Batch = {
        credential: context.requestHeader.get(SERVICE_CREDENTIAL_HEADER),
        peer: context.values.get(kPeerAddress),
        // The URL a call alone would have had: the batch's, with the call's procedure for its path.
        origin: originOf(context.url),
        signal: context.signal,
      };
      const results = await Promise.all(request.calls.map((call) => serve(call, batch)));
      return { results };
    },
  };

  async function serve(call: BatchedCall, batch: Batch): Promise<BatchedResult> {
    const spec = methods.get(call.procedure);
    if (spec === undefined) return failure(new ConnectError(`${call.procedure} is not served in a batch`, Code.Unimplemented));
    const deadline = call.timeoutMs === 0 ? undefined : Date.now() + call.timeoutMs;
    let context: HandlerContext;
    let input: MessageShape<DescMessage>;
    try {
      context = {
        method: spec.method,
        service: spec.method.parent,
        requestMethod: "POST",
        protocolName: "connect",
        requestHeader: requestHeaderOf(call, batch),
        responseHeader: new Headers(),
        responseTrailer: new Headers(),
        values: options.contextValues(batch.peer),
        url: batch.origin + call.procedure,
        timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
        signal: batch.signal,
      };
      input = fromBinary(spec.method.input, call.request);
    } catch (error) {
      return failure(new ConnectError(`cannot read the call to ${call.procedure}: ${error instanceof Error ? error.message : String(error)}`, Code.InvalidArgument));
    }
    try {
      const output = await invokeUnary(spec, context, input, options.interceptors, deadline, undefined);
      return create(BatchedResultSchema, {
        outcome: { case: "response", value: toBinary(spec.method.output, output) },
        header: fieldsOfMetadata(context.responseHeader),
        trailer: fieldsOfMetadata(context.responseTrailer),
      });
    } catch (error) {
      return failure(ConnectError.from(error, Code.Internal));
    }
  }
}

interface Batch {
  readonly credential: string | null;
  readonly peer: string;
  readonly origin: string;
  readonly signal: AbortSignal;
}

/**
 * The call's metadata as its request header: its own fields, with the
 * batch's service credential in place of any it names (the caller is the
 * batch's), and its deadline as connect-timeout-ms, where the interceptors
 * read a caller's deadline (interceptors/overload.ts).
 */
function requestHeaderOf(call: BatchedCall, batch: Batch): Headers {
  let fields = call.header;
  if (fields.some(({ name }) => name.toLowerCase() === SERVICE_CREDENTIAL_HEADER || name.toLowerCase() === TIMEOUT_HEADER)) {
    fields = fields.filter(({ name }) => name.toLowerCase() !== SERVICE_CREDENTIAL_HEADER && name.toLowerCase() !== TIMEOUT_HEADER);
  }
  const extra = [];
  if (batch.credential !== null) extra.push({ name: SERVICE_CREDENTIAL_HEADER, value: batch.credential });
  if (call.timeoutMs !== 0) extra.push({ name: TIMEOUT_HEADER, value: String(call.timeoutMs) });
  return metadataOfFields(extra.length === 0 ? fields : [...fields, ...extra]);
}

const TIMEOUT_HEADER = "connect-timeout-ms";

/** A failed call's result: gRPC's Status (the Connect code's number, the message, the details as Any) and the error's metadata. */
function failure(error: ConnectError): BatchedResult {
  const details = error.details.map((detail) =>
    "desc" in detail
      ? anyPack(detail.desc, create(detail.desc, detail.value))
      : create(AnySchema, { typeUrl: `${TYPE_URL_PREFIX}${detail.type}`, value: detail.value }),
  );
  return create(BatchedResultSchema, {
    outcome: { case: "error", value: create(StatusSchema, { code: error.code, message: error.rawMessage, details }) },
    header: fieldsOfMetadata(error.metadata),
  });
}

const TYPE_URL_PREFIX = "type.googleapis.com/";

/** "http://host:port" of a call's URL. */
function originOf(url: string): string {
  const path = url.indexOf("/", url.indexOf("//") + 2);
  return path === -1 ? url : url.slice(0, path);
}
