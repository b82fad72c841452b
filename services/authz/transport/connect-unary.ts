import { fromBinary, fromJsonString, toBinary, toJsonString, type DescMessage, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import { compressionNegotiate, invokeUnaryImplementation, type Compression } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import type * as http from "node:http";
import * as http2 from "node:http2";
import type { Readable } from "node:stream";
import { metadataOfNodeFields, RecordHeaders } from "../../../contract/metadata-headers.js";
import { CONNECT_TIMEOUT_HEADER } from "../../../contract/metadata.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
type NodeHandler = (request: NodeRequest, response: NodeResponse) => void;

/** A service and its implementation, for the fast path and for a ConnectRouter alike. */
export interface ServiceRegistration {
  readonly spec: ServiceImplSpec;
  register(router: ConnectRouter): void;
}

export function registration<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceRegistration {
  return { spec: createServiceImplSpec(service, impl), register: (router) => router.service(service, impl) };
}

export interface ConnectUnaryOptions {
  services: readonly ServiceRegistration[];
  /** Aborted when the server drains; it is every call's `signal`. */
  shutdownSignal: AbortSignal;
  interceptors: Interceptor[];
  readMaxBytes: number;
  /** The response compressions, in connect-node's order of preference (its adapter gets the same list). */
  acceptCompression: readonly Compression[];
  /** Responses smaller than this are sent uncompressed, as connect-node does. */
  compressMinBytes: number;
  /** Per-call context values, from the address the call came from. */
  contextValues: (remoteAddress: string) => ContextValues;
  /** Everything the fast path does not take: gRPC, gRPC-Web, streams, GET, compressed requests, malformed timeouts. */
  fallback: NodeHandler;
}

const PROTO = "application/proto";
/** Connect protocol: Timeout-Milliseconds is 1 to 10 ASCII digits. */
const TIMEOUT = /^\d{1,10}$/;
const JSON_TYPE = "application/json";

/**
 * The Connect protocol's unary POST (https://connectrpc.com/docs/protocol),
 * served directly on Node's request objects.
 *
 * connect-node's generic adapter turns every request into Web-standard
 * objects (Headers, URL, an async-iterable body) and aborts two AbortSignals
 * with a DOMException when the call completes; measured here that caps a
 * trivial RPC at about 5,000 calls/s, an eighth of what Node's HTTP/2 server
 * does. This path handles only the most common shape of call: POST,
 * `application/proto` or `application/json`, an uncompressed request. It runs
 * the same implementations and the same interceptors through connect's own
 * `invokeUnaryImplementation`, writes errors with connect's own
 * `errorToJsonBytes`, and compresses a large response as connect-node would
 * (`compressionNegotiate`, the same compressions and threshold), so clients
 * cannot tell the paths apart: test/integration/rpc-protocol-suite.ts runs
 * one suite against both (`authz.rpc.fastPath`). Anything else goes to
 * connect-node's adapter (`fallback`).
 *
 * One deliberate difference: a call's `signal` is the server's shutdown
 * signal, not one per call aborted when the call ends or the client goes
 * away. That per-call signal (an AbortController, linked listeners, and a
 * DOMException with a stack trace at the end of every call) was the largest
 * single cost in the profile, and no gatehouse unary handler waits on
 * anything a departed client could cancel.
 */
export interface ConnectUnaryHandler {
  /** For Node's request/response pairs (HTTP/1.1). */
  node: NodeHandler;
  /**
   * For HTTP/2 streams, before Node's compatibility layer: a call this path
   * takes never gets a request and response object; any other stream gets
   * them (Node's public constructors) and goes to `fallback`.
   */
  stream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;
}

export function createConnectUnaryHandler(options: ConnectUnaryOptions): ConnectUnaryHandler {
  const methods = new Map<string, MethodImplSpec & { kind: "unary" }>();
  for (const { spec: service } of options.services) {
    for (const spec of Object.values(service.methods)) {
      if (spec.kind === "unary") methods.set(`/${service.service.typeName}/${spec.method.name}`, spec);
    }
  }
  /** The method of a call this path takes, or undefined. */
  const eligible = (method: string | undefined, path: string | undefined, headers: http2.IncomingHttpHeaders | NodeRequest["headers"]) => {
    const contentType = headers["content-type"];
    const spec = method === "POST" ? methods.get(path ?? "") : undefined;
    if (
      spec === undefined ||
      (contentType !== PROTO && contentType !== JSON_TYPE) ||
      (headers["content-encoding"] !== undefined && headers["content-encoding"] !== "identity") ||
      // A malformed timeout is connect-node's to refuse, in its words.
      (headers[CONNECT_TIMEOUT_HEADER] !== undefined && !TIMEOUT.test(headers[CONNECT_TIMEOUT_HEADER] as string))
    ) {
      return undefined;
    }
    return spec;
  };

  return {
    node(request, response) {
      const spec = eligible(request.method, request.url, request.headers);
      if (spec === undefined) return options.fallback(request, response);
      void serveUnary(spec, exchangeOfNode(request, response), options);
    },
    stream(stream, headers, _flags, rawHeaders) {
      const spec = eligible(headers[":method"], headers[":path"], headers);
      if (spec === undefined) {
        options.fallback(new http2.Http2ServerRequest(stream, headers, {}, rawHeaders), new http2.Http2ServerResponse(stream));
        return;
      }
      void serveUnary(spec, exchangeOfStream(stream, headers), options);
    },
  };
}

/** One unary call, whatever carries it. */
interface Exchange {
  readonly headers: http2.IncomingHttpHeaders | NodeRequest["headers"];
  readonly path: string;
  readonly authority: string;
  readonly remoteAddress: string;
  readBody(maxBytes: number): Promise<Uint8Array>;
  /** False once the client went away: nothing more can be sent. */
  writable(): boolean;
  respond(status: number, headers: Record<string, string>, body: Uint8Array): void;
}

function exchangeOfNode(request: NodeRequest, response: NodeResponse): Exchange {
  return {
    headers: request.headers,
    path: request.url ?? "",
    authority: (request as http2.Http2ServerRequest).authority ?? request.headers.host ?? "localhost",
    remoteAddress: request.socket?.remoteAddress ?? "",
    readBody: (maxBytes) => readBody(request, request.headers, maxBytes),
    writable: () => !response.writableEnded && !response.destroyed,
    respond(status, headers, body) {
      response.writeHead(status, headers);
      response.end(body);
    },
  };
}

function exchangeOfStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): Exchange {
  // A reset or broken stream must not crash the process; the answer is dropped (writable() is false).
  stream.on("error", () => {});
  return {
    headers,
    path: headers[":path"] ?? "",
    authority: headers[":authority"] ?? headers.host ?? "localhost",
    remoteAddress: stream.session?.socket?.remoteAddress ?? "",
    readBody: (maxBytes) => readBody(stream, headers, maxBytes),
    writable: () => !stream.destroyed && !stream.closed && !stream.writableEnded,
    respond(status, responseHeaders, body) {
      stream.respond({ ":status": status, ...responseHeaders });
      stream.end(body);
    },
  };
}

