/**
 * npm run bench:in-process — the two ways the all-in-one process can call the
 * authz service (services/authz/transport/in-process-transport.ts), side by
 * side in this one process: "direct" (connect's invokeUnaryImplementation with
 * the server's interceptors) and "router" (connect's createRouterTransport,
 * the whole Connect protocol over in-memory streams). Same handlers, same
 * interceptors, the memory store, so what differs is the way in. Prints
 * calls/s and the CPU time per call of this process; rounds interleave.
 *
 *   BENCH_SECONDS (default 3)        duration of each measured phase
 *   BENCH_ROUNDS (default 2)         rounds per kind
 *   BENCH_CONCURRENCY (default 32)   calls in flight
 */
import { createClient } from "@connectrpc/connect";
import { pino } from "pino";
import { AuthorizationService } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { createAuthzService } from "../services/authz/app.js";
import type { InProcessKind } from "../services/authz/transport/in-process-transport.js";
import { basic, obtainCode, pkcePair, SECRETS, testConfig, WEB_REDIRECT } from "../test/support/authz.js";
import { SERVICE_CREDENTIAL_HEADER } from "../contract/metadata.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);

const config = await testConfig();
const service = await createAuthzService(config, pino({ level: "silent" }));
const clients = {
  direct: createClient(AuthorizationService, service.inProcessTransport("direct")),
  router: createClient(AuthorizationService, service.inProcessTransport("router")),
} satisfies Record<InProcessKind, unknown>;

// One live access token to introspect, as the guard does on a cache miss.
const asGateway = { headers: { [SERVICE_CREDENTIAL_HEADER]: SECRETS.service } };
const { verifier, challenge } = pkcePair();
const { code } = await obtainCode({ authz: clients.direct, asGateway }, { clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: challenge });
const { token } = await clients.direct.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: verifier }, basic("web", SECRETS.web));
const accessToken = token!.accessToken;
const asResourceServer = basic("resource-server", SECRETS.resourceServer);

async function phase(kind: InProcessKind, durationSeconds: number) {
  const client = clients[kind];
  const until = performance.now() + durationSeconds * 1000;
  let calls = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const result = await client.introspect({ token: accessToken }, asResourceServer);
        if (!result.active) throw new Error("the token is not active");
        calls++;
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { kind, calls, perSecond: calls / wall, cpuMicrosPerCall: (cpu.user + cpu.system) / calls };
}

for (const kind of ["direct", "router"] as const) await phase(kind, 1); // warm-up: JIT
const results: Array<Awaited<ReturnType<typeof phase>>> = [];
for (let round = 0; round < rounds; round++) for (const kind of ["direct", "router"] as const) results.push(await phase(kind, seconds));
process.stdout.write(`Introspect in process (memory store, ${concurrency} in flight, ${seconds} s x ${rounds} rounds; CPU of this one process):\n`);
for (const r of results) process.stdout.write(`  ${r.kind.padEnd(7)} ${Math.round(r.perSecond).toString().padStart(7)} calls/s   ${r.cpuMicrosPerCall.toFixed(1).padStart(6)} µs CPU per call\n`);
await service.close();
