import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { DescMethod } from "@bufbuild/protobuf";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { SessionService } from "../../gen/gatehouse/v1/session_service_pb.js";
import type { GatewayConfig } from "../config.js";
import { createConnectUnaryTransport } from "./connect-unary-transport.js";

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
 * nothing. Anything else is sent again only when it provably never reached a
 * server: a token request retried after the first replica had redeemed the
 * code would fail as a replay (and revoke the grant).
 */
const IDEMPOTENT = new Set(["Introspect", "GetJwks", "GetMetadata", "GetSession"]);

export function createAuthzClient(config: GatewayConfig["authz"]): AuthzClient {
  // A guard-only gateway (a sidecar) has no service credential: it calls only
  // Introspect and WatchRevocations, as its own client.
  const header: Record<string, string> = config.serviceCredential === undefined ? {} : { [SERVICE_CREDENTIAL_HEADER]: config.serviceCredential };
  const transports = config.endpoints.map((baseUrl) =>
    createConnectUnaryTransport({
      baseUrl,
      defaultTimeoutMs: config.timeoutMs,
      header,
      // Ping idle HTTP/2 sessions so a dead replica is noticed before a request needs it.
      pingIntervalMs: 10_000,
      // connect-es carries the one stream, WatchRevocations.
      streams: createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, pingIntervalMs: 10_000, pingTimeoutMs: 2_000 }),
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
 * Spreads calls over the endpoints in turn. A call goes to the next endpoint,
 * each endpoint at most once, when its replica is Unavailable and the call is
 * idempotent, or whatever the call when the request provably never reached a
 * server (connection refused, HTTP/2 stream refused or GOAWAY'd before it was
 * processed): that is what a replica that is restarting or gone looks like.
 */
export function createFailoverTransport(transports: readonly Transport[], idempotent: (method: DescMethod) => boolean): Transport {
  if (transports.length === 1) return transports[0]!;
  let next = 0;
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const first = next++ % transports.length;
      let lastError: unknown;
      for (let i = 0; i < transports.length; i++) {
        try {
          return await transports[(first + i) % transports.length]!.unary(method, signal, timeoutMs, header, input, contextValues);
        } catch (error) {
          lastError = error;
          const retry = neverReachedServer(error) || (idempotent(method) && ConnectError.from(error).code === Code.Unavailable);
          if (!retry || signal?.aborted) throw error;
        }
      }
      throw lastError;
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      return transports[next++ % transports.length]!.stream(method, signal, timeoutMs, header, input, contextValues);
    },
  };
}

/** Node error codes (anywhere in the cause chain) that mean the request was never processed by a server. */
const NOT_SENT = new Set(["ECONNREFUSED", "ERR_HTTP2_GOAWAY_SESSION", "ERR_HTTP2_STREAM_CANCEL"]);

function neverReachedServer(error: unknown): boolean {
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 10; cause = cause.cause, depth++) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== undefined && NOT_SENT.has(code)) return true;
    // RFC 9113 §8.7: a stream reset with REFUSED_STREAM was not processed and may be retried.
    if (/REFUSED_STREAM/.test(cause.message)) return true;
  }
  return false;
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, "+");
}
