import type { DescMessage, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { BATCHED_BY_METHOD, MAX_BATCH_CALLS, type BatchedMethod } from "../../contract/batched-calls.js";
import { isFieldRecord, isPlainMetadata, metadataOfRecord } from "../../contract/metadata-headers.js";
import { BatchService, type BatchedCallSchema, type BatchedResult } from "../../gen/gatehouse/v1/batch_service_pb.js";

export interface BatchingTransportOptions {
  /** Deadline of a call that names none (as connect-es: undefined takes it, zero or less is none). */
  defaultTimeoutMs: number;
  /** Told of every batchable call sent alone (1) and of every batch (its calls): the gateway's metrics. */
  onSend?: (calls: number) => void;
  /** How long calls go alone after a server did not know CallBatch (default a minute: a rolling upgrade is over by then). */
  retryBatchesAfterMs?: number;
}

/** What one CallBatch carries at most: MAX_BATCH_CALLS calls, and bytes well within the server's readMaxBytes (64 KiB), as estimated (estimatedBytes): a larger call goes alone. */
const MAX_BATCH_BYTES = 48 * 1024;
/** A field's share of the batch beside its text (tag, length, map entry). */
const FIELD_OVERHEAD_BYTES = 8;

/**
 * Sends the calls that come in one turn of the event loop together, as one
 * BatchService.CallBatch (proto/gatehouse/v1/batch_service.proto), and gives
 * each caller its own answer, as the transport below would have given it: the
 * same message, or a ConnectError with the same code, message, details and
 * metadata. A call that comes alone goes alone, through `inner` as it is, so
 * an idle gateway's calls are what they were; so do the calls the batch has
 * no place for (only AuthorizationService's unary calls, contract/batched-calls.ts)
 * and a call whose metadata is not a plain record.
 *
 * Why: on the gateway's hop each call was an HTTP/2 stream, and the frames,
 * headers, buffers and bookkeeping of a stream cost more CPU on both sides
 * than introspecting the token did (README, Speed). Under load the calls the
 * gateway makes in one turn of its event loop (every request that arrived in
 * one poll) share one stream instead, and are encoded and parsed in one pass
 * (a protobuf-es message encoding allocates its buffers anew each time: about
 * 3-5 µs for an IntrospectRequest alone). Nothing waits for a batch to fill: the
 * turn's calls go at its end (setImmediate), so no call waits longer than the
 * turn it came in.
 *
 * Each call keeps its own deadline (the batch's is the longest, and a call
 * whose deadline is earlier is given up on here when it passes) and its own
 * signal (a cancelled call is answered Canceled at once; the server still
 * serves it, as a call whose cancellation had not reached it yet). A batch
 * that fails as a whole fails each of its calls with that error, so a failover
 * above sees a call that was not sent (CallNotSentError) or an unavailable
 * replica as it would have. A server that does not know CallBatch (an older
 * authz service: Unimplemented) gets the calls alone, then and for a minute
 * (a rolling upgrade), after which a batch is tried again.
 */
export function createBatchingTransport(inner: Transport, options: BatchingTransportOptions): Transport {
  let waiting: PendingCall[] = [];
  /** Date.now() from which batches are sent again, after a server answered CallBatch with Unimplemented. */
  let unsupportedUntil = 0;

  const flush = () => {
    const calls = waiting;
    waiting = [];
    if (calls.length === 1) return sendAlone(calls[0]!);
    let batch: PendingCall[] = [];
    let bytes = 0;
    for (const call of calls) {
      if (batch.length === MAX_BATCH_CALLS || bytes + call.bytes > MAX_BATCH_BYTES) {
        sendBatch(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(call);
      bytes += call.bytes;
    }
    if (batch.length === 1) sendAlone(batch[0]!);
    else sendBatch(batch);
  };

  const sendAlone = (call: PendingCall) => {
    if (call.settled) return;
    options.onSend?.(1);
    const timeoutMs = call.deadline === undefined ? 0 : Math.max(1, call.deadline - Date.now());
    inner.unary(call.method, call.signal, timeoutMs, call.header, call.input, call.contextValues).then(
      (response) => settle(call, response, undefined),
      (error: unknown) => settle(call, undefined, error),
    );
  };

  const sendBatch = (calls: PendingCall[]) => {
    const live = calls.filter((call) => !call.settled);
    if (live.length < 2) return live.forEach(sendAlone);
    const now = Date.now();
    // The batch lasts as long as its longest call; one without a deadline makes it none (0).
    let longest = 0;
    for (const call of live) {
      if (call.deadline === undefined) {
        longest = Infinity;
        break;
      }
      longest = Math.max(longest, call.deadline - now);
    }
    const batchTimeoutMs = longest === Infinity ? 0 : Math.max(1, Math.ceil(longest));
    const wire = live.map(
      (call): MessageInitShape<typeof BatchedCallSchema> => ({
        header: call.fields,
        timeoutMs: call.deadline === undefined ? 0 : Math.max(1, Math.ceil(call.deadline - now)),
        request: { case: call.batched.requestCase, value: call.input } as MessageInitShape<typeof BatchedCallSchema>["request"],
      }),
    );
    // A call whose deadline comes before the batch's is given up on when it passes, as it would be alone.
    for (const call of live) {
      if (call.deadline !== undefined && (batchTimeoutMs === 0 || call.deadline < now + batchTimeoutMs - 1)) {
        call.timer = setTimeout(() => settle(call, undefined, new ConnectError("the operation timed out", Code.DeadlineExceeded)), Math.max(0, call.deadline - now));
      }
    }
    options.onSend?.(live.length);
    inner.unary(BatchService.method.callBatch, undefined, batchTimeoutMs, {}, { calls: wire }).then(
      ({ message }) => {
        if (message.results.length !== live.length) {
          const error = new ConnectError(`the batch of ${live.length} calls was answered with ${message.results.length} results`, Code.Internal);
          return live.forEach((call) => settle(call, undefined, error));
        }
        live.forEach((call, i) => answer(call, message.results[i]!));
      },
      (error: unknown) => {
        if (error instanceof ConnectError && error.code === Code.Unimplemented) {
          // No call of the batch was served: each goes alone, and the next calls too for a while.
          unsupportedUntil = Date.now() + (options.retryBatchesAfterMs ?? 60_000);
          for (const call of live) {
            clearTimeout(call.timer);
            sendAlone(call);
          }
          return;
        }
        live.forEach((call) => settle(call, undefined, error));
      },
    );
  };

  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: Parameters<Transport["unary"]>[4],
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const batched = unsupportedUntil === 0 || Date.now() >= unsupportedUntil ? BATCHED_BY_METHOD.get(method as unknown as DescMethodUnary) : undefined;
      const fields = batched === undefined ? undefined : recordOfHeader(header);
      if (batched === undefined || fields === undefined) return inner.unary(method, signal, timeoutMs, header, input as never, contextValues);
      if (signal?.aborted) return Promise.reject(new ConnectError("the operation was aborted", Code.Canceled));
      const bytes = estimatedBytes(fields, 0) + estimatedBytes(input, 0);
      if (bytes > MAX_BATCH_BYTES) return inner.unary(method, signal, timeoutMs, header, input as never, contextValues);
      // As connect-es: undefined takes the default, zero or less means none.
      const timeout = timeoutMs === undefined ? options.defaultTimeoutMs : timeoutMs <= 0 ? undefined : timeoutMs;
      return new Promise<UnaryResponse<I, O>>((resolve, reject) => {
        const call: PendingCall = {
          method: method as unknown as DescMethodUnary,
          batched,
          signal,
          deadline: timeout === undefined ? undefined : Date.now() + timeout,
          header,
          fields,
          input,
          contextValues,
          bytes,
          resolve: resolve as PendingCall["resolve"],
          reject,
          settled: false,
          timer: undefined,
          onAbort: undefined,
        };
        if (signal !== undefined) {
          call.onAbort = () => settle(call, undefined, new ConnectError("the operation was aborted", Code.Canceled));
          signal.addEventListener("abort", call.onAbort, { once: true });
        }
        if (waiting.push(call) === 1) setImmediate(flush);
      });
    },
    stream: (method, signal, timeoutMs, header, input, contextValues) => inner.stream(method, signal, timeoutMs, header, input, contextValues),
  };
}

/** A call waiting for its turn's batch, then for its answer. */
interface PendingCall {
  readonly method: DescMethodUnary;
  readonly batched: BatchedMethod;
  readonly signal: AbortSignal | undefined;
  /** Date.now() when it is given up on; undefined: never. */
  readonly deadline: number | undefined;
  /** As the caller gave them: a call that goes alone is sent as it came. */
  readonly header: ConstructorParameters<typeof Headers>[0];
  readonly fields: Record<string, string>;
  readonly input: Parameters<Transport["unary"]>[4];
  readonly contextValues: ContextValues | undefined;
  /** Its share of the batch's bytes. */
  readonly bytes: number;
  readonly resolve: (response: UnaryResponse<DescMessage, DescMessage>) => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

/** Answers a call once: whatever comes after (a late answer to a call given up on) is dropped. */
function settle(call: PendingCall, response: UnaryResponse<DescMessage, DescMessage> | undefined, error: unknown): void {
  if (call.settled) return;
  call.settled = true;
  clearTimeout(call.timer);
  if (call.onAbort !== undefined) call.signal?.removeEventListener("abort", call.onAbort);
  if (response !== undefined) call.resolve(response);
  else call.reject(error);
}

/** One call's result from the batch's answer, as the transport below would have given it alone. */
function answer(call: PendingCall, result: BatchedResult): void {
  const { method, batched } = call;
  const { outcome } = result;
  if (outcome.case === "error") {
    const status = outcome.value;
    const code = status.code in Code && status.code !== 0 ? (status.code as Code) : Code.Unknown;
    const error = new ConnectError(status.message, code, metadataOfRecord(Object.assign(Object.create(null) as Record<string, string>, result.header, result.trailer)));
    // As connect's errorFromJson gives them: the type's full name and the encoded message, decoded by findDetails.
    for (const detail of status.details) error.details.push({ type: detail.typeUrl.slice(detail.typeUrl.lastIndexOf("/") + 1), value: detail.value });
    return settle(call, undefined, error);
  }
  if (outcome.case !== batched.responseCase) {
    return settle(call, undefined, new ConnectError(`the batch answered ${method.name} with ${outcome.case ?? "nothing"}`, Code.Internal));
  }
  settle(
    call,
    {
      stream: false,
      service: method.parent,
      method,
      header: metadataOfRecord(result.header),
      message: outcome.value,
      trailer: metadataOfRecord(result.trailer),
    },
    undefined,
  );
}

/** A call's metadata as the batch's map carries it, when it is a plain record (the gateway's client gives one); undefined: it goes alone. */
function recordOfHeader(header: ConstructorParameters<typeof Headers>[0]): Record<string, string> | undefined {
  if (header === undefined) return {};
  return isFieldRecord(header) && isPlainMetadata(header) ? header : undefined;
}

/**
 * An upper bound of what a call adds to the batch's encoding: its strings
 * (a UTF-16 unit is at most 3 bytes of UTF-8, ASCII one) and bytes, and a
 * few bytes for each field, its nested messages' fields included.
 */
function estimatedBytes(value: unknown, depth: number): number {
  if (typeof value === "string") return (NOT_ASCII.test(value) ? value.length * 3 : value.length) + FIELD_OVERHEAD_BYTES;
  if (value instanceof Uint8Array) return value.byteLength + FIELD_OVERHEAD_BYTES;
  if (typeof value !== "object" || value === null) return FIELD_OVERHEAD_BYTES + 8;
  // Deeper than a call's messages nest (an actor chain is bounded by the authz service): count it as too large.
  if (depth > 8) return MAX_BATCH_BYTES + 1;
  let bytes = FIELD_OVERHEAD_BYTES;
  for (const key of Object.keys(value)) {
    if (key !== "$typeName") bytes += key.length + estimatedBytes((value as Record<string, unknown>)[key], depth + 1);
  }
  return bytes;
}

const NOT_ASCII = /[^\x00-\x7f]/;
