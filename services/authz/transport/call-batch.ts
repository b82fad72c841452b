import { create, type DescMessage, type DescMethod, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { anyPack, AnySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ContextValues, type HandlerContext, type Interceptor, type MethodImplSpec, type ServiceImpl } from "@connectrpc/connect";
import { BATCHED_BY_REQUEST_CASE, MAX_BATCH_CALLS, type BatchedMethod } from "../../../contract/batched-calls.js";
import { metadataOfRecord, recordOfMetadata } from "../../../contract/metadata-headers.js";
import { CONNECT_TIMEOUT_HEADER, SERVICE_CREDENTIAL_HEADER } from "../../../contract/metadata.js";
import { BatchService, type BatchedCall, type BatchedResultSchema } from "../../../gen/gatehouse/v1/batch_service_pb.js";
import { StatusSchema } from "../../../gen/google/rpc/status_pb.js";
import { OAuthError } from "../oauth/errors.js";
import { isServiceCredential, kPeerAddress, kServiceCredentialChecked, type CallerCheck } from "../rpc/caller.js";
import type { ServiceRegistration } from "./connect-unary.js";
import { invokeUnary } from "./invoke-unary.js";

export interface CallBatchOptions {
  /** The services whose calls a batch may carry: AuthorizationService's unary methods are taken from them. */
  services: readonly ServiceRegistration[];
  /** The server's interceptors, which every call of a batch runs through as it would alone. */
  interceptors: Interceptor[];
  /** A call's context values, from the address the batch came from. */
  contextValues: (remoteAddress: string) => ContextValues;
  /** The gateway's credentials in force: a batch's is checked once, for all its calls. */
  callerCheck: CallerCheck;
}

type Result = MessageInitShape<typeof BatchedResultSchema>;

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
  // Once, not per call: what each request case of a batch is served by.
  const specs = new Map<DescMethod, MethodImplSpec & { kind: "unary" }>();
  for (const { spec: service } of options.services) {
    for (const spec of Object.values(service.methods)) if (spec.kind === "unary") specs.set(spec.method, spec);
  }
  const served = new Map<string, Served>();
  for (const [requestCase, batched] of BATCHED_BY_REQUEST_CASE) {
    const spec = specs.get(batched.method);
    if (spec !== undefined) served.set(requestCase, { batched, spec, path: `/${batched.method.parent.typeName}/${batched.method.name}` });
  }
  return {
    async callBatch(request, context) {
      if (request.calls.length > MAX_BATCH_CALLS) throw new OAuthError("invalid_request", `a batch holds at most ${MAX_BATCH_CALLS} calls`);
      const credential = context.requestHeader.get(SERVICE_CREDENTIAL_HEADER);
      const batch: Batch = {
        credential,
        // Once per batch, not per call: a SHA-256 and a constant-time comparison per credential (rpc/caller.ts).
        fromGateway: isServiceCredential(credential, options.callerCheck),
        peer: context.values.get(kPeerAddress),
        // The URL a call alone would have had: the batch's, with the call's procedure for its path.
        origin: originOf(context.url),
        signal: context.signal,
      };
      const results = await Promise.all(request.calls.map((call) => serve(call, batch)));
      return { results };
    },
  };

  async function serve(call: BatchedCall, batch: Batch): Promise<Result> {
    const servedBy = call.request.case === undefined ? undefined : served.get(call.request.case);
    if (servedBy === undefined) return failure(new ConnectError("the call names no request this server serves in a batch", Code.Unimplemented));
    const { batched, spec, path } = servedBy;
    const deadline = call.timeoutMs === 0 ? undefined : Date.now() + call.timeoutMs;
    let requestHeader: Headers;
    try {
      requestHeader = requestHeaderOf(call, batch);
    } catch (error) {
      return failure(new ConnectError(`the call's metadata is malformed: ${error instanceof Error ? error.message : String(error)}`, Code.InvalidArgument));
    }
    const context: HandlerContext = {
      method: spec.method,
      service: spec.method.parent,
      requestMethod: "POST",
      protocolName: "connect",
      requestHeader,
      responseHeader: new Headers(),
      responseTrailer: new Headers(),
      values: options.contextValues(batch.peer).set(kServiceCredentialChecked, batch.fromGateway),
      url: batch.origin + path,
      timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
      signal: batch.signal,
    };
    try {
      const output = await invokeUnary(spec, context, call.request.value as MessageShape<DescMessage>, options.interceptors, deadline, undefined);
      return {
        header: recordOfMetadata(context.responseHeader),
        trailer: recordOfMetadata(context.responseTrailer),
        outcome: { case: batched.responseCase, value: output } as Result["outcome"],
      };
    } catch (error) {
      return failure(ConnectError.from(error, Code.Internal));
    }
  }
}

/** A request case of a batch, and what serves it. */
interface Served {
  readonly batched: BatchedMethod;
  readonly spec: MethodImplSpec & { kind: "unary" };
  /** Its procedure's path, as the call's URL would have it alone. */
  readonly path: string;
}

interface Batch {
  readonly credential: string | null;
  /** Whether `credential` is one of the gateway's, checked once for the batch's calls. */
  readonly fromGateway: boolean;
  readonly peer: string;
  readonly origin: string;
  readonly signal: AbortSignal;
}

/**
 * The call's metadata as its request header: its own fields, with the
 * batch's service credential in place of any it names (the caller is the
 * batch's), and its deadline as connect-timeout-ms, where the interceptors
 * read a caller's deadline (interceptors/overload.ts). Malformed metadata
 * throws (TypeError), as `new Headers` would.
 */
function requestHeaderOf(call: BatchedCall, batch: Batch): Headers {
  // Without a prototype: a field named "__proto__" is a field like any other.
  const record: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of Object.keys(call.header)) {
    const lower = name.toLowerCase();
    if (lower !== SERVICE_CREDENTIAL_HEADER && lower !== CONNECT_TIMEOUT_HEADER) record[name] = call.header[name]!;
  }
  if (batch.credential !== null) record[SERVICE_CREDENTIAL_HEADER] = batch.credential;
  if (call.timeoutMs !== 0) record[CONNECT_TIMEOUT_HEADER] = String(call.timeoutMs);
  return metadataOfRecord(record);
}

/** A failed call's result: gRPC's Status (the Connect code's number, the message, the details as Any) and the error's metadata. */
function failure(error: ConnectError): Result {
  const details = error.details.map((detail) =>
    "desc" in detail
      ? anyPack(detail.desc, create(detail.desc, detail.value))
      : create(AnySchema, { typeUrl: `${TYPE_URL_PREFIX}${detail.type}`, value: detail.value }),
  );
  return {
    header: recordOfMetadata(error.metadata),
    outcome: { case: "error", value: create(StatusSchema, { code: error.code, message: error.rawMessage, details }) },
  };
}

const TYPE_URL_PREFIX = "type.googleapis.com/";

/** "http://host:port" of a call's URL. */
function originOf(url: string): string {
  const path = url.indexOf("/", url.indexOf("//") + 2);
  return path === -1 ? url : url.slice(0, path);
}
