import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { pino } from "pino";
import { SERVICE_CREDENTIAL_HEADER } from "../../contract/metadata.js";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { SessionService } from "../../gen/gatehouse/v1/session_service_pb.js";
import { createAuthzService } from "../../services/authz/app.js";
import type { AuthzDeps, DepsOverrides } from "../../services/authz/deps.js";
import { SECRETS, testConfig } from "./authz.js";

export interface InProcessAuthz {
  readonly deps: AuthzDeps;
  /** connect's router transport: calls go to the handlers in this process, no socket, no HTTP. */
  readonly transport: Transport;
  readonly authz: Client<typeof AuthorizationService>;
  readonly sessions: Client<typeof SessionService>;
  /** Metadata of the gateway: its service credential. */
  readonly asGateway: { headers: Record<string, string> };
  close(): Promise<void>;
}

/**
 * The authz service's routes (services/authz/routes.ts) with its real
 * dependencies (the memory store, the test configuration) and the same
 * interceptors as the server, behind connect's `createRouterTransport`: a
 * handler's logic, its error mapping included, tested in milliseconds.
 * Protocol and transport behaviour is the protocol suite's
 * (test/integration/rpc-protocol-suite.ts), over real sockets.
 */
export async function createInProcessAuthz(
  options: { patch?: (file: Record<string, unknown>) => void; overrides?: DepsOverrides } = {},
): Promise<InProcessAuthz> {
  // No Redis URL: the memory store, the reference implementation of the store ports.
  const config = await testConfig({ ...(options.patch === undefined ? {} : { patch: options.patch }) });
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  // The service as it runs, never listening: its own interceptors (limits, budgets, error mapping) behind the router transport.
  const service = await createAuthzService(config, log, options.overrides);
  const transport = service.inProcessTransport("router");
  return {
    deps: service.deps,
    transport,
    authz: createClient(AuthorizationService, transport),
    sessions: createClient(SessionService, transport),
    asGateway: { headers: { [SERVICE_CREDENTIAL_HEADER]: SECRETS.service } },
    close: () => service.close(),
  };
}