async function serveUnary(spec: MethodImplSpec & { kind: "unary" }, exchange: Exchange, options: ConnectUnaryOptions): Promise<void> {
  const binary = exchange.headers["content-type"] === PROTO;
  const timeout = exchange.headers[CONNECT_TIMEOUT_HEADER] as string | undefined;
  const deadline = timeout === undefined ? undefined : Date.now() + Number(timeout);
  const context = createContext(spec, exchange, options.contextValues(exchange.remoteAddress), options.shutdownSignal, deadline);
  let status = 200;
  let body: Uint8Array;
  let timer: NodeJS.Timeout | undefined;
  try {
    const bytes = await exchange.readBody(options.readMaxBytes);
    const input = parseInput(spec.method.input, binary, bytes);
    const invocation = invokeUnaryImplementation(spec, context, input, options.interceptors);
    // The client's deadline: answer deadline_exceeded when it passes, as connect-node does.
    const output = await (deadline === undefined
      ? invocation
      : Promise.race([
          invocation,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new ConnectError("the operation timed out", Code.DeadlineExceeded)), Math.max(0, deadline - Date.now()));
          }),
        ]));
    body = binary ? toBinary(spec.method.output, output) : new TextEncoder().encode(toJsonString(spec.method.output, output));
  } catch (error) {
    const connectError = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
    status = codeToHttpStatus(connectError.code);
    context.responseHeader.set("content-type", JSON_TYPE);
    connectError.metadata.forEach((value, key) => context.responseHeader.set(key, value));
    body = errorToJsonBytes(connectError, {});
  } finally {
    clearTimeout(timer);
  }
  if (!exchange.writable()) return;
  // Connect protocol: a unary response may be compressed with an encoding the client accepts (Accept-Encoding).
  const accepted = exchange.headers["accept-encoding"];
  if (accepted !== undefined && body.byteLength >= options.compressMinBytes) {
    const compression = compressionNegotiate([...options.acceptCompression], null, String(accepted), "accept-encoding").response;
    if (compression !== null) {
      body = await compression.compress(body);
      context.responseHeader.set("content-encoding", compression.name);
      if (!exchange.writable()) return;
    }
  }
  // Unary Connect sends trailers as `trailer-` prefixed headers (what connect's trailerMux does).
  const out: Record<string, string> = { "content-type": binary ? PROTO : JSON_TYPE, "content-length": String(body.byteLength) };
  context.responseHeader.forEach((value, key) => (out[key] = value));
  context.responseTrailer.forEach((value, key) => (out[`trailer-${key}`] = value));
  exchange.respond(status, out, body);
}

