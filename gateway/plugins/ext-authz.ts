import type { FastifyPluginAsync } from "fastify";
import { createExtAuthzCheck } from "../entrances/ext-authz.js";
import { createExtAuthzServer } from "../entrances/ext-authz-server.js";
import type { GuardPipeline } from "../guard/pipeline.js";

export interface ExtAuthzOptions {
  /** gateway.guard.extAuthz: where the gRPC listener binds. */
  listen: { host: string; port: number };
  /** The sidecar's pipeline: one route table, introspection cache and revocation feed for every entrance. */
  pipeline: GuardPipeline;
  /** How long calls in flight may finish when the gateway closes. */
  drainTimeoutMs: number;
}

/**
 * Envoy's ext_authz `Check` on its own gRPC listener, for the gateway's
 * lifetime: it listens when the gateway is ready (a port that cannot be
 * bound stops the start, as the gateway's own would) and closes with it,
 * letting calls in flight finish (HTTP/2 GOAWAY).
 */
export const extAuthz: FastifyPluginAsync<ExtAuthzOptions> = async (app, options) => {
  const log = app.log.child({ part: "ext-authz" });
  const server = createExtAuthzServer({ check: createExtAuthzCheck(options.pipeline), log });
  app.addHook("onReady", async () => {
    const address = await server.listen(options.listen.port, options.listen.host);
    log.info({ listen: `${address.address}:${address.port}` }, "ext_authz Check listening (gRPC, h2c)");
  });
  app.addHook("onClose", async () => server.close(options.drainTimeoutMs));
};
