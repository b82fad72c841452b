import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CLIENT_ADDRESS_HEADER, SERVICE_CREDENTIAL_HEADER, TENANT_HEADER } from "../../contract/metadata.js";
import { isFieldRecord } from "../../contract/metadata-headers.js";
import { DEFAULT_TENANT } from "../../startup/tenant-name.js";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { SessionService } from "../../gen/gatehouse/v1/session_service_pb.js";
import { RegistrationService } from "../../gen/gatehouse/v1/registration_service_pb.js";
import type { GatewayConfig } from "../config.js";
import { createConnectEsTransport } from "./connect-es-transport.js";
import { createConnectUnaryTransport } from "./connect-unary-transport.js";
import { observeDeadlines } from "./deadline-observer.js";
import { createBatchingTransport } from "./batching-transport.js";
import { createFailoverTransport } from "./failover-transport.js";
import { createTracingTransport } from "./tracing-transport.js";
import { tracingOff, type Tracing } from "../../startup/tracing.js";

/** The gateway's only RPC client: the authz service's services, over one failover transport. */
export interface AuthzClient {
  readonly authz: Client<typeof AuthorizationService>;
  readonly sessions: Client<typeof SessionService>;
  /** RFC 7591 / RFC 7592 behind the registration endpoint. */
  readonly registration: Client<typeof RegistrationService>;
  /** Call options that authenticate as the gateway's own client (Introspect, for the guard). */
  readonly asGatewayClient: { headers: Record<string, string> };
  /** Call options that pass the browser's address along. */
  forBrowser(address: string): { headers: Record<string, string> };
  /** The metadata that names a tenant (contract/metadata.ts); none for the default tenant, as before tenants. */
  tenantHeaders(tenant: string): Record<string, string>;
  /**
   * Introspect for the guard, for a token of `tenant`, named: the default
   * tenant's as asGatewayClient; another's, with the service credential alone (the
   * gateway guards every tenant's routes; its own client is the default
   * tenant's), or, for a guard-only gateway without one, as its own client,
   * which must then be a client of that tenant.
   */
  asGatewayIn(tenant: string): { headers: Record<string, string> };
}

/**
 * Reads that are safe to send to another replica when one fails: they change
 * nothing. Anything else is sent again only when it provably never reached a
 * server: a token request retried after the first replica had redeemed the
 * code would fail as a replay (and revoke the grant).
 */
const IDEMPOTENT = new Set(["Introspect", "GetJwks", "GetMetadata", "GetSession", "GetClientRegistration"]);

/** What a composition root may hand the client instead of the configured endpoints. */
export interface AuthzClientOptions {
  /**
   * The way to the authz service, given by a composition root that has one in
   * this process (all-in-one/app.ts); `endpoints` and `transport` are then not
   * used. The gateway's service credential and deadline go with every call as
   * over the network: the service checks its caller the same way.
   */
  transport?: Transport;
  /** Called for every call that exceeded its deadline (gateway/rpc/deadline-observer.ts): counted and reported. */
  onDeadline?: (procedure: string) => void;
  /** With tracing on, every call made for a traced request carries its trace (rpc/tracing-transport.ts). */
  tracing?: Tracing;
  /** Told of every batchable call sent alone (1) and of every batch (its calls) (rpc/batching-transport.ts). */
  onSend?: (calls: number) => void;
}

