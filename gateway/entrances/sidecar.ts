import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import proxyAddr from "@fastify/proxy-addr";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config.js";
import { createUpstreamHeaders, headerObject, type ForwardedFor } from "../guard/mutate.js";
import { UNMATCHED, type Allowance, type GuardDecision, type GuardPipeline } from "../guard/pipeline.js";
import type { ConnectionEnd } from "../guard/connection-watch.js";
import { hasRequestBody } from "../guard/request-headers.js";
import { normalizeTarget, type NormalizedTarget } from "../guard/rules.js";
import type { GatewayMetrics } from "../metrics.js";
import { bearerFailureResponse, oauthErrorResponse, writeErrorResponse } from "../oauth-error-response.js";
import { createTlsCheck } from "../tls-check.js";
import { compileTrustedProxies } from "../trusted-proxies.js";
import { createRequestTracing, type RequestTracing } from "../request-tracing.js";
import { traceparentOf, tracingOff } from "../../startup/tracing.js";
import type { TraceIds } from "../../startup/trace-context.js";
import type { UpstreamFailure, UpstreamProxy, UpstreamTarget } from "../upstream.js";

/**
 * Entrance 1, the sidecar proxy: Node's request in, the pipeline's decision
 * out, as a response written here (a refusal) or as the request rewritten and
 * handed to the proxy (an allowance): the path that was checked, the headers
 * the pipeline decided on plus the hop's own (X-Forwarded-*, X-Request-Id,
 * no hop-by-hop fields). Streaming, WebSockets, `Expect: 100-continue`, 502
 * and 504 are handled here; plugins/guard.ts only wires this to fastify and
 * the server's events.
 *
 * Proxied requests and WebSockets stay watched while they are open: when
 * their token is revoked, its grant is revoked, or it expires, a WebSocket is
 * closed with code 1008 (RFC 6455 §7.4.1, policy violation) on both sides and
 * any other response is cut (a long poll or an event stream ends; the client
 * sees the connection close, not a truncated body passed off as complete).
 */

export interface SidecarOptions {
  config: Pick<GatewayConfig, "guard" | "trustedProxies">;
  /** config.requireHttps: the raw path applies the same check as plugins/require-https.ts. */
  requireHttps: boolean;
  pipeline: GuardPipeline;
  proxy: UpstreamProxy;
  metrics: GatewayMetrics;
  log: Logger;
  /** The request id of a raw request, as fastify's genReqId would give it. */
  requestIdOf: (req: IncomingMessage) => string;
  /**
   * Spans and log ids of guarded requests (request-tracing.ts): a SERVER span
   * per request (tracing on), the decision made with it active, its
   * `traceparent` sent upstream; the trace ids on every log line. None when absent.
   */
  requestTracing?: RequestTracing;
}

export interface Sidecar {
  /**
   * The entry beneath fastify: guards and forwards every plain request that
   * is not for one of the gateway's own endpoints; returns false for those
   * (fastify serves them).
   */
  serveRaw(req: IncomingMessage, res: ServerResponse): boolean;
  /** Guards and forwards a request that came through fastify (`normalized`: its target, already normalised). */
  serve(req: IncomingMessage, res: ServerResponse, requestId: string, normalized?: NormalizedTarget): void;
  /** Answers 400 invalid_request (a second spelling of one of the gateway's own endpoints). */
  badRequest(req: IncomingMessage, res: ServerResponse, requestId: string, description: string): void;
  /** A WebSocket handshake (the server's 'upgrade' event): the socket and first bytes to proxy if it is allowed. */
  noteUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** A request with `Expect: 100-continue`: told to send its body only once it is let through (RFC 9110 §10.1.1). */
  noteContinue(req: IncomingMessage): void;
  /** True when the request was noted as waiting for 100 (Continue). */
  awaitsContinue(req: IncomingMessage): boolean;
  /** Ends every proxied WebSocket (the server is closing). */
  close(): void;
}

/** A WebSocket (or other upgrade) request: the socket node handed over, and its first bytes. */
interface Upgrade {
  readonly socket: Duplex;
  readonly head: Buffer;
}

/** RFC 6455 §7.4.1: 1008, an endpoint is terminating the connection because it received a message that violates its policy. */
const POLICY_VIOLATION = 1008;

