import { createContextValues, type ContextValues, type Interceptor, type Transport } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { AuthzConfig } from "./config.js";
import { createAuthzDeps, type AuthzDeps, type DepsOverrides } from "./deps.js";
import { createDeadlineInterceptor } from "./interceptors/deadline.js";
import { createErrorInterceptor } from "./interceptors/errors.js";
import { createLogInterceptor } from "./interceptors/log.js";
import { createTraceInterceptor } from "./interceptors/trace.js";
import { tracingOff, type Tracing } from "../../startup/tracing.js";
import { createOverloadInterceptor } from "./interceptors/overload.js";
import { createAuthzMetrics, type AuthzMetrics, type AuthzOverloadKind } from "./metrics.js";
import { createConcurrencyLimiter } from "../../startup/concurrency-limiter.js";
import { createOverloadReporter, type OverloadReporter } from "../../startup/overload-reporter.js";
import { createConnectUnaryHandler, registration, type ServiceRegistration } from "./transport/connect-unary.js";
import { createBatchService } from "./transport/call-batch.js";
import { BatchService } from "../../gen/gatehouse/v1/batch_service_pb.js";
import { createInProcessTransport, IN_PROCESS_PEER, type InProcessKind } from "./transport/in-process-transport.js";
import { callerCheckOf, createRoutes, createServices } from "./routes.js";
import { kPeerAddress } from "./rpc/caller.js";
import { createProbeHandler } from "./probes.js";
import { createConnectNodeHandler, createRpcServer } from "./transport/server.js";

export interface RunningAuthz {
  readonly address: AddressInfo;
  /** http://host:port, for Connect, gRPC and gRPC-Web clients. */
  readonly url: string;
  readonly deps: AuthzDeps;
  /** This service's Prometheus registry and instruments, also served at GET /metrics. */
  readonly metrics: AuthzMetrics;
  /** Calls whose request or response is still open on the server (drain and the protocol tests watch it). */
  openCalls(): number;
  /** Drains in-flight calls for up to `graceMs`, then releases everything. */
  close(graceMs?: number): Promise<void>;
}

/** No message gatehouse accepts comes near this; a larger one is refused before it is parsed. */
const READ_MAX_BYTES = 64 * 1024;
/** connect-node's defaults, spelled out so that both paths use the same. */
const ACCEPT_COMPRESSION = [compressionGzip, compressionBrotli];
const COMPRESS_MIN_BYTES = 1024;

/**
 * The interceptors of every call, on either path; the last is the innermost:
 * errors are mapped before they are logged. With `overload`, the limit and
 * the call budget come before those (interceptors/overload.ts), and Redis
 * timeouts are reported rate-limited. With tracing on, the trace interceptor
 * is outermost: the call's span covers the others, so a shed call or one
 * that ran out of budget is a span too (Unavailable/DeadlineExceeded, marked
 * as an error), and the time a call waited for a slot is inside its span.
 * That costs the shed path one span only when tracing is on; off, nothing is
 * installed.
 */
function createInterceptors(
  log: Logger,
  overload?: { interceptor: Interceptor; reporter: OverloadReporter<AuthzOverloadKind> },
  tracing: Tracing = tracingOff,
): Interceptor[] {
  const inner = [createLogInterceptor({ log, tracing }), createErrorInterceptor({ log, reporter: overload?.reporter, tracing })];
  const limited = overload === undefined ? inner : [overload.interceptor, ...inner];
  return tracing.enabled ? [createTraceInterceptor(tracing), ...limited] : limited;
}

/** What each kind's rate-limited warn line says (README, "Overload"). */
const OVERLOAD_MESSAGES: Readonly<Record<AuthzOverloadKind, string>> = {
  shed: "calls shed: over the concurrency limit (authz.overload); answered temporarily_unavailable with retry-after",
  deadline: "calls gave up: their budget (the caller's deadline less authz.overload.deadlineMarginMs) ran out; answered temporarily_unavailable",
  redis_timeout: "Redis commands timed out (authz.overload.redisCommandTimeoutMs); calls answered temporarily_unavailable",
};

/**
 * The authz service built but not listening: its deps, and the two ways in,
 * a listening RPC server and an in-process transport. The all-in-one process
 * (all-in-one/app.ts) takes the transport and listens only if configured.
 */