/** The client over the configured endpoints (lean or connect-es, with failover), or over the Transport given. */
export function createAuthzClient(config: GatewayConfig["authz"], options: AuthzClientOptions = {}): AuthzClient {
  // A guard-only gateway (a sidecar) has no service credential: it calls only
  // Introspect and WatchRevocations, as its own client.
  const header: Record<string, string> = config.serviceCredential === undefined ? {} : { [SERVICE_CREDENTIAL_HEADER]: config.serviceCredential };
  const base =
    options.transport === undefined ? createNetworkTransport(config, header, options.onSend) : withCallDefaults(options.transport, config.timeoutMs, header);
  const observed = options.onDeadline === undefined ? base : observeDeadlines(base, options.onDeadline);
  // Outside the failover: one client span per call, whichever replica answers it (a deadline ends it as an error).
  const tracing = options.tracing ?? tracingOff;
  const transport = tracing.enabled ? createTracingTransport(observed, tracing) : observed;
  const basic = Buffer.from(`${formEncode(config.clientId)}:${formEncode(config.clientSecret)}`).toString("base64");
  return {
    authz: createClient(AuthorizationService, transport),
    sessions: createClient(SessionService, transport),
    registration: createClient(RegistrationService, transport),
    asGatewayClient: { headers: { authorization: `Basic ${basic}` } },
    forBrowser: (address) => ({ headers: { [CLIENT_ADDRESS_HEADER]: address } }),
    tenantHeaders: (tenant): Record<string, string> => (tenant === DEFAULT_TENANT ? {} : { [TENANT_HEADER]: tenant }),
    asGatewayIn(tenant) {
      const headers: Record<string, string> = { [TENANT_HEADER]: tenant };
      if (tenant === DEFAULT_TENANT || config.serviceCredential === undefined) headers.authorization = `Basic ${basic}`;
      return { headers };
    },
  };
}

/** The configured endpoints, each over the configured transport, behind one failover. */
function createNetworkTransport(config: GatewayConfig["authz"], header: Record<string, string>, onSend?: (calls: number) => void): Transport {
  // Ping idle HTTP/2 sessions so a dead replica is noticed before a request needs it.
  const pingIntervalMs = 10_000;
  const transports = config.endpoints.map((baseUrl): Transport => {
    const transport =
      config.transport === "connect"
        ? createConnectEsTransport({ baseUrl, defaultTimeoutMs: config.timeoutMs, header, pingIntervalMs })
        : createConnectUnaryTransport({
            baseUrl,
            defaultTimeoutMs: config.timeoutMs,
            header,
            pingIntervalMs,
            httpVersion: config.httpVersion,
            // connect-es carries the one stream, WatchRevocations.
            streams: createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, pingIntervalMs, pingTimeoutMs: 2_000 }),
          });
    // Per endpoint, below the failover: a batch goes to one replica, and each of its calls that failed as
    // not sent (or, if idempotent, on an unavailable replica) is sent again as itself to the next.
    return config.batchCalls === false ? transport : createBatchingTransport(transport, { defaultTimeoutMs: config.timeoutMs, ...(onSend === undefined ? {} : { onSend }) });
  });
  return createFailoverTransport(transports, (method) => IDEMPOTENT.has(method.name));
}

/**
 * What the network transports add to every call, added to a given one: the
 * gateway's headers (its service credential), and its deadline when a call
 * names none (as connect-es: undefined takes the default, zero or less is none).
 */
function withCallDefaults(transport: Transport, defaultTimeoutMs: number, header: Record<string, string>): Transport {
  const defaults = new Set(Object.keys(header).map((name) => name.toLowerCase()));
  const headersOf = (own: ConstructorParameters<typeof Headers>[0]): ConstructorParameters<typeof Headers>[0] => {
    // The usual call names plain headers other than the defaults: one plain record, no Headers (a Headers
    // costs several µs of WebIDL conversions, and this is on every call). The transports read such a
    // record as it is (contract/metadata-headers.ts), or as any HeadersInit.
    if (own === undefined) return Object.assign({}, header);
    if (isFieldRecord(own) && Object.keys(own).every((name) => !defaults.has(name.toLowerCase()))) return Object.assign({}, header, own);
    const headers = new Headers(header);
    new Headers(own).forEach((value, name) => headers.set(name, value));
    return headers;
  };
  return {
    unary: (method, signal, timeoutMs, own, input, contextValues) =>
      transport.unary(method, signal, timeoutMs ?? defaultTimeoutMs, headersOf(own), input, contextValues),
    stream: (method, signal, timeoutMs, own, input, contextValues) =>
      transport.stream(method, signal, timeoutMs ?? defaultTimeoutMs, headersOf(own), input, contextValues),
  };
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, "+");
}
