import { ServerResponse, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config.js";
import { createSidecar } from "../entrances/sidecar.js";
import { isCanonical, type GuardPipeline } from "../guard/pipeline.js";
import { normalizeTarget, type NormalizedTarget } from "../guard/rules.js";
import type { GatewayMetrics } from "../metrics.js";
import type { RequestTracing } from "../request-tracing.js";

/**
 * The resource guard's wiring into the gateway (DESIGN.md, "The gateway's
 * guard"): the decisions are the pipeline's (gateway/guard/pipeline.ts), the
 * translation to and from Node's request the sidecar's
 * (gateway/entrances/sidecar.ts). Here they are connected to fastify and to
 * the server's events, three ways in:
 *
 * 1. beneath fastify, for every plain request that is not for one of the
 *    gateway's own endpoints (no fastify request cycle on the hot path);
 * 2. through fastify's catch-all route, for what node hands over outside its
 *    'request' event (WebSocket handshakes, `Expect: 100-continue`) and for
 *    other methods on the gateway's own paths: taken over in onRequest, so
 *    no body is parsed (bodyLimit does not apply; bodies stream upstream);
 * 3. the server's 'upgrade' and 'checkContinue' events, routed through (2).
 */

export interface GuardOptions {
  config: Pick<GatewayConfig, "guard" | "trustedProxies">;
  /** config.requireHttps: the raw path applies the same check as plugins/require-https.ts. */
  requireHttps: boolean;
  /** Installs the guard's entry beneath fastify: it returns false for what fastify should serve. */
  setRawEntry: (entry: (req: IncomingMessage, res: ServerResponse) => boolean) => void;
  /** The request id of a raw request, as fastify's genReqId would give it. */
  requestIdOf: (req: IncomingMessage) => string;
  /** The process's pipeline (GatewayDeps.guard): started when the app is ready, closed with it. */
  pipeline: GuardPipeline;
  metrics: GatewayMetrics;
  /** Spans and log ids of guarded requests (request-tracing.ts); none when absent. */
  requestTracing?: RequestTracing;
}

const plugin: FastifyPluginAsync<GuardOptions> = async (app, options) => {
  const sidecar = createSidecar({
    config: options.config,
    requireHttps: options.requireHttps,
    pipeline: options.pipeline,
    proxy: app.upstreamProxy,
    metrics: options.metrics,
    log: app.log as unknown as Logger,
    requestIdOf: options.requestIdOf,
    ...(options.requestTracing === undefined ? {} : { requestTracing: options.requestTracing }),
  });
  app.addHook("onReady", async () => options.pipeline.start());

  // 1. Beneath fastify (installed by buildApp's server).
  options.setRawEntry(sidecar.serveRaw);

  // 2. Through fastify: the catch-all route takes the request over and never hands it on.
  app.route({
    method: app.supportedMethods,
    url: "*",
    config: { guard: true },
    onRequest: (request, reply, _done) => {
      reply.hijack();
      sidecar.serve(request.raw, reply.raw, request.id, request.gatehouseTarget ?? undefined);
    },
    handler: async (_request, reply) => reply.code(500).send(),
  });

  // Step 1 for what fastify routes: the target is normalised once, and what
  // cannot be normalised is refused (by the pipeline). The gateway's own
  // endpoints answer only at their canonical spelling: fastify's router
  // decodes `/%6fauth2/token` to the token endpoint; here such a request is
  // refused like any other second spelling of a path.
  app.decorateRequest("gatehouseTarget", null);
  app.addHook("onRequest", (request, reply, done) => {
    const url = request.raw.url ?? "";
    const target = normalizeTarget(url);
    if (!target.ok) {
      reply.hijack();
      return sidecar.serve(request.raw, reply.raw, request.id);
    }
    const guarded = request.routeOptions.config.guard === true;
    if (!isCanonical(url, target.path) && !guarded) {
      reply.hijack();
      return sidecar.badRequest(request.raw, reply.raw, request.id, "use the canonical path of this endpoint");
    }
    request.gatehouseTarget = target;
    // Expect: 100-continue to one of the gateway's own endpoints: go ahead, as node would have.
    if (!guarded && sidecar.awaitsContinue(request.raw)) reply.raw.writeContinue();
    done();
  });

  // 3. WebSocket handshakes: node hands them over on 'upgrade', outside the
  // request cycle; they are routed through fastify like any request, with a
  // response bound to the socket, so that refusals look the same.
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sidecar.noteUpgrade(req, socket, head);
    socket.on("error", () => socket.destroy());
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    // A refusal ends the connection; a proxied WebSocket never finishes this response.
    res.once("finish", () => socket.end());
    app.routing(req, res);
  };
  app.server.on("upgrade", onUpgrade);

  // Node answers `Expect: 100-continue` at once unless someone listens here; the
  // guard answers it after the check, so that a refused upload is never sent.
  const onCheckContinue = (req: IncomingMessage, res: ServerResponse) => {
    sidecar.noteContinue(req);
    app.routing(req, res);
  };
  app.server.on("checkContinue", onCheckContinue);
  app.addHook("onClose", async () => {
    app.server.off("upgrade", onUpgrade);
    app.server.off("checkContinue", onCheckContinue);
    sidecar.close();
    await options.pipeline.close();
  });
};

declare module "fastify" {
  interface FastifyContextConfig {
    /** The guard's catch-all route. */
    guard?: boolean;
  }
  interface FastifyRequest {
    /** The request target in normal form (guard step 1); null until the guard's onRequest hook ran. */
    gatehouseTarget: NormalizedTarget | null;
  }
}

/** The resource guard; needs the oauth-errors and proxy plugins. */
export const guard = fp(plugin, { name: "guard", fastify: "5.x", dependencies: ["oauth-errors", "proxy"] });
