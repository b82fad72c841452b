import { connect, type Socket } from "node:net";

/**
 * A closed-loop HTTP/1.1 load generator on bare sockets, for the loopback
 * benches where the generator shares the machine's two cores with what it
 * measures.
 *
 * Why not autocannon alone: it costs about 0.05 ms of CPU per request here
 * (its own request objects, parser, histograms and events), as much as a
 * third of what gatehouse spends on an introspection. A server that runs in
 * one process (node-oidc-provider) is bound by its own core and does not
 * feel that; a deployment of two processes (gatehouse's gateway and authz
 * service) uses both cores, and every microsecond the generator takes is
 * taken from it. Loaded from other machines, as in production, it would have
 * both cores. This generator writes each request as one prepared string and
 * reads each answer with a few `indexOf`s: a fraction of autocannon's cost,
 * with every answer still checked by the caller.
 *
 * What it speaks: keep-alive connections, one request in flight on each;
 * answers framed by Content-Length or chunked (RFC 9112 §6.3, §7.1); a
 * `Connection: close` answer, or a connection the server closes, opens a new
 * one. Anything else it cannot frame counts as an error on that connection,
 * which is then replaced.
 */
export interface LeanLoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  readonly method: "POST" | "GET";
  readonly headers: Readonly<Record<string, string>>;
  /** The next request's body; without it every request is the same bytes, built once. */
  readonly body?: () => string;
  /** The next request's path (asked right after its body), from its connection's context; default: the URL's. */
  readonly path?: (context: Record<string, unknown>) => string;
  /** At most this many requests in all; the time bound still holds. */
  readonly maxRequests?: number;
  /** Each answer: its status, body, connection context, and its latency in ms. */
  readonly onAnswer: (status: number, body: string, context: Record<string, unknown>, ms: number) => void;
}

export interface LeanLoadResult {
  /** Requests written, answered or not. */
  readonly sent: number;
  /** Answers read, whatever their status. */
  readonly answered: number;
  /** Connections lost with a request in flight, or answers that could not be framed. */
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly seconds: number;
}

export function runLeanHttpLoad(options: LeanLoadOptions): Promise<LeanLoadResult> {
  const url = new URL(options.url);
  if (url.protocol !== "http:") throw new Error(`lean load: only http URLs (${options.url})`);
  const port = Number(url.port || 80);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const defaultPath = url.pathname + url.search;
  const head = Object.entries({ host: url.host, ...options.headers })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  const fixedRequest = options.body === undefined && options.path === undefined ? requestText(options.method, defaultPath, head, "") : undefined;

  let sent = 0;
  let answered = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const canSend = () => performance.now() < deadline && (options.maxRequests === undefined || sent < options.maxRequests);

  return new Promise<LeanLoadResult>((resolve) => {
    const sockets = new Set<Socket>();
    // Answers still in flight a moment after the deadline are not waited for.
    const timer = setTimeout(() => sockets.forEach((socket) => socket.destroy()), options.seconds * 1000 + 50);
    let open = options.connections;
    const finished = () => {
      if (--open > 0) return;
      clearTimeout(timer);
      resolve({ sent, answered, errors, firstError, seconds: (performance.now() - started) / 1000 });
    };
    const fail = (message: string) => {
      errors++;
      firstError ??= message;
    };

    const runConnection = (context: Record<string, unknown>) => {
      if (!canSend()) return finished();
      const socket = connect({ host, port, noDelay: true });
      sockets.add(socket);
      let pending: Buffer | undefined;
      let inFlight = false;
      let sentAt = 0;
      let served = false;
      let connected = false;

      const sendNext = () => {
        if (!canSend()) return socket.destroy();
        sent++;
        let text = fixedRequest;
        if (text === undefined) {
          // The body first, then the path (its callback may read what the body's did).
          const body = options.body?.() ?? "";
          text = requestText(options.method, options.path?.(context) ?? defaultPath, head, body);
        }
        inFlight = true;
        sentAt = performance.now();
        socket.write(text);
      };

      socket.on("connect", () => {
        connected = true;
        sendNext();
      });
      socket.on("data", (chunk: Buffer) => {
        pending = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
        const framed = frame(pending);
        if (framed === undefined) return;
        inFlight = false;
        if (typeof framed === "string") {
          fail(framed);
          return socket.destroy();
        }
        answered++;
        served = true;
        options.onAnswer(framed.status, framed.body, context, performance.now() - sentAt);
        if (framed.rest.length > 0) fail("bytes after an answer, with no request in flight");
        if (framed.close || framed.rest.length > 0) return socket.destroy();
        pending = undefined;
        sendNext();
      });
      socket.on("error", (error) => {
        if (performance.now() < deadline && (inFlight || !connected)) fail(`socket error: ${error.message}`);
      });
      socket.on("close", () => {
        sockets.delete(socket);
        if (inFlight && performance.now() < deadline) fail("the connection closed with a request in flight");
        // A connection that served and then ended before its time (Connection: close, an error) is
        // replaced; one that never served (refused) is not, or a dead server would be dialled in a loop.
        if (served && canSend()) runConnection(context);
        else finished();
      });
    };

    for (let i = 0; i < options.connections; i++) runConnection({});
  });
}

