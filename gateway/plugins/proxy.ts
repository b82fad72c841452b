import { request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { parse as parseUrl } from "node:url";
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import httpProxy from "http-proxy";
import { hasRequestBody } from "../guard/request-headers.js";
import type { UpstreamFailure, UpstreamProxy } from "../upstream.js";
import { createUpstreamPool, type UpstreamOrigin, type UpstreamPool } from "../upstream-pool.js";

/**
 * The guard's proxy: streams a request to its upstream and the response
 * back, with no buffering on either side. Upstream connections are kept
 * alive, one pool per origin (upstream-pool.ts; without keep-alive, a proxy
 * spends most of its time on TCP handshakes). The response's hop-by-hop
 * fields are removed here; the request's were removed by the guard
 * (guard/mutate.ts).
 *
 * Requests go out through node:http directly, their header fields as the
 * name/value list the guard built: Node then checks and writes each field
 * once, where http-proxy copied them into an object and Node set them one by
 * one (about a tenth of the sidecar's instructions per request, counted with
 * callgrind). WebSocket handshakes, a few per connection, go through
 * `http-proxy`, its only use.
 */

declare module "fastify" {
  interface FastifyInstance {
    upstreamProxy: UpstreamProxy;
  }
}

export interface ProxyOptions {
  /** A connection to the upstream silent this long fails with 504. */
  timeoutMs: number;
}

const TIMEOUT_CODE = "GATEHOUSE_UPSTREAM_TIMEOUT";

/** RFC 9110 §7.6.1: fields of one connection, never passed on. */
const HOP_BY_HOP_RESPONSE = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"]);

const CONNECTION = "connection";

/** The response head for the client: the upstream's fields in their order and case, minus hop-by-hop ones. */
function responseHeaders(proxyRes: IncomingMessage): string[] {
  const raw = proxyRes.rawHeaders;
  // Read from the raw list: `proxyRes.headers` would build an object of every field for this one.
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === CONNECTION.length && raw[i]!.toLowerCase() === CONNECTION) {
      listed ??= new Set();
      for (const option of raw[i + 1]!.toLowerCase().split(",")) listed.add(option.trim());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP_RESPONSE.has(name) || listed?.has(name) === true) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function onUpstreamTimeout(this: ClientRequest): void {
  this.destroy(Object.assign(new Error("the upstream did not answer in time"), { code: TIMEOUT_CODE }));
}

/** The response head for the client, then the body, streamed. */
function relayResponse(proxyRes: IncomingMessage, res: ServerResponse): void {
  if (res.destroyed) {
    proxyRes.destroy();
    return;
  }
  res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(proxyRes));
  // An upstream that breaks off mid-body: cut the client off too, rather than end a truncated body cleanly.
  proxyRes.once("error", () => res.destroy());
  proxyRes.once("aborted", () => res.destroy());
  proxyRes.pipe(res);
}

