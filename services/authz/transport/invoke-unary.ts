import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type Interceptor, type MethodImplSpec } from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";

/**
 * Runs one unary call through the server's interceptors without any HTTP
 * framing, for the in-process transport (in-process-transport.ts) and for
 * the calls of a batch (call-batch.ts): connect's own
 * `invokeUnaryImplementation`, the caller's deadline enforced as the fast
 * path enforces it (deadline_exceeded when it passes), and a cancelled
 * caller's signal honoured. A failure is a ConnectError whose metadata also
 * holds the response header and trailer the handler set: over the wire an
 * error's metadata is the response's headers and trailers (Connect protocol).
 */
export async function invokeUnary(
  spec: MethodImplSpec & { kind: "unary" },
  context: HandlerContext,
  input: MessageShape<DescMessage>,
  interceptors: Interceptor[],
  deadline: number | undefined,
  signal: AbortSignal | undefined,
): Promise<MessageShape<DescMessage>> {
  if (signal?.aborted === true) throw ConnectError.from(signal.reason, Code.Canceled);
  const invocation = invokeUnaryImplementation(spec, context, input as never, interceptors);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return deadline === undefined && signal === undefined
      ? await invocation
      : await Promise.race([
          invocation,
          new Promise<never>((_, reject) => {
            if (deadline !== undefined) {
              timer = setTimeout(() => reject(new ConnectError("the operation timed out", Code.DeadlineExceeded)), Math.max(0, deadline - Date.now()));
            }
            if (signal !== undefined) {
              onAbort = () => reject(ConnectError.from(signal.reason, Code.Canceled));
              signal.addEventListener("abort", onAbort, { once: true });
            }
          }),
        ]);
  } catch (error) {
    const connectError = ConnectError.from(error, Code.Internal);
    context.responseHeader.forEach((value, key) => connectError.metadata.append(key, value));
    context.responseTrailer.forEach((value, key) => connectError.metadata.append(key, value));
    throw connectError;
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
  }
}
