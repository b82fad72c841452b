import { createContextValues, type Interceptor } from "@connectrpc/connect";
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
import { createConnectUnaryHandler } from "./transport/connect-unary.js";
import { createRoutes, createServices } from "./routes.js";
import { kPeerAddress } from "./rpc/caller.js";
import { createProbeHandler } from "./probes.js";
import { createConnectNodeHandler, createRpcServer } from "./transport/server.js";

export interface RunningAuthz {
  readonly address: AddressInfo;
  /** http://host:port, for Connect, gRPC and gRPC-Web clients. */
  readonly url: string;
  readonly deps: AuthzDeps;
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
 * errors are mapped before they are logged. With tracing on, the trace
 * interceptor comes first: the call's span covers the others.
 */
export function createInterceptors(log: Logger, tracing: Tracing = tracingOff): Interceptor[] {
  const interceptors = [createLogInterceptor({ log, tracing }), createErrorInterceptor({ log, tracing })];
  return tracing.enabled ? [createTraceInterceptor(tracing), ...interceptors] : interceptors;
}

/** Builds the authz service and listens. main.ts and the integration tests both start it this way. */
export async function startAuthzService(config: AuthzConfig, log: Logger, overrides: DepsOverrides = {}): Promise<RunningAuthz> {
  const deps = await createAuthzDeps(config, log, overrides);
  const shutdown = new AbortController();
  const services = createServices(deps);
  const interceptors = createInterceptors(log, deps.tracing);
  const contextValues = (remoteAddress: string) => createContextValues().set(kPeerAddress, remoteAddress);
  const adapter = connectNodeAdapter({
    routes: createRoutes(services),
    // The fast path enforces deadlines itself; connect-node needs the handler to (deadline.ts).
    interceptors: [createDeadlineInterceptor(), ...interceptors],
    readMaxBytes: READ_MAX_BYTES,
    acceptCompression: ACCEPT_COMPRESSION,
    compressMinBytes: COMPRESS_MIN_BYTES,
    shutdownSignal: shutdown.signal,
    contextValues: (request) => contextValues(request.socket?.remoteAddress ?? ""),
    fallback: createProbeHandler(deps.health),
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
    openCalls: () => server.openCalls(),
    async close(graceMs = config.drainTimeoutMs) {
      deps.health.startDraining();
      shutdown.abort();
      await server.close(graceMs);
      await deps.close();
    },
  };
}