function parseInput(desc: DescMessage, binary: boolean, bytes: Uint8Array) {
  try {
    // The defaults of connect's router: unknown JSON fields are ignored.
    return binary ? fromBinary(desc, bytes) : fromJsonString(desc, new TextDecoder("utf-8", { fatal: true }).decode(bytes), { ignoreUnknownFields: true });
  } catch (error) {
    throw new ConnectError(
      `cannot decode message ${desc.typeName} from ${binary ? "binary" : "JSON"}: ${error instanceof Error ? error.message : String(error)}`,
      Code.InvalidArgument,
    );
  }
}

function readBody(source: Readable, headers: { "content-length"?: string | undefined }, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(headers["content-length"] ?? 0);
  if (declared > maxBytes) {
    source.resume();
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) {
        source.removeListener("data", onData);
        source.resume();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    source.on("data", onData);
    source.once("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)));
    source.once("error", (error: Error) => reject(new ConnectError(error.message, Code.Aborted)));
  });
}

function tooLarge(maxBytes: number): ConnectError {
  return new ConnectError(`message size is larger than configured readMaxBytes ${maxBytes}`, Code.ResourceExhausted);
}

function createContext(spec: MethodImplSpec, exchange: Exchange, values: ContextValues, signal: AbortSignal, deadline: number | undefined): HandlerContext {
  return {
    method: spec.method,
    service: spec.method.parent,
    requestMethod: "POST",
    protocolName: "connect",
    requestHeader: requestHeaderOf(exchange.headers as Record<string, string | string[] | undefined>),
    // The content type is written with the response (serveUnary); an error sets its own.
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values,
    url: `http://${exchange.authority}${exchange.path}`,
    timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
    signal,
  };
}

/**
 * The call's request metadata as Headers: when each field came once, Node's
 * object is read as it is (RecordHeaders: no WebIDL conversion of every field
 * of every call); a repeated field goes the long way (metadataOfNodeFields).
 */
function requestHeaderOf(raw: Record<string, string | string[] | undefined>): Headers {
  const fields = metadataOfNodeFields(raw);
  return fields instanceof Headers ? fields : RecordHeaders.from(fields);
}
