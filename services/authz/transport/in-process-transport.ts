import { create, type DescMessage, type DescMethodUnary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createRouterTransport,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { isFieldRecord, RecordHeaders } from "../../../contract/metadata-headers.js";
import type { ServiceRegistration } from "./connect-unary.js";
import { invokeUnary } from "./invoke-unary.js";

/**
 * How a caller in the same process reaches the authz service's handlers:
 *
 * - "direct": unary calls go straight to the implementation through connect's
 *   own `invokeUnaryImplementation`, with the same interceptors as the server
 *   (so the same OAuthError → ConnectError mapping, the same log) and the
 *   caller's deadline enforced as the fast path enforces it; no serialization,
 *   no HTTP framing. Measured the cheaper of the two (all-in-one/README.md).
 * - "router": connect's `createRouterTransport`, which runs the whole Connect
 *   protocol over in-memory streams (serialize, envelope, parse).
 *
 * Streaming calls (WatchRevocations) go through the router transport on both:
 * one long-lived call per gateway, whose cost does not matter.
 */
export type InProcessKind = "direct" | "router";

/** What the in-process transport runs: the service's registrations and the server's interceptors. */
export interface InProcessTransportOptions {
  kind: InProcessKind;
  services: readonly ServiceRegistration[];
  /** The server's interceptors (app.ts createInterceptors): error mapping and logging. */
  interceptors: Interceptor[];
  /** The context values of every call; the caller is this process. */
  contextValues: () => ContextValues;
  /** Aborted when the service drains: the signal of a call that brings none. */
  shutdownSignal: AbortSignal;
}

/** What the in-process caller is, where a peer address is asked for (rate-limit keys, logs). */
export const IN_PROCESS_PEER = "in-process";

/**
 * A connect Transport to the authz service's handlers in this process (see
 * InProcessKind). Clients built on it see what they see over the network: the
 * same messages, ConnectErrors with the same codes, OAuthErrorDetails and
 * metadata, deadline_exceeded when their deadline passes.
 */
export function createInProcessTransport(options: InProcessTransportOptions): Transport {
  const router = createRouterTransport(
    (r) => {
      for (const service of options.services) service.register(r);
    },
    { router: { interceptors: options.interceptors } },
  );
  if (options.kind === "router") return router;

  const methods = new Map<DescMethodUnary, MethodImplSpec & { kind: "unary" }>();
  for (const { spec: service } of options.services) {
    for (const spec of Object.values(service.methods)) if (spec.kind === "unary") methods.set(spec.method as DescMethodUnary, spec);
  }

  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      const spec = methods.get(method as unknown as DescMethodUnary);
      if (spec === undefined) throw new ConnectError(`${method.parent.typeName}/${method.name} is not implemented`, Code.Unimplemented);
      // Connect: a timeout of zero or less means none.
      const deadline = timeoutMs === undefined || timeoutMs <= 0 ? undefined : Date.now() + timeoutMs;
      const context: HandlerContext = {
        method: spec.method,
        service: spec.method.parent,
        requestMethod: "POST",
        protocolName: "connect",
        // A Headers object the caller built is used as it is; the plain record the gateway's client gives
        // is read as it is too, without building a Headers (contract/metadata-headers.ts).
        requestHeader: header instanceof Headers ? header : isFieldRecord(header) ? RecordHeaders.from(header) : new Headers(header),
        responseHeader: new Headers(),
        responseTrailer: new Headers(),
        values: options.contextValues(),
        url: `in-process:///${method.parent.typeName}/${method.name}`,
        timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
        signal: signal ?? options.shutdownSignal,
      };
      const message = await invokeUnary(spec, context, create(method.input, input), options.interceptors, deadline, signal);
      return {
        stream: false,
        service: method.parent,
        method,
        header: context.responseHeader,
        message: message as UnaryResponse<I, O>["message"],
        trailer: context.responseTrailer,
      };
    },
    stream: (method, signal, timeoutMs, header, input, contextValues) => router.stream(method, signal, timeoutMs, header, input, contextValues),
  };
}
