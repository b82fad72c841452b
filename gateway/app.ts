import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { GatewayDeps } from "./deps.js";
import { health } from "./plugins/health.js";
import { oauthErrors } from "./plugins/oauth-errors.js";

/**
 * Builds the gateway's fastify instance: one plugin per concern. It never
 * listens (main.ts does), so tests can inject() into it or listen on port 0.
 */
export async function buildApp(deps: GatewayDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // X-Forwarded-For/-Proto are believed only from these proxies.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    disableRequestLogging: true,
    routerOptions: { maxParamLength: 200 },
  });

  await app.register(oauthErrors, {});
  await app.register(health, { authz: deps.authz, paths: config.paths, draining: deps.draining });
  return app;
}