const plugin: FastifyPluginAsync<ProxyOptions> = async (app, options) => {
  // The upstream timeout is the connections' own: armed once per connection, not once per request.
  // A request emits 'timeout' when its connection has been silent that long (and an idle one is closed).
  const pools = new Map<string, UpstreamPool>();
  const poolOf = (origin: UpstreamOrigin): UpstreamPool => {
    const key = `${origin.secure ? "https" : "http"}://${origin.hostname}:${origin.port}`;
    let pool = pools.get(key);
    if (pool === undefined) pools.set(key, (pool = createUpstreamPool(origin, { timeoutMs: options.timeoutMs })));
    return pool;
  };
  // WebSocket handshakes only (see the module comment).
  const server = httpProxy.createProxyServer({ xfwd: false, changeOrigin: false, ws: false });

  /** Handshakes whose caller wants the upstream socket (UpstreamProxy.ws's onOpen). */
  const wsOpen = new WeakMap<IncomingMessage, (upstream: Duplex) => void>();
  server.on("proxyReqWs", (proxyReq, req) => {
    proxyReq.setTimeout(options.timeoutMs, onUpstreamTimeout);
    const onOpen = wsOpen.get(req);
    if (onOpen !== undefined) proxyReq.once("upgrade", (_res: IncomingMessage, upstream: Duplex) => onOpen(upstream));
  });

  // Without a callback http-proxy would emit these; keep them from crashing the process.
  server.on("error", () => {});
  server.on("econnreset", () => {});

  const failureOf = (error: NodeJS.ErrnoException, responseStarted: boolean): UpstreamFailure => ({
    kind: error.code === TIMEOUT_CODE ? "timeout" : "unreachable",
    code: error.code,
    responseStarted,
  });

  const upstreamProxy: UpstreamProxy = {
    target(url) {
      const parsed = parseUrl(url);
      const secure = parsed.protocol === "https:";
      // url.parse gives an IPv6 address without its brackets, as a socket wants it.
      const pool = poolOf({ secure, hostname: parsed.hostname ?? "", port: parsed.port === null || parsed.port === "" ? (secure ? 443 : 80) : Number(parsed.port) });
      return {
        url,
        parsed,
        web: { origin: { protocol: parsed.protocol, hostname: parsed.hostname, port: parsed.port }, agent: pool.agent },
        // "http://up/base/" and "http://up/base" both put "/base" before the request's path.
        basePath: (parsed.pathname ?? "/").replace(/\/+$/, ""),
        ws: { target: parsed, agent: false },
      };
    },
    web(req, res, target, outgoing, onFailure) {
      let failed = false;
      const fail = (error: NodeJS.ErrnoException) => {
        if (failed) return;
        failed = true;
        // The client left first (its reset reached the upstream side): there is no one to answer.
        if (req.socket.destroyed && error.code === "ECONNRESET") return;
        const responseStarted = res.headersSent;
        if (responseStarted) res.destroy();
        onFailure(failureOf(error, responseStarted));
      };
      const { origin } = target.web;
      let proxyReq: ClientRequest;
      try {
        // The options are written out, not spread from `origin`: with `{ ...origin, ... }` (V8 in Node 20)
        // every request's objects outlived two young-generation collections, about 600 bytes a request
        // promoted to the old generation (--trace-gc-nvp: 280 KB per scavenge) and collected by mark-compacts.
        // The pool's connections speak TLS to an https origin: node:http writes HTTP/1.1 over them either way.
        proxyReq = httpRequest({
          protocol: origin.protocol,
          hostname: origin.hostname,
          port: origin.port,
          agent: target.web.agent,
          method: req.method,
          path: target.basePath + outgoing.path,
          // Node adds no Host to a list of fields; an HTTP/1.0 caller may have sent none (RFC 9112 §3.2: an HTTP/1.1 request must).
          headers: (req.headers.host === undefined ? [...outgoing.headers, "host", target.parsed.host ?? ""] : outgoing.headers) as string[],
        });
      } catch (error) {
        // Node refuses a field or path it cannot send (checked when the head is built).
        fail(error as NodeJS.ErrnoException);
        return;
      }
      proxyReq.once("timeout", onUpstreamTimeout);
      proxyReq.on("error", fail);
      req.on("error", fail);
      // The client left before the answer was complete: the upstream request is given up.
      res.once("close", () => {
        if (!res.writableFinished) proxyReq.destroy();
      });
      proxyReq.once("response", (proxyRes: IncomingMessage) => relayResponse(proxyRes, res));
      // A request without a body goes out at once, without a pipe's listeners (node discards the
      // empty request stream when the response ends).
      if (hasRequestBody(req.headers)) req.pipe(proxyReq);
      else proxyReq.end();
    },
    ws(req, socket, head, target, onFailure, onOpen) {
      if (onOpen !== undefined) wsOpen.set(req, onOpen);
      // A pooled socket cannot be upgraded and returned; each WebSocket gets its own connection.
      server.ws(req, socket, head, target.ws as httpProxy.ServerOptions, (error: NodeJS.ErrnoException) => {
        onFailure(failureOf(error, socket.destroyed || (socket as Duplex & { bytesWritten?: number }).bytesWritten !== 0));
      });
    },
  };

  app.decorate("upstreamProxy", upstreamProxy);
  app.addHook("onClose", async () => {
    server.close();
    for (const pool of pools.values()) pool.destroy();
  });
};

/** Decorates the instance with `upstreamProxy`; the guard uses it. */
export const proxy = fp(plugin, { name: "proxy", fastify: "5.x" });
