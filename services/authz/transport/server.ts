import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";

/** HTTP/1.1 requests arrive as Node request/response pairs; HTTP/2 streams as they are. */
export interface RpcHandler {
  node: (request: http.IncomingMessage, response: http.ServerResponse) => void;
  stream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;
}

/**
 * Every call through one Node request handler (connect-node's adapter): HTTP/2
 * streams get Node's compatibility request and response objects, built as
 * Node's own request listener would build them.
 */
export function createConnectNodeHandler(handler: (request: http.IncomingMessage | http2.Http2ServerRequest, response: http.ServerResponse | http2.Http2ServerResponse) => void): RpcHandler {
  return {
    node: handler,
    stream: (stream, headers, _flags, rawHeaders) => handler(new http2.Http2ServerRequest(stream, headers, {}, rawHeaders), new http2.Http2ServerResponse(stream)),
  };
}

/** The client connection preface of HTTP/2 (RFC 9113 §3.4) starts with these bytes; no HTTP/1.1 method does. */
const H2_PREFACE_START = Buffer.from("PRI * HTTP/2.0");

export interface RpcServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  /**
   * Calls (HTTP/1.1 exchanges, HTTP/2 streams) the server still holds open:
   * one that ends, or that its client resets or abandons, no longer counts.
   */
  openCalls(): number;
  /**
   * Stops accepting connections, lets in-flight calls finish for up to
   * `graceMs` (HTTP/2 sessions get GOAWAY; idle HTTP/1.1 connections close),
   * then closes whatever is left.
   */
  close(graceMs: number): Promise<void>;
}

/**
 * One cleartext port for every protocol connect-node answers: Connect and
 * gRPC-Web over HTTP/1.1, and Connect, gRPC and gRPC-Web over HTTP/2 with
 * prior knowledge (h2c, what gRPC clients and Kubernetes' appProtocol h2c
 * speak). The first bytes of each connection decide which server gets it.
 */
export function createRpcServer(handler: RpcHandler): RpcServer {
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, handler.node);
  // No request listener: Node's compatibility layer is built per stream only when the handler asks for it.
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1_000 } });
  let open = 0;
  const ended = () => void open--;
  /**
   * HTTP/1.1 connections, how many of their requests are open, and the
   * latest of those. The h1 server never listens (its connections are handed
   * to it), so Node's own tracking, which closeIdleConnections() reads, is
   * never set up: without this, a kept-alive idle client held a draining
   * server for its whole grace. One record per connection, updated in place:
   * a collection that gained and lost an entry per request kept the responses
   * alive through the young-generation collections (guard/connection-watch.ts).
   */
  const h1Connections = new Map<net.Socket, { open: number; latest: http.ServerResponse | undefined }>();
  let draining = false;
  const closeIdleH1 = () => {
    for (const [socket, connection] of h1Connections) if (connection.open === 0) socket.destroy();
  };
  h1.on("request", (request: http.IncomingMessage, response: http.ServerResponse) => {
    open++;
    const socket = request.socket;
    const connection = h1Connections.get(socket);
    if (connection !== undefined) {
      connection.open++;
      connection.latest = response;
    }
    // While draining, the answer says the connection ends with it (RFC 9112 §9.6).
    if (draining) response.shouldKeepAlive = false;
    response.once("close", () => {
      ended();
      if (connection === undefined) return;
      connection.open--;
      if (connection.latest === response) connection.latest = undefined;
      if (draining && connection.open === 0) socket.end();
    });
  });
  h2.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    stream.once("close", ended);
  });
  h2.on("stream", handler.stream);
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<net.Socket>();
  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    let head = Buffer.alloc(0);
    const route = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const compared = Math.min(head.length, H2_PREFACE_START.length);
      const maybeH2 = head.subarray(0, compared).equals(H2_PREFACE_START.subarray(0, compared));
      if (maybeH2 && compared < H2_PREFACE_START.length) return; // wait for more bytes to decide
      socket.off("data", route);
      socket.pause();
      socket.unshift(head);
      if (maybeH2) {
        // The HTTP/2 session reads the bytes already buffered, then takes the socket's handle itself.
        h2.emit("connection", socket);
      } else {
        h1Connections.set(socket, { open: 0, latest: undefined });
        socket.once("close", () => h1Connections.delete(socket));
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", route);
    socket.on("error", () => socket.destroy());
  });

  return {
    openCalls: () => open,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        listener.once("error", reject);
        listener.listen(port, host, () => {
          listener.off("error", reject);
          resolve(listener.address() as AddressInfo);
        });
      });
    },

    async close(graceMs) {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      draining = true;
      // An answer not yet begun says the connection ends with it; responses pipelined before it finish first, in order.
      for (const { latest } of h1Connections.values()) if (latest !== undefined && !latest.headersSent) latest.shouldKeepAlive = false;
      for (const session of sessions) session.close();
      closeIdleH1();
      const deadline = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
        for (const session of sessions) session.destroy();
      }, graceMs);
      await closed;
      clearTimeout(deadline);
    },
  };
}
