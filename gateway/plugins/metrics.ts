import type { FastifyPluginAsync } from "fastify";
import type { GatewayMetrics } from "../metrics.js";

export interface MetricsOptions {
  metrics: GatewayMetrics;
  path: string;
}

/** GET <paths.metrics>: the registry in the Prometheus text format. */
export const metrics: FastifyPluginAsync<MetricsOptions> = async (app, options) => {
  app.get(options.path, async (_request, reply) => {
    const body = await options.metrics.registry.metrics();
    return reply.header("cache-control", "no-store").type(options.metrics.registry.contentType).send(body);
  });
};
