/**
 * The baseline (e0) of the ext_authz section of bench:guard: a bare @grpc/grpc-js
 * server with one unary method that answers each message with itself, no
 * decoding, as a process of its own. PORT picks the port.
 */
import * as grpc from "@grpc/grpc-js";
import { GRPC_ECHO_PATH } from "./ext-authz.js";

const identity = (bytes: Buffer) => bytes;
const server = new grpc.Server();
server.addService(
  { echo: { path: GRPC_ECHO_PATH, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
  { echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request) },
);
server.bindAsync(`127.0.0.1:${Number(process.env.PORT ?? 0)}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error !== null) throw error;
  process.stdout.write(`grpc echo listening on ${port}\n`);
});
process.once("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