function requestText(method: string, path: string, head: string, body: string): string {
  if (method === "GET" && body === "") return `GET ${path} HTTP/1.1\r\n${head}\r\n`;
  return `${method} ${path} HTTP/1.1\r\n${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

interface Framed {
  readonly status: number;
  readonly body: string;
  readonly close: boolean;
  readonly rest: Buffer;
}

const HEAD_END = Buffer.from("\r\n\r\n");

/**
 * One answer from the front of `bytes`: undefined while it is incomplete, a
 * string saying what is wrong when it cannot be framed.
 */
export function frame(bytes: Buffer): Framed | string | undefined {
  const headEnd = bytes.indexOf(HEAD_END);
  if (headEnd === -1) return bytes.length > 64 * 1024 ? "an answer's header over 64 KiB" : undefined;
  const head = bytes.toString("latin1", 0, headEnd);
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (status === null) return `not an HTTP/1.1 status line: ${JSON.stringify(head.slice(0, 40))}`;
  const code = Number(status[1]);
  const lower = head.toLowerCase();
  const close = /\r\nconnection:[ \t]*close/.test(lower);
  const bodyStart = headEnd + 4;
  // RFC 9112 §6.3: 1xx, 204 and 304 answers have no body.
  if ((code >= 100 && code < 200) || code === 204 || code === 304) {
    if (code >= 100 && code < 200) return `an interim ${code} answer`;
    return { status: code, body: "", close, rest: bytes.subarray(bodyStart) };
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) return unchunk(bytes, bodyStart, code, close);
  const length = /\r\ncontent-length:[ \t]*(\d+)/.exec(lower);
  if (length === null) return "an answer framed neither by Content-Length nor chunked";
  const end = bodyStart + Number(length[1]);
  if (bytes.length < end) return undefined;
  return { status: code, body: bytes.toString("utf8", bodyStart, end), close, rest: bytes.subarray(end) };
}

/** RFC 9112 §7.1: chunks until the last (size 0), then the trailer section, which is read past. */
function unchunk(bytes: Buffer, start: number, status: number, close: boolean): Framed | string | undefined {
  const parts: Buffer[] = [];
  let at = start;
  for (;;) {
    const lineEnd = bytes.indexOf("\r\n", at);
    if (lineEnd === -1) return undefined;
    const size = Number.parseInt(bytes.toString("latin1", at, lineEnd).split(";")[0]!.trim(), 16);
    if (!Number.isFinite(size) || size < 0) return "a malformed chunk size";
    at = lineEnd + 2;
    if (size === 0) {
      // The trailer section (fields or none) ends with an empty line: the first CRLF CRLF from the end of the last chunk's line.
      const blank = bytes.indexOf(HEAD_END, at - 2);
      if (blank === -1) return undefined;
      return { status, body: Buffer.concat(parts).toString("utf8"), close, rest: bytes.subarray(blank + 4) };
    }
    if (bytes.length < at + size + 2) return undefined;
    parts.push(bytes.subarray(at, at + size));
    at += size + 2;
  }
}