export interface AuthzService {
  readonly deps: AuthzDeps;
  /** The handlers with the server's interceptors, for a caller in this process (transport/in-process-transport.ts). */
  inProcessTransport(kind?: InProcessKind): Transport;
  /** Serves Connect, gRPC and gRPC-Web on config.listen; its close() releases everything. */
  listen(): Promise<RunningAuthz>;
  /** Releases everything when not listening (after listen(), the running server's close() does). */
  close(): Promise<void>;
}

/** Builds the authz service without listening. */
export async function createAuthzService(config: AuthzConfig, log: Logger, overrides: DepsOverrides = {}): Promise<AuthzService> {
  const deps = await createAuthzDeps(config, log, overrides);
  const shutdown = new AbortController();
  const services = createServices(deps);
  const metrics = createAuthzMetrics();
  const limiter = createConcurrencyLimiter(config.overload);
  metrics.load(() => ({ inFlight: limiter.inFlight(), queued: limiter.queued() }));
  deps.backChannelLogout.observe(metrics.backChannelLogout);
  const reporter = createOverloadReporter({ log, messages: OVERLOAD_MESSAGES, count: metrics.overload });
  const budget = { marginMs: config.overload.deadlineMarginMs, defaultMs: config.overload.defaultBudgetMs };
  const interceptors = createInterceptors(log, { interceptor: createOverloadInterceptor({ limiter, budget, reporter }), reporter }, deps.tracing);
  const contextValues = (remoteAddress: string) => createContextValues().set(kPeerAddress, remoteAddress);
  const release = async () => {
    deps.health.startDraining();
    shutdown.abort();
    reporter.flush();
    await deps.close();
  };
  return {
    deps,
    inProcessTransport: (kind = "direct") =>
      createInProcessTransport({ kind, services, interceptors, contextValues: () => contextValues(IN_PROCESS_PEER), shutdownSignal: shutdown.signal }),
    // Over the network, calls may also come batched (transport/call-batch.ts: the gateway's hop under load).
    listen: () =>
      listen(config, deps, {
        services: [...services, registration(BatchService, createBatchService({ services, interceptors, contextValues, callerCheck: callerCheckOf(deps) }))],
        interceptors,
        contextValues,
        shutdown,
        metrics,
        reporter,
      }),
    close: release,
  };
}

/** Builds the authz service and listens. main.ts and the integration tests both start it this way. */
export async function startAuthzService(config: AuthzConfig, log: Logger, overrides: DepsOverrides = {}): Promise<RunningAuthz> {
  return (await createAuthzService(config, log, overrides)).listen();
}

async function listen(
  config: AuthzConfig,
  deps: AuthzDeps,
  { services, interceptors, contextValues, shutdown, metrics, reporter }: {
    services: readonly ServiceRegistration[];
    interceptors: Interceptor[];
    contextValues: (remoteAddress: string) => ContextValues;
    shutdown: AbortController;
    metrics: AuthzMetrics;
    reporter: OverloadReporter<AuthzOverloadKind>;
  },
): Promise<RunningAuthz> {
  const adapter = connectNodeAdapter({
    routes: createRoutes(services),
    // The fast path enforces deadlines itself; connect-node needs the handler to (deadline.ts).
    interceptors: [createDeadlineInterceptor(), ...interceptors],
    readMaxBytes: READ_MAX_BYTES,
    acceptCompression: ACCEPT_COMPRESSION,
    compressMinBytes: COMPRESS_MIN_BYTES,
    shutdownSignal: shutdown.signal,
    contextValues: (request) => contextValues(request.socket?.remoteAddress ?? ""),
    fallback: createProbeHandler(deps.health, metrics.registry),
  });
  // rpc.fastPath: false serves every call through connect-node's adapter alone.
  const handler = config.rpc.fastPath
    ? createConnectUnaryHandler({
        services,
        interceptors,
        readMaxBytes: READ_MAX_BYTES,
        acceptCompression: ACCEPT_COMPRESSION,
        compressMinBytes: COMPRESS_MIN_BYTES,
        contextValues,
        shutdownSignal: shutdown.signal,
        fallback: adapter,
      })
    : createConnectNodeHandler(adapter);
  const server = createRpcServer(handler);
  const address = await server.listen(config.listen.port, config.listen.host);
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    address,
    url: `http://${host}:${address.port}`,
    deps,
    metrics,
    openCalls: () => server.openCalls(),
    async close(graceMs = config.drainTimeoutMs) {
      deps.health.startDraining();
      shutdown.abort();
      await server.close(graceMs);
      reporter.flush();
      await deps.close();
    },
  };
}
