import { AsyncLocalStorage } from "node:async_hooks";
import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  createTraceState,
  trace,
  type Attributes,
  type Context,
  type ContextManager,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from "@opentelemetry/sdk-trace";
import { formatTraceparent, parseTraceparent, type TraceIds } from "./trace-context.js";
import type { TracingConfig } from "./tracing-config.js";

export { SpanKind };
export type { Span };

/**
 * Tracing as both processes use it: OpenTelemetry spans exported over
 * OTLP/HTTP when configured (config `tracing`, from the OTEL_* variables),
 * nothing at all when not. Callers test `enabled` once, where they are
 * built, and install nothing on the hot path when it is false: no span, no
 * context manager, no async-hook binding.
 */
export interface Tracing {
  readonly enabled: boolean;
  /**
   * Starts a SERVER span for a request, continuing the caller's trace
   * (W3C `traceparent`/`tracestate`; an invalid one starts a new trace).
   */
  startServerSpan(name: string, traceparent: string | string[] | undefined, tracestate: string | string[] | undefined, attributes?: Attributes): Span;
  /** Starts a span under the active one. */
  startSpan(name: string, kind?: SpanKind, attributes?: Attributes): Span;
  /** Runs `run` with `span` active: spans started inside (after any await too) are its children. */
  withSpan<T>(span: Span, run: () => T): T;
  /** Runs an asynchronous step as a child span of the active one; a rejection marks the span as an error. */
  inSpan<T>(name: string, run: () => Promise<T>, attributes?: Attributes): Promise<T>;
  /** The active span, if a request is being traced here. */
  activeSpan(): Span | undefined;
  /** Exports what is buffered (tests; and before exit). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** The `traceparent` of a span, to send to the next hop. */
export function traceparentOf(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return formatTraceparent(traceId, spanId, traceFlags);
}

/** What every log line of a traced request carries. */
export function traceIdsOf(span: Span): TraceIds {
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/**
 * The log ids of a request: its span's when tracing is on, else the
 * caller's own `traceparent` (trace id and the caller's span id), so that a
 * request can be followed through the logs with tracing off too.
 */
export function logIdsOf(span: Span | undefined, traceparent: string | string[] | undefined | null): TraceIds | undefined {
  if (span !== undefined) return traceIdsOf(span);
  const parsed = parseTraceparent(traceparent);
  return parsed === undefined ? undefined : { trace_id: parsed.trace_id, span_id: parsed.span_id };
}

const invalidSpan = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Tracing off: what `startTracing(undefined)` gives. Nothing here records anything. */
export const tracingOff: Tracing = {
  enabled: false,
  startServerSpan: () => invalidSpan,
  startSpan: () => invalidSpan,
  withSpan: (_span, run) => run(),
  inSpan: (_name, run) => run(),
  activeSpan: () => undefined,
  flush: async () => {},
  shutdown: async () => {},
};

/** Test seam: where spans go instead of the OTLP exporter (none is used in the tests: they run a real OTLP/HTTP endpoint). */
export interface TracingOptions {
  /** The instrumentation scope: which process made a span (`gatehouse-gateway`, `gatehouse-authz`). */
  scope: string;
}

/**
 * Builds the tracer provider for one process: parent-based sampling at the
 * configured ratio, a batch span processor (export happens off the request
 * path, in batches), and the OTLP/HTTP exporter with the configured URL and
 * headers. It also installs the context manager (AsyncLocalStorage) that
 * carries the active span across awaits; that one is process-global in the
 * OpenTelemetry API, and the first one installed stays.
 */
export function startTracing(config: TracingConfig | undefined, options: TracingOptions): Tracing {
  if (config === undefined) return tracingOff;
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": config.serviceName }),
    sampler: sampler(config.sampleRatio),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: config.endpoint, headers: { ...config.headers } }) })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager()); // false when one is installed already: it serves
  return createTracing(provider.getTracer(options.scope), provider);
}

function sampler(ratio: number): Sampler {
  const root = ratio >= 1 ? new AlwaysOnSampler() : ratio <= 0 ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
  return new ParentBasedSampler({ root });
}

function createTracing(tracer: Tracer, provider: TracerProvider): Tracing {
  const startSpan = (name: string, kind: SpanKind = SpanKind.INTERNAL, attributes?: Attributes) =>
    tracer.startSpan(name, attributes === undefined ? { kind } : { kind, attributes });
  return {
    enabled: true,
    startServerSpan(name, traceparent, tracestate, attributes) {
      const parent = parseTraceparent(traceparent);
      const parentContext: Context =
        parent === undefined
          ? ROOT_CONTEXT
          : trace.setSpanContext(ROOT_CONTEXT, {
              traceId: parent.trace_id,
              spanId: parent.span_id,
              traceFlags: parent.flags & 1,
              isRemote: true,
              ...(typeof tracestate === "string" && tracestate !== "" ? { traceState: createTraceState(tracestate) } : {}),
            });
      return tracer.startSpan(name, attributes === undefined ? { kind: SpanKind.SERVER } : { kind: SpanKind.SERVER, attributes }, parentContext);
    },
    startSpan,
    withSpan: (span, run) => context.with(trace.setSpan(context.active(), span), run),
    inSpan(name, run, attributes) {
      const span = startSpan(name, SpanKind.INTERNAL, attributes);
      return context.with(trace.setSpan(context.active(), span), () => {
        let pending: Promise<unknown>;
        try {
          pending = run();
        } catch (error) {
          endWithError(span, error);
          throw error;
        }
        return (pending as Promise<never>).then(
          (value) => {
            span.end();
            return value;
          },
          (error: unknown) => {
            endWithError(span, error);
            throw error;
          },
        );
      });
    },
    activeSpan: () => trace.getSpan(context.active()),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** Ends a span as failed, with the error's name and message (never a stack: it may carry input). */
export function endWithError(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  span.end();
}

/**
 * The OpenTelemetry context manager over Node's AsyncLocalStorage: the
 * active span follows the request across awaits and callbacks. Installed only
 * when tracing is on.
 */
class AsyncLocalStorageContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.apply(thisArg, args));
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== "function") return target;
    const run = (thisArg: unknown, args: unknown[]) => this.with(ctx, target as (...a: unknown[]) => unknown, thisArg, ...args);
    return function (this: unknown, ...args: unknown[]) {
      return run(this, args);
    } as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.#storage.disable();
    return this;
  }
}
