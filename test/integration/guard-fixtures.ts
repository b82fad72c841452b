import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { stringify } from "yaml";
import { buildApp } from "../../gateway/app.js";
import { parseGatewayConfig, type GatewayConfig } from "../../gateway/config.js";
import { createGatewayDeps, type GatewayDeps } from "../../gateway/deps.js";
import { baseConfigFile, issueTokens, startTestAuthz, testEnvironment, type TestAuthz } from "../support/authz.js";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { freePort } from "../support/redis-server.js";
import { gatewaySection } from "../support/stack.js";

/**
 * The guard's test bench, all real: an authz service on Redis, one or more
 * gateways from the same configuration file, and an echo upstream. Routes
 * are written per test file against the upstream's URL.
 */

export type FilePatch = (file: Record<string, unknown>) => void;

export interface GuardGateway {
  readonly app: FastifyInstance;
  readonly deps: GatewayDeps;
  readonly config: GatewayConfig;
  readonly url: string;
  /** The value of one sample of a metric at /metrics (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export interface GuardStack {
  readonly authz: TestAuthz;
  readonly gateway: GuardGateway;
  readonly upstream: EchoUpstream;
  readonly issuer: string;
  readonly redisUrl: string;
  /** The configuration file both processes were started from. */
  readonly patch: FilePatch;
  /** Tokens of the `web` client (which may ask for read, write and admin). */
  tokens(scope: string): Promise<{ accessToken: string; refreshToken: string }>;
  close(): Promise<void>;
}

/** The test clients' file, with `admin` open to the web client too. */
function withAdminScope(file: Record<string, unknown>): void {
  const clients = file.clients as Array<Record<string, unknown>>;
  const web = clients.find((c) => c.id === "web")!;
  web.scopes = ["read", "write", "admin"];
}

/**
 * Starts a gateway from the test configuration file after `patch`, against
 * `authzUrl`. The patch's `gateway` section (guard, trustedProxies, ...) is
 * laid over the test defaults.
 */
export async function startGuardGateway(options: {
  authzUrl: string;
  redisUrl: string;
  patch: FilePatch;
  clock?: () => number;
  port?: number;
  /** Several authz replicas (default: just `authzUrl`). */
  endpoints?: string[];
}): Promise<GuardGateway> {
  const port = options.port ?? (await freePort());
  const file = baseConfigFile();
  withAdminScope(file);
  file.issuer = `http://127.0.0.1:${port}`;
  file.requireHttps = false;
  options.patch(file);
  file.gateway = { ...gatewaySection(options.authzUrl, port), ...((file.gateway as Record<string, unknown> | undefined) ?? {}), port };
  if (options.endpoints !== undefined) {
    const gateway = file.gateway as { authz: Record<string, unknown> };
    gateway.authz = { ...gateway.authz, endpoints: options.endpoints };
  }
  const config = parseGatewayConfig(stringify(file), await testEnvironment(options.redisUrl));
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const deps = createGatewayDeps(config, log, options.clock === undefined ? {} : { clock: options.clock });
  const app = await buildApp(deps);
  await app.listen({ host: "127.0.0.1", port });
  const url = `http://127.0.0.1:${port}`;
  return {
    app,
    deps,
    config,
    url,
    metric: async (name, labels = {}) => readMetric(await (await fetch(`${url}${config.paths.metrics}`)).text(), name, labels),
    close: () => app.close(),
  };
}

/** An authz service, a gateway and an echo upstream; `patch` adds routes and the guard section. */
export async function startGuardStack(options: {
  redisUrl: string;
  /** Adds `routes`, `gateway.guard`, scope routes... given the echo upstream's URL. */
  patch: (file: Record<string, unknown>, upstreamUrl: string) => void;
  clock?: () => number;
  /** A fixed port for the authz service, so that it can be stopped and started again. */
  authzPort?: number;
  upstream?: EchoUpstream;
}): Promise<GuardStack> {
  const upstream = options.upstream ?? (await startEchoUpstream());
  const gatewayPort = await freePort();
  const issuer = `http://127.0.0.1:${gatewayPort}`;
  const patch: FilePatch = (file) => {
    withAdminScope(file);
    file.issuer = issuer;
    file.requireHttps = false;
    if (options.authzPort !== undefined) (file.authz as Record<string, unknown>).port = options.authzPort;
    options.patch(file, upstream.url);
  };
  const authz = await startTestAuthz({ redisUrl: options.redisUrl, patch });
  const gateway = await startGuardGateway({ authzUrl: authz.running.url, redisUrl: options.redisUrl, patch, clock: options.clock, port: gatewayPort });
  return {
    authz,
    gateway,
    upstream,
    issuer,
    redisUrl: options.redisUrl,
    patch,
    async tokens(scope) {
      const token = await issueTokens(authz, { scope });
      return { accessToken: token.accessToken, refreshToken: token.refreshToken };
    },
    async close() {
      await gateway.close();
      await authz.close();
      if (options.upstream === undefined) await upstream.close();
    },
  };
}

/** Reads one sample from Prometheus text: the line with this name and at least these labels. */
export function readMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = new Map<string, string>();
    for (const pair of (match[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) present.set(pair[1]!, pair[2]!);
    if (Object.entries(labels).every(([k, v]) => present.get(k) === v)) return Number(match[4]);
  }
  return 0;
}

/** Polls until `check` passes or `timeoutMs` has gone; returns how long it took (ms). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000, intervalMs = 25): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A controllable clock for the gateway: real time plus an offset the test moves. */
export function offsetClock(): { now: () => number; advance(ms: number): void; reset(): void } {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms) => {
      offset += ms;
    },
    reset: () => {
      offset = 0;
    },
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
