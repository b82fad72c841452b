import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { createAuthzService, type AuthzService, type RunningAuthz } from "../services/authz/app.js";
import type { AuthzConfig } from "../services/authz/config.js";
import type { DepsOverrides } from "../services/authz/deps.js";
import type { InProcessKind } from "../services/authz/transport/in-process-transport.js";
import { buildApp } from "../gateway/app.js";
import type { GatewayConfig } from "../gateway/config.js";
import { createGatewayDeps, type GatewayDeps, type GatewayDepsOverrides } from "../gateway/deps.js";

/** What the all-in-one process runs on; main.ts passes the parsed AllInOneConfig, tests build their own. */
export interface AllInOneOptions {
  authz: AuthzConfig;
  gateway: GatewayConfig;
  /** Also serve the authz RPC port (authz.host/port) for internal services. */
  serveRpc: boolean;
  inProcess: InProcessKind;
  /** The authz side's logger and the gateway side's (main.ts: children of one). */
  log: { authz: Logger; gateway: Logger };
  authzOverrides?: DepsOverrides;
  gatewayOverrides?: Omit<GatewayDepsOverrides, "transport">;
}

/** The running process's parts: tests reach into them, main.ts reloads and drains them. */
export interface RunningAllInOne {
  readonly authz: AuthzService;
  /** The RPC server, when serveRpc. */
  readonly rpc: RunningAuthz | undefined;
  readonly gateway: FastifyInstance;
  readonly gatewayDeps: GatewayDeps;
  /** http://host:port of the gateway. */
  readonly url: string;
  /** Drains the gateway (HTTP, then its revocation stream), then the RPC port, then releases the store. */
  close(graceMs?: number): Promise<void>;
}

/**
 * The gateway and the authz service in one process: the composition root
 * that alone may import both (a dependency rule). The gateway gets an
 * in-process Transport to the service's handlers in place of its network
 * client; everything else about both sides is as in the two-process
 * deployment, the service-credential check included (the gateway's client
 * sends its credential on every call; the handlers check it).
 */
export async function startAllInOne(options: AllInOneOptions): Promise<RunningAllInOne> {
  const authz = await createAuthzService(options.authz, options.log.authz, options.authzOverrides);
  let rpc: RunningAuthz | undefined;
  let gateway: FastifyInstance | undefined;
  try {
    const gatewayDeps = createGatewayDeps(options.gateway, options.log.gateway, {
      ...options.gatewayOverrides,
      transport: authz.inProcessTransport(options.inProcess),
    });
    gateway = await buildApp(gatewayDeps);
    if (options.serveRpc) rpc = await authz.listen();
    await gateway.listen({ host: options.gateway.listen.host, port: options.gateway.listen.port });
    const address = gateway.server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const app = gateway;
    const running = rpc;
    return {
      authz,
      rpc,
      gateway: app,
      gatewayDeps,
      url: `http://${host}:${address.port}`,
      async close(graceMs = options.authz.drainTimeoutMs) {
        await app.close();
        if (running !== undefined) await running.close(graceMs);
        else await authz.close();
      },
    };
  } catch (error) {
    await gateway?.close();
    if (rpc !== undefined) await rpc.close(0);
    else await authz.close();
    throw error;
  }
}
