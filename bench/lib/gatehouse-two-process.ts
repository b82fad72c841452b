import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  AuthorizeRequestSchema,
  AuthorizeResponseSchema,
  DecideRequestSchema,
  DecideResponseSchema,
} from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { runNode, type RunningProcess } from "../../test/support/process.js";
import { freePort } from "../../test/support/redis-server.js";
import { createConnectH2Client, type ConnectH2Client } from "./connect-h2.js";
import { waitForReady, type Contender, type ContenderSetup, type HopCalls, type RunningContender } from "./contender.js";
import { runLoad } from "./load.js";
import { BENCH_SUBJECT, benchTenant, writeBenchStackConfig } from "./stack-config.js";

/** A running two-process gatehouse: the contender's face plus what bench:token needs of it. */
export interface GatehouseTwoProcess extends RunningContender {
  /** Codes for `scope` (default read); "read openid" mints OpenID Connect codes, whose exchange signs an ID Token too. */
  mintCodes(count: number, scope?: string): Promise<string[]>;
  /** The named tenants configured (options.tenants; 0: none). */
  readonly tenants: number;
  /**
   * Codes spread round-robin over the named tenants (each minted with its
   * tenant named, issue 11), with the path of that tenant's token endpoint.
   */
  mintTenantCodes(count: number): Promise<Array<{ code: string; tokenPath: string }>>;
  readonly gatewayUrl: string;
  /** The authz RPC port (in the all-in-one mode, the one process's optional RPC port). */
  readonly authzPort: number;
  readonly gatewayPort: number;
  /** What the processes logged so far (JSON lines, warn and above). */
  output(): string;
}

/** How gatehouse is deployed: two processes (scale-out), or one (all-in-one/main.ts, npm start). */
export type GatehouseMode = "split" | "all-in-one";

/** The same production build as one all-in-one process: the gateway calls the authz service in process. */
export const gatehouseAllInOne: Contender = {
  name: "gatehouse all-in-one",
  side: "gatehouse",
  start: (setup) => startGatehouseTwoProcess(setup, { name: "peers-all-in-one", mode: "all-in-one" }),
};

/**
 * gatehouse as deployed for scale-out: the authz service and the gateway,
 * each its own process from the production build (`npm run build`: dist/,
 * plain node), on the setup's Redis; with `mode: "all-in-one"`, the two in one
 * process (its RPC port served, allInOne.serveRpc's default). Codes are minted
 * as the consent page would: Authorize + Decide over RPC straight to the authz service.
 */
