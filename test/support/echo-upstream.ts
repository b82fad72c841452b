import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer } from "ws";

/** One request as the upstream received it. */
export interface ReceivedRequest {
  readonly method: string;
  /** The request target as it arrived: path and query. */
  readonly url: string;
  readonly path: string;
  /** Everything after the first "?", including it; "" when none. */
  readonly search: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  /** The body, when it was at most `keepBodyBytes` long; otherwise empty (see bodyLength and bodySha256). */
  readonly body: Buffer;
  readonly bodyLength: number;
  /** Hex SHA-256 of the whole body. */
  readonly bodySha256: string;
  /** The body was still arriving while the upstream had already seen its first bytes (it streamed). */
  readonly bodyChunks: number;
  /** A WebSocket handshake (then `body` is empty). */
  readonly websocket: boolean;
}

export interface EchoUpstream {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Every request received, in order (unless started with record: false). */
  readonly received: ReceivedRequest[];
  last(): ReceivedRequest | undefined;
  /** Body bytes received so far over all requests, counted as they arrive (before a request ends). */
  readonly bodyBytesSeen: number;
  /** TCP connections accepted so far (keep-alive shows as few connections for many requests). */
  readonly connections: number;
  /** Stops listening: new connections are refused (ECONNREFUSED) until accept(). */
  refuse(): Promise<void>;
  /** Listens again on the same port. */
  accept(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real HTTP upstream for the guard's tests and benchmark. It records what
 * it received and, by default, answers 200 with a JSON echo of it. Query
 * parameters change its behaviour (they pass the gateway unchanged):
 *
 * - `echo-delay=<ms>`: wait before answering (timeouts);
 * - `echo-status=<code>`: answer with this status;
 * - `echo-chunks=<n>&echo-interval=<ms>`: stream the answer in n chunks;
 * - `echo-stall=1`: send the head and a first chunk, then nothing (a stall mid-body);
 * - `echo-bytes=<n>`: answer with n bytes of a known pattern;
 * - `echo-header=<name>:<value>`: add a response header (repeatable);
 * - `echo-connection=<value>`: send this Connection header (hop-by-hop tests).
 *
 * With `record: false` (the benchmark) nothing is kept and the answer is a
 * small constant JSON body.
 *
 * WebSocket handshakes are accepted (the `ws` package) and every message is
 * sent back prefixed with "echo:"; the handshake is recorded like a request.
 */
export async function startEchoUpstream(options: { port?: number; record?: boolean; keepBodyBytes?: number } = {}): Promise<EchoUpstream> {
  const record = options.record ?? true;
  const keepBodyBytes = options.keepBodyBytes ?? 1_048_576;
  const received: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  let bodyBytesSeen = 0;
  const wss = new WebSocketServer({ noServer: true });
  wss.on("connection", (socket) => {
    socket.on("message", (data, isBinary) => socket.send(isBinary ? data : `echo:${data.toString()}`, { binary: isBinary }));
  });

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const hash = createHash("sha256");
    const kept: Buffer[] = [];
    let length = 0;
    let chunks = 0;
    req.on("data", (chunk: Buffer) => {
      chunks++;
      length += chunk.length;
      bodyBytesSeen += chunk.length;
      hash.update(chunk);
      if (length <= keepBodyBytes) kept.push(chunk);
    });
    req.on("end", () => {
      const entry = describe(req, length <= keepBodyBytes ? Buffer.concat(kept) : Buffer.alloc(0), length, hash.digest("hex"), chunks, false);
      if (record) received.push(entry);
      respond(req, res, entry, record);
    });
  };

  const server: Server = createServer({ keepAliveTimeout: 5_000 }, onRequest);
  server.on("connection", (socket) => {
    connections++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (record) received.push(describe(req, Buffer.alloc(0), 0, createHash("sha256").digest("hex"), 0, true));
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
  });

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  const port = await listen(options.port ?? 0);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    received,
    last: () => received[received.length - 1],
    get connections() {
      return connections;
    },
    get bodyBytesSeen() {
      return bodyBytesSeen;
    },
    refuse: stopListening,
    accept: async () => {
      await listen(port);
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      if (server.listening) await stopListening();
    },
  };
}

function describe(req: IncomingMessage, body: Buffer, bodyLength: number, bodySha256: string, bodyChunks: number, websocket: boolean): ReceivedRequest {
  const url = req.url ?? "";
  const q = url.indexOf("?");
  return {
    method: req.method ?? "",
    url,
    path: q === -1 ? url : url.slice(0, q),
    search: q === -1 ? "" : url.slice(q),
    headers: { ...req.headers },
    rawHeaders: [...req.rawHeaders],
    body,
    bodyLength,
    bodySha256,
    bodyChunks,
    websocket,
  };
}

function respond(req: IncomingMessage, res: ServerResponse, entry: ReceivedRequest, echo: boolean): void {
  const params = new URLSearchParams(entry.search);
  const status = Number(params.get("echo-status") ?? 200);
  const delay = Number(params.get("echo-delay") ?? 0);
  const headers: Record<string, string | string[]> = {};
  for (const header of params.getAll("echo-header")) {
    const colon = header.indexOf(":");
    headers[header.slice(0, colon).toLowerCase()] = header.slice(colon + 1);
  }
  const connection = params.get("echo-connection");
  if (connection !== null) headers.connection = connection;

  const answer = () => {
    if (res.destroyed) return;
    if (params.get("echo-stall") === "1") {
      res.writeHead(status, { ...headers, "content-type": "text/plain" });
      res.write("first chunk;");
      return; // and nothing more
    }
    const chunkCount = Number(params.get("echo-chunks") ?? 0);
    if (chunkCount > 0) {
      const interval = Number(params.get("echo-interval") ?? 10);
      res.writeHead(status, { ...headers, "content-type": "text/plain" });
      let sent = 0;
      const next = () => {
        if (res.destroyed) return;
        res.write(`chunk ${sent};`);
        if (++sent === chunkCount) res.end();
        else setTimeout(next, interval);
      };
      next();
      return;
    }
    const bytes = params.get("echo-bytes");
    if (bytes !== null) {
      res.writeHead(status, { ...headers, "content-type": "application/octet-stream", "content-length": bytes });
      res.end(patternBytes(Number(bytes)));
      return;
    }
    // Not recording (the benchmark): a small constant answer, the same for every phase.
    const body = !echo ? '{"ok":true}' : JSON.stringify({
      method: entry.method,
      url: entry.url,
      headers: entry.headers,
      bodyLength: entry.bodyLength,
      bodySha256: entry.bodySha256,
    });
    res.writeHead(status, { ...headers, "content-type": "application/json" });
    res.end(req.method === "HEAD" ? undefined : body);
  };
  if (delay > 0) setTimeout(answer, delay);
  else answer();
}

/** n bytes of a repeating, position-dependent pattern (so truncation or reordering shows). */
export function patternBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}
