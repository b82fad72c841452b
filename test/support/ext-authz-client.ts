import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { CheckRequestSchema, CheckResponseSchema, type CheckResponse } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";

/**
 * A client that calls `Check` the way Envoy's ext_authz filter does: gRPC
 * over HTTP/2 cleartext with @grpc/grpc-js (an independent gRPC
 * implementation), the messages encoded from proto/envoy/ with protobuf-es.
 */
export interface ExtAuthzClient {
  check(request: MessageInitShape<typeof CheckRequestSchema>, options?: { deadlineMs?: number }): Promise<CheckResponse>;
  /** The raw call: bytes in, bytes out (for messages the schema cannot express). */
  checkBytes(request: Uint8Array): Promise<Uint8Array>;
  close(): void;
}

const identity = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

const definition = {
  check: {
    path: "/envoy.service.auth.v3.Authorization/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;

const Constructor = grpc.makeGenericClientConstructor(definition, "Authorization");

/** `address` is host:port. */
export function createExtAuthzClient(address: string): ExtAuthzClient {
  const client = new Constructor(address, grpc.credentials.createInsecure());
  const call = (bytes: Uint8Array, deadlineMs = 10_000) =>
    new Promise<Uint8Array>((resolve, reject) => {
      client.makeUnaryRequest(
        definition.check.path,
        identity,
        identity,
        identity(bytes),
        { deadline: Date.now() + deadlineMs },
        (error: grpc.ServiceError | null, value?: Buffer) => (error === null && value !== undefined ? resolve(value) : reject(error)),
      );
    });
  return {
    check: async (request, options = {}) => fromBinary(CheckResponseSchema, await call(toBinary(CheckRequestSchema, create(CheckRequestSchema, request)), options.deadlineMs)),
    checkBytes: (bytes) => call(bytes),
    close: () => client.close(),
  };
}

/** The CheckRequest Envoy sends for one HTTP/1.1 request: method, target, authority, lower-case headers. */
export function envoyCheckRequest(request: {
  method?: string;
  path: string;
  host?: string;
  headers?: Record<string, string>;
  peer?: string;
}): MessageInitShape<typeof CheckRequestSchema> {
  const host = request.host ?? "api.example.test";
  const method = request.method ?? "GET";
  return {
    attributes: {
      source: { address: { address: { case: "socketAddress", value: { address: request.peer ?? "203.0.113.7", portSpecifier: { case: "portValue", value: 40_512 } } } } },
      destination: { address: { address: { case: "socketAddress", value: { address: "10.0.0.2", portSpecifier: { case: "portValue", value: 8_000 } } } } },
      request: {
        http: {
          id: "7d1c2b8e-0f4a-4d6e-9b1a-2c3d4e5f6a7b",
          method,
          // Envoy puts the pseudo-headers in the map too, and every name in lower case.
          headers: { ":authority": host, ":method": method, ":path": request.path, ":scheme": "http", "x-request-id": "7d1c2b8e-0f4a-4d6e-9b1a-2c3d4e5f6a7b", ...lowerCase(request.headers ?? {}) },
          path: request.path,
          host,
          scheme: "http",
          protocol: "HTTP/1.1",
          size: -1n,
        },
      },
    },
  };
}

function lowerCase(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}
