import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code } from "@connectrpc/connect";
import type { ExtAuthzCheck } from "./ext-authz.js";
import { decodeCheckRequest, encodeCheckResponse, type EnvoyCheck } from "./ext-authz-wire.js";

/**
 * The gRPC listener for Envoy's ext_authz `Check`: HTTP/2 with prior
 * knowledge (h2c, what an Envoy `grpc_service` cluster speaks without TLS),
 * one unary method, framed by hand per the gRPC over HTTP/2 protocol
 * (grpc/grpc doc/PROTOCOL-HTTP2.md).
 *
 * Why not connect-node: it serves the method too, but its universal handler
 * (protocol negotiation, compression, interceptors, the compatibility
 * request/response per stream) cost four to five times the server CPU per
 * call of this file with the same fixed answer (measured side by side with a
 * grpc-js client; this file costs about what a bare grpc-js echo server does),
 * and a Check sits in front of every request a mesh serves. One method and
 * one protocol need none of it. The messages are read and written directly on
 * the wire (ext-authz-wire.ts).
 */

export interface ExtAuthzServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting; open sessions get GOAWAY and finish their calls for up to `graceMs`; then the rest are cut. */
  close(graceMs: number): Promise<void>;
}

export const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";
/** gRPC's default receive limit (4 MiB): a CheckRequest carries headers, and a body only when with_request_body is on. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const RESPONSE_HEADERS = { ":status": 200, "content-type": "application/grpc+proto" } as const;

/** Where a failed check is reported (pino's and fastify's loggers both fit). */
export interface ExtAuthzLog {
  error(details: object, message: string): void;
}

export function createExtAuthzServer(options: { check: ExtAuthzCheck; log: ExtAuthzLog; maxMessageBytes?: number }): ExtAuthzServer {
  const { check, log } = options;
  const maxBytes = (options.maxMessageBytes ?? MAX_MESSAGE_BYTES) + 5;
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1_000 } });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    session.on("error", () => session.destroy());
  });

  server.on("stream", (stream, headers) => {
    stream.on("error", () => stream.destroy());
    // PROTOCOL-HTTP2.md: a content-type that is not application/grpc gets HTTP 415.
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !contentType.startsWith("application/grpc")) {
      stream.respond({ ":status": 415 }, { endStream: true });
      return;
    }
    if (headers[":method"] !== "POST" || headers[":path"] !== CHECK_PATH) {
      return trailersOnly(stream, Code.Unimplemented, `gatehouse serves only ${CHECK_PATH}`);
    }
    const chunks: Buffer[] = [];
    let length = 0;
    stream.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) {
        stream.removeAllListeners("data");
        trailersOnly(stream, Code.ResourceExhausted, "the CheckRequest is larger than the gatehouse accepts");
        return;
      }
      chunks.push(chunk);
    });
    stream.on("end", () => {
      if (length > maxBytes || stream.destroyed) return;
      const frame = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
      // One length-prefixed message: compressed flag (1 byte), length (4 bytes, big-endian), message.
      if (frame.length < 5 || frame.readUInt32BE(1) !== frame.length - 5) {
        return trailersOnly(stream, Code.InvalidArgument, "a unary call carries exactly one length-prefixed message");
      }
      // No grpc-accept-encoding is advertised, so a compressed message is a client error.
      if (frame[0] !== 0) return trailersOnly(stream, Code.Unimplemented, "compressed messages are not accepted", { "grpc-accept-encoding": "identity" });
      let request: EnvoyCheck;
      try {
        request = decodeCheckRequest(frame.subarray(5));
      } catch {
        return trailersOnly(stream, Code.InvalidArgument, "the CheckRequest could not be decoded");
      }
      let response;
      try {
        response = check(request);
      } catch (error) {
        return failed(stream, error);
      }
      if (response instanceof Promise) {
        response.then(
          (r) => reply(stream, encodeCheckResponse(r)),
          (error: unknown) => failed(stream, error),
        );
      } else {
        reply(stream, encodeCheckResponse(response));
      }
    });
  });

  /** A bug, never a pass: INTERNAL, which Envoy turns into a denial (failure_mode_allow: false). */
  const failed = (stream: http2.ServerHttp2Stream, error: unknown) => {
    log.error({ err: error }, "ext_authz: the check failed");
    trailersOnly(stream, Code.Internal, "the check failed");
  };

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      const deadline = setTimeout(() => {
        for (const session of sessions) session.destroy();
      }, graceMs);
      await closed;
      clearTimeout(deadline);
    },
  };
}

/** The response message, then `grpc-status: 0` in the trailers. */
function reply(stream: http2.ServerHttp2Stream, message: Uint8Array): void {
  // Envoy may have given up (its per-call timeout) while the token was checked.
  if (stream.destroyed || stream.closed) return;
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(frame);
}

/** A call that ends without a message: status and message in the one HEADERS frame (PROTOCOL-HTTP2.md, Trailers-Only). */
function trailersOnly(stream: http2.ServerHttp2Stream, code: Code, message: string, extra: Record<string, string> = {}): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(Object.assign({}, RESPONSE_HEADERS, { "grpc-status": String(code), "grpc-message": encodeURIComponent(message) }, extra), { endStream: true });
}
