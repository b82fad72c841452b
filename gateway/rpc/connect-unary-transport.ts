import * as http from "node:http";
import * as http2 from "node:http2";
import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary } from "@bufbuild/protobuf";
import { Code, ConnectError, appendHeaders, type Transport } from "@connectrpc/connect";
import { errorFromJsonBytes, trailerDemux, validateResponse } from "@connectrpc/connect/protocol-connect";
import { isFieldRecord, isPlainMetadata, metadataOfNodeFields, RecordHeaders } from "../../contract/metadata-headers.js";
import { CONNECT_TIMEOUT_HEADER } from "../../contract/metadata.js";
import { CallNotSentError } from "./call-not-sent-error.js";

export interface ConnectUnaryTransportOptions {
  /** The server's base URL (http://host:port), HTTP/2 with prior knowledge. */
  baseUrl: string;
  /** Deadline of a call that names none. */
  defaultTimeoutMs: number;
  /** Headers every call carries (the gateway's service credential). */
  header: Readonly<Record<string, string>>;
  /** Carries what this transport does not: streaming calls (with `header` added). */
  streams: Transport;
  /** HTTP/2 PING interval that notices a dead connection before a call needs it. */
  pingIntervalMs?: number;
  /**
   * "2" (default): every call a stream of one kept-alive HTTP/2 session (h2c,
   * prior knowledge). "1.1": a pool of kept-alive HTTP/1.1 connections, one
   * call at a time on each (the Connect protocol's unary call is the same
   * over both: https://connectrpc.com/docs/protocol). Streams (`streams`) are
   * not affected.
   */
  httpVersion?: "2" | "1.1";
}

/** The HTTP/1.1 pool: as many connections as calls in flight, up to this many; idle ones close well before the server's keep-alive timeout (65 s). */
const HTTP1_MAX_SOCKETS = 512;
const HTTP1_IDLE_TIMEOUT_MS = 30_000;

/**
 * The Connect protocol's unary call (https://connectrpc.com/docs/protocol)
 * over one kept-alive HTTP/2 session, as a connect-es Transport.
 *
 * The connect-es client wraps every call in interceptor, signal and
 * async-iterable machinery that cost the gateway about a third of its CPU on
 * the token endpoint; this does only what a binary unary call needs, and uses
 * connect's own functions to read responses (validateResponse, trailerDemux,
 * errorFromJsonBytes), so callers see the same ConnectErrors, details and
 * metadata. Deadlines travel as connect-timeout-ms and are enforced here too.
 * A call that provably never reached the server (no connection, a session
 * that is closing, a stream that never got its id, or one refused: RFC 9113
 * §8.7) fails with a CallNotSentError, which the failover may send elsewhere;
 * the Node error is its cause.
 */
export function createConnectUnaryTransport(options: ConnectUnaryTransportOptions): Transport {
  const call = options.httpVersion === "1.1" ? createHttp1Sender(options.baseUrl) : createHttp2Sender(options);
  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: Parameters<Transport["unary"]>[4],
    ) {
      // As connect-es: undefined takes the default, zero or less means none.
      const timeout = timeoutMs === undefined ? options.defaultTimeoutMs : timeoutMs <= 0 ? undefined : timeoutMs;
      const requestHeaders: Record<string, string> = {
        "content-type": "application/proto",
        "connect-protocol-version": "1",
        ...options.header,
      };
      if (timeout !== undefined) requestHeaders[CONNECT_TIMEOUT_HEADER] = String(Math.ceil(timeout));
      // The gateway's client gives a plain record (contract/metadata-headers.ts): copied as it is, without a Headers.
      if (isFieldRecord(header) && isPlainMetadata(header)) Object.assign(requestHeaders, header);
      else new Headers(header).forEach((value, name) => (requestHeaders[name] = value));
      const body = toBinary(method.input, create(method.input, input as never));

      const { status, responseFields, responseBody } = await call(`/${method.parent.typeName}/${method.name}`, requestHeaders, body, timeout, signal);
      const [allFields, headerOut, trailerOut] = demuxTrailers(responseFields);
      const validation = validateResponse(method.methodKind, true, status, allFields);
      if (validation.isUnaryError) throw errorFromJsonBytes(responseBody, appendHeaders(headerOut, trailerOut), validation.unaryError);
      return {
        stream: false as const,
        service: method.parent,
        method,
        header: headerOut,
        message: fromBinary(method.output, responseBody),
        trailer: trailerOut,
      };
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      const withDefaults = new Headers(header);
      for (const [name, value] of Object.entries(options.header)) withDefaults.set(name, value);
      return options.streams.stream(method, signal, timeoutMs, withDefaults, input, contextValues);
    },
  };
}

