import { Agent as HttpAgent, type ClientRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Duplex } from "node:stream";
import { parse as parseUrl } from "node:url";
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import httpProxy from "http-proxy";
import type { UpstreamFailure, UpstreamProxy } from "../upstream.js";

/**
 * The only user of `http-proxy`: streams a request to its upstream and the
 * response back, with no buffering on either side. Upstream connections are
 * kept alive (without keep-alive, a proxy spends most of its time on TCP
 * handshakes). The response's hop-by-hop fields are removed here; the
 * request's were removed by the guard (guard/mutate.ts).
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

/** The response head for the client: the upstream's fields in their order and case, minus hop-by-hop ones. */
function responseHeaders(proxyRes: IncomingMessage): string[] {
  const raw = proxyRes.rawHeaders;
  const connection = proxyRes.headers.connection;
  const listed = connection === undefined ? undefined : new Set(connection.toLowerCase().split(",").map((t) => t.trim()));
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

const plugin: FastifyPluginAsync<ProxyOptions> = async (app, options) => {
  // The upstream timeout is the sockets' own: armed once per connection, not once per request.
  // A request emits 'timeout' when its socket has been silent that long (and an idle pooled socket is dropped).
  const agents = {
    http: new HttpAgent({ keepAlive: true, scheduling: "lifo", timeout: options.timeoutMs }),
    https: new HttpsAgent({ keepAlive: true, scheduling: "lifo", timeout: options.timeoutMs }),
  };
  const server = httpProxy.createProxyServer({ xfwd: false, changeOrigin: false, selfHandleResponse: true, ws: false });

  // Every proxied request: the upstream timeout, and giving up when the client leaves.
  server.on("proxyReq", (proxyReq, _req, res) => {
    proxyReq.once("timeout", onUpstreamTimeout);
    res.once("close", () => {
      if (!res.writableFinished) proxyReq.destroy();
    });
  });
  /** Handshakes whose caller wants the upstream socket (UpstreamProxy.ws's onOpen). */
  const wsOpen = new WeakMap<IncomingMessage, (upstream: Duplex) => void>();
  server.on("proxyReqWs", (proxyReq, req) => {
    proxyReq.setTimeout(options.timeoutMs, onUpstreamTimeout);
    const onOpen = wsOpen.get(req);
    if (onOpen !== undefined) proxyReq.once("upgrade", (_res: IncomingMessage, upstream: Duplex) => onOpen(upstream));
  });

  // selfHandleResponse: the response head is written here, without hop-by-hop fields.
  server.on("proxyRes", (proxyRes, _req, res) => {
    if (res.destroyed) {
      proxyRes.destroy();
      return;
    }
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(proxyRes));
    // An upstream that breaks off mid-body: cut the client off too, rather than end a truncated body cleanly.
    proxyRes.once("error", () => res.destroy());
    proxyRes.once("aborted", () => res.destroy());
    proxyRes.pipe(res);
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
      return { url, parsed, web: { target: parsed, agent: parsed.protocol === "https:" ? agents.https : agents.http }, ws: { target: parsed, agent: false } };
    },
    web(req, res, target, onFailure) {
      server.web(req, res, target.web as httpProxy.ServerOptions, (error: NodeJS.ErrnoException) => {
        const responseStarted = res.headersSent;
        if (responseStarted) res.destroy();
        onFailure(failureOf(error, responseStarted));
      });
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
    agents.http.destroy();
    agents.https.destroy();
  });
};

/** Decorates the instance with `upstreamProxy`; the guard uses it. */
export const proxy = fp(plugin, { name: "proxy", fastify: "5.x" });
