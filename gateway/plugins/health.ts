import type { FastifyPluginAsync } from "fastify";
import type { AuthzClient } from "../rpc/authz-client.js";

export interface HealthOptions {
  authz: AuthzClient;
  paths: { healthz: string; readyz: string };
  /** True once the process is draining: readiness goes false before anything closes. */
  draining: () => boolean;
}

/**
 * Liveness and readiness for Kubernetes probes. /healthz: the process answers.
 * /readyz: not draining, and the authz service answers (a gateway that
 * cannot check tokens must not receive traffic).
 */
export const health: FastifyPluginAsync<HealthOptions> = async (app, options) => {
  app.get(options.paths.healthz, async (_request, reply) => reply.header("cache-control", "no-store").send({ status: "ok" }));

  app.get(options.paths.readyz, async (_request, reply) => {
    reply.header("cache-control", "no-store");
    if (options.draining()) return reply.code(503).send({ status: "draining" });
    try {
      await options.authz.authz.getMetadata({}, { timeoutMs: 1_000 });
      return reply.send({ status: "ready" });
    } catch {
      return reply.code(503).send({ status: "authz service unreachable" });
    }
  });
};
