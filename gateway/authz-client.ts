import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { DescMethod } from "@bufbuild/protobuf";
import { AuthorizationService } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { SessionService } from "../gen/gatehouse/v1/session_service_pb.js";
import type { GatewayConfig } from "./config.js";

/** Metadata of the gateway's service credential (services/authz/rpc/caller.ts reads it). */
export const SERVICE_CREDENTIAL_HEADER = "gatehouse-service-credential";
/** Metadata with the browser's address, for the authz service's failure limits. */
export const CLIENT_ADDRESS_HEADER = "gatehouse-client-address";

/** The gateway's only RPC client: the authz service's two services, over one failover transport. */
export interface AuthzClient {
  readonly authz: Client<typeof AuthorizationService>;
  readonly sessions: Client<typeof SessionService>;
  /** Call options that authenticate as the gateway's own client (Introspect, for the guard). */
  readonly asGatewayClient: { headers: Record<string, string> };
  /** Call options that pass the browser's address along. */
  forBrowser(address: string): { headers: Record<string, string> };
}

/**
 * Reads that are safe to send to another replica when one fails: they change
 * nothing. Everything else is sent once: a token request retried on another
 * replica after the first one had redeemed the code would fail as a replay.
 */
const IDEMPOTENT = new Set(["Introspect", "GetJwks", "GetMetadata", "GetSession"]);

export function createAuthzClient(config: GatewayConfig["authz"]): AuthzClient {
  const withCredential: Interceptor = (next) => (request) => {
    request.header.set(SERVICE_CREDENTIAL_HEADER, config.serviceCredential);
    return next(request);
  };
  const transports = config.endpoints.map((baseUrl) =>
    createConnectTransport({
      baseUrl,
      httpVersion: "2",
      useBinaryFormat: true,
      interceptors: [withCredential],
      defaultTimeoutMs: config.timeoutMs,
      // Ping idle HTTP/2 sessions so a dead replica is noticed before a request needs it.
      pingIntervalMs: 10_000,
      pingTimeoutMs: 2_000,
      idleConnectionTimeoutMs: 60_000,
    }),
  );
  const transport = createFailoverTransport(transports, (method) => IDEMPOTENT.has(method.name));
  const basic = Buffer.from(`${formEncode(config.clientId)}:${formEncode(config.clientSecret)}`).toString("base64");
  return {
    authz: createClient(AuthorizationService, transport),
    sessions: createClient(SessionService, transport),
    asGatewayClient: { headers: { authorization: `Basic ${basic}` } },
    forBrowser: (address) => ({ headers: { [CLIENT_ADDRESS_HEADER]: address } }),
  };
}

/**
 * Spreads calls over the endpoints in turn; an idempotent call that finds its
 * replica Unavailable is tried on the next one, each at most once.
 */
export function createFailoverTransport(transports: readonly Transport[], idempotent: (method: DescMethod) => boolean): Transport {
  if (transports.length === 1) return transports[0]!;
  let next = 0;
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const first = next++ % transports.length;
      const attempts = idempotent(method) ? transports.length : 1;
      let lastError: unknown;
      for (let i = 0; i < attempts; i++) {
        try {
          return await transports[(first + i) % transports.length]!.unary(method, signal, timeoutMs, header, input, contextValues);
        } catch (error) {
          lastError = error;
          if (ConnectError.from(error).code !== Code.Unavailable || signal?.aborted) throw error;
        }
      }
      throw lastError;
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      return transports[next++ % transports.length]!.stream(method, signal, timeoutMs, header, input, contextValues);
    },
  };
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, "+");
}
