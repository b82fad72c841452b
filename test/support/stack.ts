import type { FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import type { DepsOverrides } from "../../services/authz/deps.js";
import { stringify } from "yaml";
import { buildApp } from "../../gateway/app.js";
import { parseGatewayConfig, type GatewayConfig } from "../../gateway/config.js";
import { createGatewayDeps, type GatewayDeps } from "../../gateway/deps.js";
import { baseConfigFile, startTestAuthz, testEnvironment, type TestAuthz } from "./authz.js";
import { freePort } from "./redis-server.js";
import { scaledBudget } from "./scaled-budget.js";

export interface TestGateway {
  readonly app: FastifyInstance;
  readonly deps: GatewayDeps;
  readonly config: GatewayConfig;
  /** http://127.0.0.1:<port>, which is also the issuer. */
  readonly url: string;
  close(): Promise<void>;
}

export interface TestStack {
  readonly authz: TestAuthz;
  readonly gateway: TestGateway;
  /** The issuer: the gateway's own URL, so that discovery (RFC 8414 §3.3) validates. */
  readonly issuer: string;
  close(): Promise<void>;
}

/** The gateway section the tests start from; patch it per test file. */
export function gatewaySection(authzUrl: string, port: number): Record<string, unknown> {
  return {
    host: "127.0.0.1",
    port,
    authz: {
      endpoints: [authzUrl],
      serviceCredential: { env: "TEST_SERVICE_CREDENTIAL" },
      clientId: "gatehouse-gateway",
      clientSecret: { env: "TEST_GATEWAY_CLIENT_SECRET" },
      // The deadline of each call to authz (2 s by default) is a budget: a busy machine
      // stretches a call past it and the gateway answers 503, which no test here is about.
      timeoutMs: Math.min(scaledBudget(2_000), 30_000),
    },
  };
}

/**
 * A real authz service (on `redisUrl`) and a real gateway listening on a
 * loopback port, both from one configuration file as in production. The
 * issuer is the gateway's URL over plain http, so requireHttps is off.
 */
export async function startTestStack(
  options: {
    redisUrl: string;
    patch?: (file: Record<string, unknown>) => void;
    gatewayOverrides?: Partial<Pick<GatewayDeps, "clock" | "draining">>;
    authzOverrides?: DepsOverrides;
    /** Loggers to read what each process said (silent by default). */
    authzLog?: Logger;
    gatewayLog?: Logger;
  },
): Promise<TestStack> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const patchIssuer = (file: Record<string, unknown>) => {
    file.issuer = issuer;
    file.requireHttps = false;
  };
  const authz = await startTestAuthz({
    redisUrl: options.redisUrl,
    overrides: options.authzOverrides,
    log: options.authzLog,
    patch: (file) => {
      patchIssuer(file);
      options.patch?.(file);
    },
  });
  const file = baseConfigFile();
  patchIssuer(file);
  file.gateway = gatewaySection(authz.running.url, port);
  options.patch?.(file);
  const config = parseGatewayConfig(stringify(file), await testEnvironment(options.redisUrl));
  const log = options.gatewayLog ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const deps = createGatewayDeps(config, log, options.gatewayOverrides);
  const app = await buildApp(deps);
  await app.listen({ host: "127.0.0.1", port });
  const gateway: TestGateway = { app, deps, config, url: issuer, close: () => app.close() };
  return {
    authz,
    gateway,
    issuer,
    async close() {
      await gateway.close();
      await authz.close();
    },
  };
}