/** Sends one unary call (its path, headers and body) and gives the raw response. */
type Sender = (path: string, headers: Record<string, string>, body: Uint8Array, timeout: number | undefined, signal: AbortSignal | undefined) => Promise<RawResponse>;

/** Calls as streams of one kept-alive HTTP/2 session, reopened when it goes away. */
function createHttp2Sender(options: ConnectUnaryTransportOptions): Sender {
  let session: http2.ClientHttp2Session | undefined;
  const connect = () => {
    const created = http2.connect(options.baseUrl);
    created.once("connect", () => established.add(created));
    created.on("error", () => {}); // each call sees its own stream's error
    created.on("goaway", () => {
      if (session === created) session = undefined; // new calls open a new session
    });
    created.on("close", () => {
      if (session === created) session = undefined;
    });
    if (options.pingIntervalMs !== undefined) {
      const timer = setInterval(() => {
        if (!created.closed && !created.destroyed) created.ping(() => {});
      }, options.pingIntervalMs);
      timer.unref();
      created.once("close", () => clearInterval(timer));
    }
    created.unref(); // an idle client must not keep the process alive
    session = created;
    return created;
  };
  const current = () => (session !== undefined && !session.closed && !session.destroyed ? session : connect());

  return (path, headers, body, timeout, signal) => send(current, { ":method": "POST", ":path": path, ...headers }, body, timeout, signal);
}

/** Sessions whose connection was established: before that, no byte of any request went out. */
const established = new WeakSet<http2.ClientHttp2Session>();

interface RawResponse {
  status: number;
  /** The response's fields: a plain record of lower-case names when each came once, else a Headers. */
  responseFields: Record<string, string> | Headers;
  responseBody: Uint8Array;
}

function send(
  session: () => http2.ClientHttp2Session,
  requestHeaders: http2.OutgoingHttpHeaders,
  body: Uint8Array,
  timeout: number | undefined,
  signal: AbortSignal | undefined,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ConnectError("the operation was aborted", Code.Canceled));
    let stream: http2.ClientHttp2Stream;
    let used: http2.ClientHttp2Session;
    try {
      used = session();
      stream = used.request(requestHeaders);
    } catch (error) {
      // A session that is closing (GOAWAY received) refuses new streams: nothing was sent.
      return reject(new CallNotSentError(`the connection is closing: ${(error as Error).message}`, error));
    }
    /**
     * Nothing of this call reached the server when the connection was never
     * established, the stream never got its id (its HEADERS frame was never
     * written), or the server refused the stream: RFC 9113 §8.7, REFUSED_STREAM
     * means it was not processed (nghttp2 also closes the streams above a
     * GOAWAY's last stream id with it, §6.8). Node reports a refused stream as
     * an error or as a close; both ask here.
     */
    const notSent = () => !established.has(used) || stream.pending || stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      outcome();
    };
    const cancel = (error: ConnectError) => finish(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(error);
    });
    const timer = timeout === undefined ? undefined : setTimeout(() => cancel(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeout);
    const onAbort = () => cancel(new ConnectError("the operation was aborted", Code.Canceled));
    signal?.addEventListener("abort", onAbort);

    let status = 0;
    let responseFields: Record<string, string> | Headers = {};
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
      responseFields = metadataOfNodeFields(headers);
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () =>
      finish(() =>
        status === 0
          ? // The connection went away after the request went out and before any answer: it may have been processed.
            reject(new ConnectError("the connection closed before a response", Code.Unavailable))
          : resolve({ status, responseFields, responseBody: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }),
      ),
    );
    stream.on("error", (error) =>
      finish(() => reject(notSent() ? new CallNotSentError(`the call was not sent: ${error.message}`, error) : new ConnectError(error.message, Code.Unavailable, undefined, undefined, error))),
    );
    stream.on("close", () => {
      finish(() =>
        reject(
          notSent()
            ? new CallNotSentError(`the call was not sent (the stream closed with code ${stream.rstCode})`)
            : new ConnectError(`the stream closed with code ${stream.rstCode} before a response`, Code.Internal),
        ),
      );
    });
    stream.end(body);
  });
}

