import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { CheckRequestSchema } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { envoyCheckRequest } from "../../test/support/ext-authz-client.js";

/**
 * The calls of bench:guard's ext_authz section (issue 10):
 *
 *   (e0) a bare @grpc/grpc-js unary echo (bench/lib/grpc-echo-main.ts), the yardstick
 *   (e1) the gateway's ext_authz `Check`, cached token (gateway.guard.extAuthz)
 *
 * Both are driven the same way, as Envoy drives its ext_authz cluster: one
 * @grpc/grpc-js channel (one HTTP/2 connection) per phase, calls in flight,
 * closed loop. The Check carries what Envoy sends for a GET with a bearer
 * token (the pseudo-headers, a few ordinary headers, the token); the echo
 * gets the very same bytes back. Every answer is checked.
 */

export const GRPC_ECHO_PATH = "/bench.Echo/Echo";
const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

/** The guard section's addition that turns the Check on (merge into a gateway's `guard`). */
export function extAuthzGuardSection(port: number): Record<string, unknown> {
  return { extAuthz: { host: "127.0.0.1", port } };
}

/** One channel's checked call: resolves when the answer is the expected one, rejects with what was wrong. */
export interface CheckedCall {
  call(): Promise<void>;
  close(): void;
}

/** The CheckRequest Envoy would send for `GET /bench/x` with the token, as bytes. */
export function benchCheckRequest(token: string): Buffer {
  const message = envoyCheckRequest({
    path: "/bench/x",
    host: "bench.example",
    headers: { authorization: `Bearer ${token}`, "user-agent": "bench", accept: "*/*", "x-forwarded-proto": "http" },
  });
  return Buffer.from(toBinary(CheckRequestSchema, create(CheckRequestSchema, message)));
}

/** (e0): the echo at `address` must answer the request's own bytes. */
export function grpcEchoCall(address: string, request: Buffer): CheckedCall {
  return checkedCall(address, GRPC_ECHO_PATH, request, (response) => (response.equals(request) ? undefined : "the echo answered something else"));
}

/** (e1): the Check at `address` must answer OK. */
export function extAuthzCheckCall(address: string, request: Buffer): CheckedCall {
  return checkedCall(address, CHECK_PATH, request, (response) =>
    // CheckResponse.status (field 1) is written first; an OK status is an empty message (0x0a 0x00), a denial carries a code.
    response[0] === 0x0a && response[1] === 0x00 ? undefined : `the Check did not answer OK (${response.subarray(0, 64).toString("hex")}): is the token live and the route /bench/** open to it?`,
  );
}

/** Bytes in, bytes out over one grpc-js channel: no (de)serialisation on the load generator's side. */
function checkedCall(address: string, path: string, request: Buffer, problem: (response: Buffer) => string | undefined): CheckedCall {
  const identity = (bytes: Buffer) => bytes;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return {
    call: () =>
      new Promise<void>((resolve, reject) =>
        client.makeUnaryRequest(path, identity, identity, request, (error: grpc.ServiceError | null, value?: Buffer) => {
          if (error !== null) return reject(error);
          const wrong = problem(value!);
          if (wrong === undefined) resolve();
          else reject(new Error(wrong));
        }),
      ),
    close: () => client.close(),
  };
}