export function createSidecar(options: SidecarOptions): Sidecar {
  const { config, pipeline, proxy, metrics, log } = options;
  const requestTracing = options.requestTracing ?? createRequestTracing(tracingOff);
  const tracing = requestTracing.tracing;
  const realm = config.guard.realm;

  const targets = new Map<string, UpstreamTarget>();
  const targetOf = (url: string) => {
    let target = targets.get(url);
    if (target === undefined) targets.set(url, (target = proxy.target(url)));
    return target;
  };

  const upstreamHeaders = createUpstreamHeaders();
  const trust = compileTrustedProxies(config.trustedProxies);
  /** Where the request came from: X-Forwarded-* believed only from trusted proxies (as fastify's trustProxy reads them). */
  const forwardedFor = (req: IncomingMessage): ForwardedFor => {
    const socket = req.socket as Socket & { encrypted?: boolean };
    const peer = socket.remoteAddress ?? "";
    const ownProto = socket.encrypted === true ? "https" : "http";
    const host = req.headers.host ?? "";
    if (config.trustedProxies.length === 0 || !trust(peer, 0)) return { for: peer, proto: ownProto, host };
    // The chain up to the first address not trusted, nearest first; sent farthest first.
    const proto = lastEntry(req.headers["x-forwarded-proto"]);
    const forwardedHost = lastEntry(req.headers["x-forwarded-host"]);
    return { for: proxyAddr.all(req, trust).reverse().join(", "), proto: socket.encrypted === true ? "https" : (proto ?? ownProto), host: forwardedHost ?? host };
  };

  const upgrades = new WeakMap<IncomingMessage, Upgrade>();
  const awaitingContinue = new WeakSet<IncomingMessage>();
  const openSockets = new Set<Duplex>();
  /** The upstream side of each open proxied WebSocket, once the upstream accepted it. */
  const upstreamSockets = new WeakMap<Duplex, Duplex>();

  // Long-lived connections end with their token (see the module comment).
  // A response already on its way when its token is revoked may finish (one sweep, 250 ms); one still open then is cut.
  const responses = pipeline.watchConnections<ServerResponse>(
    (res, reason) => {
      log.info({ reason }, "guard: a proxied response outlived its token; cut");
      res.destroy();
    },
    { revocationGraceMs: 250 },
  );
  const webSockets = pipeline.watchConnections<Duplex>((socket, reason) => endWebSocket(socket, reason));

  const endWebSocket = (socket: Duplex, reason: ConnectionEnd) => {
    log.info({ reason }, "guard: a WebSocket outlived its token; closed with 1008");
    const upstream = upstreamSockets.get(socket);
    if (upstream === undefined) {
      // The upstream has not accepted the handshake yet: there is no WebSocket to close cleanly.
      socket.destroy();
      return;
    }
    upstream.unpipe(socket);
    socket.unpipe(upstream);
    const text = reason === "revoked" ? "access token revoked" : "access token expired";
    // The client gets an unmasked close frame (RFC 6455 §5.1), the upstream a masked one, as from a client.
    socket.end(closeFrame(POLICY_VIOLATION, text, false));
    upstream.end(closeFrame(POLICY_VIOLATION, text, true));
    // A peer that never answers the close handshake is not waited for long.
    setTimeout(() => {
      socket.destroy();
      upstream.destroy();
    }, 1_000).unref();
  };

  const upstreamFailed = (res: ServerResponse, allowance: Allowance, failure: UpstreamFailure, requestId: string, ids: TraceIds | undefined) => {
    metrics.upstreamFailure(allowance.route, failure.kind);
    log.warn({ reqId: requestId, ...ids, route: allowance.route, kind: failure.kind, code: failure.code, responseStarted: failure.responseStarted }, "guard: upstream failed");
    if (failure.responseStarted || res.destroyed) return;
    writeErrorResponse(
      res,
      bearerFailureResponse({
        status: failure.kind === "timeout" ? 504 : 502,
        description: failure.kind === "timeout" ? "the upstream did not answer in time" : "the upstream could not be reached",
        realm,
        style: allowance.errorStyle,
      }),
    );
  };

  /** Carries out the decision: the refusal written, or the request rewritten and proxied. */
  const settle = (req: IncomingMessage, res: ServerResponse, requestId: string, ids: TraceIds | undefined, websocket: boolean, decision: GuardDecision) => {
    if (decision.kind === "refuse") {
      // A refusal is a complete response; nothing is written if the client has gone.
      writeErrorResponse(res, decision);
      return;
    }
    // The client may have left while the token was checked.
    if (req.socket.destroyed) return;
    // W3C Trace Context: the upstream continues the gateway's span (tracing off: the caller's traceparent passes as sent).
    const span = requestTracing.spanOf(req);
    const headers = upstreamHeaders(req.headers, {
      setHeaders: decision.setHeaders,
      removeHeaders: decision.removeHeaders,
      forwarded: forwardedFor(req),
      requestId,
      websocket,
      ...(span === undefined ? {} : { traceContext: { traceparent: traceparentOf(span), tracestate: span.spanContext().traceState?.serialize() } }),
    });
    // The upstream gets the path that was checked, and the query as it came.
    const path = decision.path + decision.search;
    // RFC 9110 §10.1.1: the client waits for 100 (Continue) before it sends the body; only now is it let in.
    if (awaitingContinue.has(req)) res.writeContinue();
    const target = targetOf(decision.upstream);
    const onFailure = (failure: UpstreamFailure) => upstreamFailed(res, decision, failure, requestId, ids);
    const upgrade = websocket ? upgrades.get(req) : undefined;
    if (upgrade !== undefined) {
      // http-proxy reads the handshake's target and fields from the request.
      req.headers = headerObject(headers) as IncomingMessage["headers"];
      req.url = path;
      const { socket } = upgrade;
      openSockets.add(socket);
      const watched = decision.principal === undefined ? undefined : webSockets.add(socket, decision.principal);
      socket.once("close", () => {
        openSockets.delete(socket);
        if (watched !== undefined) webSockets.delete(watched);
      });
      proxy.ws(req, socket, upgrade.head, target, onFailure, (upstream) => upstreamSockets.set(socket, upstream));
      return;
    }
    if (decision.principal !== undefined) {
      // 'close' comes when the response finished or the client left.
      const watched = responses.add(res, decision.principal);
      res.once("close", () => responses.delete(watched));
    }
    proxy.web(req, res, target, { path, headers }, onFailure);
  };

  const serve = (req: IncomingMessage, res: ServerResponse, requestId: string, normalized?: NormalizedTarget) => {
    // Tracing off, not even a closure on the guard's hot path.
    if (tracing.enabled) requestTracing.run(req, () => decideAndSettle(req, res, requestId, requestTracing.begin(req), normalized));
    else decideAndSettle(req, res, requestId, requestTracing.begin(req), normalized);
  };

  const decideAndSettle = (req: IncomingMessage, res: ServerResponse, requestId: string, ids: TraceIds | undefined, normalized: NormalizedTarget | undefined) => {
    const upgrade = upgrades.get(req);
    const websocket = upgrade !== undefined && req.headers.upgrade?.toLowerCase() === "websocket";
    if (upgrade !== undefined && (websocket ? req.method !== "GET" : hasRequestBody(req.headers))) {
      metrics.guardRequest(UNMATCHED, "bad_request");
      writeErrorResponse(res, bearerFailureResponse({ status: 400, error: "invalid_request", description: "unsupported protocol upgrade", realm, style: "rfc6750" }));
      return;
    }
    const decision = pipeline.decide({
      method: req.method ?? "",
      target: req.url ?? "",
      normalized,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      peer: req.socket.remoteAddress ?? "",
      websocket,
      requestId,
      logIds: ids,
    });
    // The cached path: synchronous to the proxy.
    if (!(decision instanceof Promise)) return settle(req, res, requestId, ids, websocket, decision);
    decision
      .then((result) => settle(req, res, requestId, ids, websocket, result))
      .catch((error: unknown) => {
        // A bug past this point must not become an unhandled rejection, nor a pass.
        log.error({ reqId: requestId, ...ids, err: error }, "guard: failed");
        writeErrorResponse(res, oauthErrorResponse({ status: 500, error: "server_error", description: "the gateway failed to handle the request" }));
      });
  };

  const tlsCheck = createTlsCheck({ enabled: options.requireHttps, trustedProxies: config.trustedProxies });

  return {
    serveRaw(req, res) {
      const target = normalizeTarget(req.url ?? "");
      // The gateway's own endpoints are fastify's (its hooks check their spelling, TLS and bodies).
      if (target.ok && pipeline.isOwnPath(target.path)) return false;
      // The request's span (tracing on) starts here and ends when its response closes, whoever answers.
      if (tracing.enabled) {
        requestTracing.begin(req);
        requestTracing.watch(req, res);
      }
      if (tlsCheck !== undefined && !tlsCheck(req)) {
        metrics.guardRequest(UNMATCHED, "bad_request");
        writeErrorResponse(res, bearerFailureResponse({ status: 400, error: "invalid_request", description: "this endpoint must be used over https", realm, style: "rfc6750" }));
        return true;
      }
      serve(req, res, options.requestIdOf(req), target.ok ? target : undefined);
      return true;
    },
    serve,
    badRequest(req, res, requestId, description) {
      metrics.guardRequest(UNMATCHED, "bad_request");
      log.info({ reqId: requestId, ...requestTracing.begin(req), outcome: "bad_request", method: req.method, path: pathOf(req.url) }, "guard: refused");
      writeErrorResponse(res, bearerFailureResponse({ status: 400, error: "invalid_request", description, realm, style: "rfc6750" }));
    },
    noteUpgrade(req, socket, head) {
      upgrades.set(req, { socket, head });
    },
    noteContinue(req) {
      awaitingContinue.add(req);
    },
    awaitsContinue: (req) => awaitingContinue.has(req),
    close() {
      for (const socket of openSockets) socket.destroy();
    },
  };
}

/**
 * A WebSocket close frame (RFC 6455 §5.5.1): FIN + opcode 8, the status code
 * and a short UTF-8 reason; masked when sent as a client (§5.3).
 */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const payload = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason, "utf8")]);
  if (payload.length > 125) throw new RangeError("a control frame's payload is at most 125 bytes (RFC 6455 §5.5)");
  if (!masked) return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
  const mask = randomBytes(4);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), mask, body]);
}

/** The last value of a possibly repeated, comma-separated header (a proxy appends its own hop last). */
function lastEntry(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const last = (Array.isArray(value) ? value.join(",") : value).split(",").at(-1)?.trim();
  return last === "" ? undefined : last;
}

/** The path of a request target, without its query (for logs: a query may carry secrets). */
function pathOf(url: string | undefined): string {
  if (url === undefined) return "";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