export async function startGatehouseTwoProcess(
  setup: ContenderSetup,
  options: {
    name?: string;
    mode?: GatehouseMode;
    /** More environment for the processes (OTEL_* for bench:token's BENCH_TRACING). */
    env?: Record<string, string>;
    /** Named tenants to configure besides the top level's (BENCH_TENANTS). */
    tenants?: number;
    /** More of the gateway section (a variant: writeBenchStackConfig's `gateway`). */
    gateway?: { authz?: Record<string, unknown> } & Record<string, unknown>;
    /** A command that runs each process's node (callgrind, lib/callgrind.ts); the deadlines stretch with it. */
    wrapper?: readonly string[];
  } = {},
): Promise<GatehouseTwoProcess> {
  const name = options.name ?? "peers";
  const allInOne = options.mode === "all-in-one";
  const authzPort = await freePort();
  const gatewayPort = await freePort();
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const dir = mkdtempSync(join(tmpdir(), `gatehouse-bench-${name}-`));
  const configFile = writeBenchStackConfig({
    dir,
    name,
    secrets: setup.secrets,
    authzPort,
    gatewayPort,
    lifetimes: { code: setup.codeLifetimeSeconds },
    tenants: options.tenants ?? 0,
    ...(options.gateway === undefined ? {} : { gateway: options.gateway }),
    stretchDeadlines: options.wrapper !== undefined,
  });
  const env = { GATEHOUSE_CONFIG: configFile, REDIS_URL: setup.redisUrl, LOG_LEVEL: "warn", ...setup.secrets.env, ...options.env };
  const profile = (process: string) =>
    setup.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${setup.profileDir}`, `--cpu-prof-name=${name}-${process}.cpuprofile`];
  const wrapped = options.wrapper === undefined ? {} : { wrapper: options.wrapper };
  const authz = allInOne ? undefined : runNode("dist/services/authz/main.js", { env, nodeArgs: profile("authz"), ...wrapped });
  let gateway: RunningProcess | undefined;
  let rpc: ConnectH2Client | undefined;
  const stop = async () => {
    rpc?.close();
    await gateway?.stop();
    await authz?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    gateway = allInOne
      ? runNode("dist/all-in-one/main.js", { env, nodeArgs: profile("all-in-one"), ...wrapped })
      : runNode("dist/gateway/main.js", { env, nodeArgs: profile("gateway"), ...wrapped });
    // Ready means the gateway answers and reaches the authz service (health plugin).
    await waitForReady(`${gatewayUrl}/readyz`, () => `${authz?.output() ?? ""}${gateway?.output() ?? ""}`, options.wrapper === undefined ? undefined : 600_000);
    rpc = createConnectH2Client(`http://127.0.0.1:${authzPort}`, { sessions: 4 });
  } catch (error) {
    await stop();
    throw error;
  }

  const client = rpc;
  const asGateway = { "gatehouse-service-credential": setup.secrets.service };
  const path = (method: string) => `/gatehouse.v1.AuthorizationService/${method}`;
  /** The Authorize request of a code for `scope` (with a nonce when it is an OpenID Connect request). */
  const authorizeBody = (scope: string) =>
    toBinary(
      AuthorizeRequestSchema,
      create(AuthorizeRequestSchema, {
        responseType: "code",
        clientId: "web",
        redirectUri: setup.redirectUri,
        scope,
        codeChallenge: setup.codeChallenge,
        codeChallengeMethod: "S256",
        nonce: scope.split(" ").includes("openid") ? "bench-nonce-0123456789" : "",
      }),
    );
  const bodies = new Map<string, Uint8Array>();
  /** Authorize + Decide over RPC, as the consent page would: one fresh code. */
  const mintCode = async (scope: string, tenant?: string) => {
    if (!bodies.has(scope)) bodies.set(scope, authorizeBody(scope));
    const headers = tenant === undefined ? asGateway : { ...asGateway, "gatehouse-tenant": tenant };
    const { requestId } = fromBinary(AuthorizeResponseSchema, await client.call(path("Authorize"), bodies.get(scope)!, headers));
    const decision = toBinary(DecideRequestSchema, create(DecideRequestSchema, { requestId, subject: BENCH_SUBJECT, authTime: 1n, approved: true }));
    const { redirectUrl } = fromBinary(DecideResponseSchema, await client.call(path("Decide"), decision, headers));
    return new URL(redirectUrl).searchParams.get("code")!;
  };
  const tenants = options.tenants ?? 0;

  return {
    tokenUrl: `${gatewayUrl}/oauth2/token`,
    introspectUrl: `${gatewayUrl}/oauth2/introspect`,
    processes: authz === undefined ? { "all-in-one": gateway.child.pid } : { gateway: gateway.child.pid, "authz service": authz.child.pid },
    gatewayUrl,
    authzPort,
    gatewayPort,
    output: () => `${authz?.output() ?? ""}${gateway!.output()}`,
    ...(allInOne ? {} : { hopCalls: () => readHopCalls(`${gatewayUrl}/metrics`) }),
    async mintCodes(count, scope = "read") {
      const codes: string[] = [];
      const minted = await runLoad("mint", { concurrency: 64, seconds: 120, stopWhen: () => codes.length >= count }, async () => void codes.push(await mintCode(scope)));
      if (codes.length < count) throw new Error(`gatehouse minted ${codes.length} of ${count} codes; first error: ${minted.firstError}`);
      return codes.slice(0, count);
    },
    tenants,
    async mintTenantCodes(count) {
      if (tenants === 0) throw new Error("no tenants configured");
      const codes: Array<{ code: string; tokenPath: string }> = [];
      let turn = 0;
      const minted = await runLoad("mint", { concurrency: 64, seconds: 120, stopWhen: () => codes.length >= count }, async () => {
        const tenant = benchTenant(turn++ % tenants);
        codes.push({ code: await mintCode("read", tenant), tokenPath: `/${tenant}/oauth2/token` });
      });
      if (codes.length < count) throw new Error(`gatehouse minted ${codes.length} of ${count} tenant codes; first error: ${minted.firstError}`);
      return codes.slice(0, count);
    },
    stop,
  };
}

/** The gateway's counters of its calls to the authz service, from its Prometheus text. */
async function readHopCalls(metricsUrl: string): Promise<HopCalls> {
  const text = await (await fetch(metricsUrl)).text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    alone: value(/^gatehouse_gateway_authz_calls_total\{sent="alone"\} (\S+)$/m),
    batched: value(/^gatehouse_gateway_authz_calls_total\{sent="batched"\} (\S+)$/m),
    batches: value(/^gatehouse_gateway_authz_batches_total (\S+)$/m),
  };
}

/** The two-process deployment as a bench:peers contender. */
export const gatehouseTwoProcess: Contender = {
  name: "gatehouse (gateway + authz)",
  side: "gatehouse",
  start: (setup) => startGatehouseTwoProcess(setup),
};

/**
 * Variants measured beside the defaults in the same run (bench:peers
 * BENCH_VARIANTS): what a change is worth, before and after, on the same
 * machine in the same minutes.
 */
export const GATEHOUSE_VARIANTS: Readonly<Record<string, Contender>> = {
  // The token and introspection endpoints through fastify's request cycle only (before plugins/lean-token-endpoints.ts).
  "split-fastify": {
    name: "gatehouse split, endpoints through fastify",
    side: "gatehouse",
    start: (setup) => startGatehouseTwoProcess(setup, { name: "peers-split-fastify", gateway: { leanEndpoints: false } }),
  },
  "all-in-one-fastify": {
    name: "gatehouse all-in-one, endpoints through fastify",
    side: "gatehouse",
    start: (setup) => startGatehouseTwoProcess(setup, { name: "peers-aio-fastify", mode: "all-in-one", gateway: { leanEndpoints: false } }),
  },
  // Every call of the gateway → authz hop alone, as before BatchService (gateway.authz.batchCalls: false).
  "split-unbatched": {
    name: "gatehouse split, calls not batched",
    side: "gatehouse",
    start: (setup) => startGatehouseTwoProcess(setup, { name: "peers-split-unbatched", gateway: { authz: { batchCalls: false } } }),
  },
  // The gateway → authz hop over HTTP/1.1 keep-alive connections instead of one HTTP/2 session.
  "split-http1": {
    name: "gatehouse split, hop over HTTP/1.1",
    side: "gatehouse",
    start: (setup) => startGatehouseTwoProcess(setup, { name: "peers-split-http1", gateway: { authz: { httpVersion: "1.1" } } }),
  },
};