/**
 * Calls over a pool of kept-alive HTTP/1.1 connections (Node's Agent, most
 * recently used first). A call that failed before its connection was
 * established never reached the server (a CallNotSentError, which the
 * failover may send elsewhere); once a connection carries it, a failure may
 * have been processed and is Unavailable, as for HTTP/2.
 */
function createHttp1Sender(baseUrl: string): Sender {
  const base = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: HTTP1_MAX_SOCKETS, maxFreeSockets: HTTP1_MAX_SOCKETS, scheduling: "lifo", timeout: HTTP1_IDLE_TIMEOUT_MS });
  const target = { protocol: base.protocol, hostname: base.hostname.replace(/^\[|\]$/g, ""), port: base.port === "" ? 80 : Number(base.port) };
  return (path, headers, body, timeout, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new ConnectError("the operation was aborted", Code.Canceled));
      let connected = false;
      let settled = false;
      const request = http.request(Object.assign({}, target, { agent, method: "POST", path, headers: Object.assign({}, headers, { "content-length": String(body.byteLength) }) }));
      const finish = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        outcome();
      };
      const cancel = (error: ConnectError) =>
        finish(() => {
          request.destroy();
          reject(error);
        });
      const timer = timeout === undefined ? undefined : setTimeout(() => cancel(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeout);
      const onAbort = () => cancel(new ConnectError("the operation was aborted", Code.Canceled));
      signal?.addEventListener("abort", onAbort);
      request.once("socket", (socket) => {
        if (!socket.connecting) connected = true;
        else socket.once("connect", () => (connected = true));
      });
      request.once("response", (response) => {
        const responseFields = fieldsOfRaw(response.rawHeaders);
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.once("end", () =>
          finish(() => resolve({ status: response.statusCode ?? 0, responseFields, responseBody: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) })),
        );
        response.once("error", (error) => finish(() => reject(new ConnectError(error.message, Code.Unavailable, undefined, undefined, error))));
        // The connection went away in the middle of the response: it may have been processed.
        response.once("close", () => {
          if (!response.complete) finish(() => reject(new ConnectError("the connection closed before the whole response", Code.Unavailable)));
        });
      });
      request.once("error", (error) =>
        finish(() =>
          reject(connected ? new ConnectError(error.message, Code.Unavailable, undefined, undefined, error) : new CallNotSentError(`the call was not sent: ${error.message}`, error)),
        ),
      );
      request.end(body);
    });
}

/** The fields of an HTTP/1.1 response head (Node's raw name/value list): a plain record when each name came once, else a Headers. */
function fieldsOfRaw(raw: readonly string[]): Record<string, string> | Headers {
  const record: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (Object.hasOwn(record, name) || name === "__proto__") {
      const out = new Headers();
      for (let j = 0; j < raw.length; j += 2) out.append(raw[j]!, raw[j + 1]!);
      return out;
    }
    record[name] = raw[i + 1]!;
  }
  return record;
}

/**
 * The response's fields, its header and its trailer (unary Connect sends
 * trailers as `trailer-` fields): connect's trailerDemux, over a plain record
 * without building Headers (each costs µs of WebIDL conversions;
 * contract/metadata-headers.ts); a Headers goes to trailerDemux itself.
 */
function demuxTrailers(fields: Record<string, string> | Headers): [all: Headers, header: Headers, trailer: Headers] {
  if (fields instanceof Headers) return [fields, ...trailerDemux(fields)];
  const header: Record<string, string> = {};
  const trailer: Record<string, string> = {};
  for (const name of Object.keys(fields)) {
    if (name.startsWith("trailer-")) trailer[name.substring(8)] = fields[name]!;
    else header[name] = fields[name]!;
  }
  return [RecordHeaders.from(fields), RecordHeaders.from(header), RecordHeaders.from(trailer)];
}
