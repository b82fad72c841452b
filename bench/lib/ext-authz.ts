import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { CheckRequestSchema } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { envoyCheckRequest } from "../../test/support/ext-authz-client.js";
import { runLoad, type LoadResult } from "./load.js";

/**
 * The ext_authz phases of bench:guard (issue 10), in a module of their own so
 * that bench/guard.ts can run them beside its HTTP phases:
 *
 *   (g) a bare @grpc/grpc-js unary echo (bench/lib/grpc-echo-main.ts), the yardstick
 *   (e) the gateway's ext_authz `Check`, cached token (gateway.guard.extAuthz)
 *
 * Both are driven the same way, as Envoy drives its ext_authz cluster: one
 * @grpc/grpc-js channel (one HTTP/2 connection), `concurrency` calls in
 * flight, closed loop. The Check carries what Envoy sends for a GET with a
 * bearer token (the pseudo-headers, a few ordinary headers, the token); the
 * echo gets the very same bytes back. The bar: e/g ≥ 0.6. CPU per call of the
 * serving process is printed too: on a shared two-core machine it is steadier
 * than req/s, and the load generator's own cost weighs on both phases alike.
 */

export const GRPC_ECHO_PATH = "/bench.Echo/Echo";
const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

/** The guard section's addition that turns the Check on (merge into the cached gateway's `guard`). */
export function extAuthzGuardSection(port: number): Record<string, unknown> {
  return { extAuthz: { host: "127.0.0.1", port } };
}

export interface ExtAuthzPhases {
  readonly echo: LoadResult;
  readonly check: LoadResult;
  /** Printable: the two phases, the ratio against the bar, CPU per call. */
  readonly summary: string;
}

/**
 * Runs (g) then (e), each 1 s of warm-up and `seconds` measured. `pids` names
 * the processes whose CPU is measured; `echo` and `gateway` name the serving
 * ones (keys of `pids`).
 */
export async function runExtAuthzPhases(options: {
  echoAddress: string;
  checkAddress: string;
  token: string;
  concurrency: number;
  seconds: number;
  pids: Record<string, number | undefined>;
  serving: { echo: string; gateway: string };
}): Promise<ExtAuthzPhases> {
  const request = Buffer.from(
    toBinary(
      CheckRequestSchema,
      create(
        CheckRequestSchema,
        envoyCheckRequest({
          path: "/bench/x",
          host: "bench.example",
          headers: { authorization: `Bearer ${options.token}`, "user-agent": "bench", accept: "*/*", "x-forwarded-proto": "http" },
        }),
      ),
    ),
  );
  const phase = async (name: string, address: string, path: string, check: (response: Buffer) => void) => {
    const client = unaryClient(address, path);
    try {
      const call = async () => check(await client.call(request));
      await runLoad(`${name} warm-up`, { concurrency: options.concurrency, seconds: 1 }, call);
      return await runLoad(name, { concurrency: options.concurrency, seconds: options.seconds, cpu: options.pids }, call);
    } finally {
      client.close();
    }
  };
  const echo = await phase("(g) bare grpc-js unary echo", options.echoAddress, GRPC_ECHO_PATH, (response) => {
    if (response.length !== request.length) throw new Error("the echo answered something else");
  });
  const check = await phase("(e) ext_authz Check, cached token", options.checkAddress, CHECK_PATH, (response) => {
    // CheckResponse.status (field 1) is written first; an OK status is an empty message (0x0a 0x00), a denial carries a code.
    if (response[0] !== 0x0a || response[1] !== 0x00) throw new Error("the Check did not answer OK: is the token cached and the route /bench/** open to it?");
  });
  return { echo, check, summary: summarise(echo, check, options.serving) };
}

function summarise(echo: LoadResult, check: LoadResult, serving: { echo: string; gateway: string }): string {
  const perCall = (r: LoadResult, who: string) => ((r.cpu?.[who] ?? NaN) / 100) * 1e6 / r.rps;
  const ratio = check.rps / echo.rps;
  const lines = [
    ...[echo, check].map((r) => `${r.name.padEnd(36)} ${r.rps.toFixed(0).padStart(7)} calls/s  p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  ${r.requests} calls, ${r.errors} errors${r.firstError === undefined ? "" : ` (${r.firstError})`}`),
    `e/g = ${ratio.toFixed(2)} (bar ≥ 0.6: ${ratio >= 0.6 ? "met" : "MISSED"})`,
    `µs of server CPU per call: echo ${perCall(echo, serving.echo).toFixed(0)}, gateway Check ${perCall(check, serving.gateway).toFixed(0)} ` +
      `(g's / e's: ${(perCall(echo, serving.echo) / perCall(check, serving.gateway)).toFixed(2)})`,
    ...[echo, check].map((r) => `${r.name}: CPU ${Object.entries(r.cpu ?? {}).filter(([, pct]) => pct >= 1).map(([who, pct]) => `${who} ${pct.toFixed(0)}%`).join(", ")} (of one core)`),
  ];
  return lines.join("\n");
}

/** Bytes in, bytes out over one grpc-js channel: no (de)serialisation on the load generator's side. */
function unaryClient(address: string, path: string): { call(request: Buffer): Promise<Buffer>; close(): void } {
  const identity = (bytes: Buffer) => bytes;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return {
    call: (request) =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(path, identity, identity, request, (error: grpc.ServiceError | null, value?: Buffer) => (error === null ? resolve(value!) : reject(error))),
      ),
    close: () => client.close(),
  };
}
