import { registrationRoutes } from "./plugins/registration-routes.js";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { GatewayDeps } from "./deps.js";
import { checkEndpoint } from "./plugins/check-endpoint.js";
import { extAuthz } from "./plugins/ext-authz.js";
import { guard } from "./plugins/guard.js";
import { health } from "./plugins/health.js";
import { metrics } from "./plugins/metrics.js";
import { oauthErrorResponse, sendErrorResponse } from "./oauth-error-response.js";
import { oauthErrors } from "./plugins/oauth-errors.js";
import { oauthRoutes } from "./plugins/oauth-routes.js";
import { leanTokenEndpoints } from "./plugins/lean-token-endpoints.js";
import { openIdRoutes } from "./plugins/openid-routes.js";
import { endSessionRoutes } from "./plugins/end-session-routes.js";
import { pages } from "./plugins/pages.js";
import { proxy } from "./plugins/proxy.js";
import { protectedResourceMetadata } from "./plugins/protected-resource-metadata.js";
import { requireHttps } from "./plugins/require-https.js";
import { renderErrorPage } from "./views/error-page.js";
import { defaultTenantRouting, namedTenantRouting } from "./tenant-routing.js";
import { createRequestTracing } from "./request-tracing.js";

/**
 * Builds the gateway's fastify instance: one plugin per concern. It never
 * listens (main.ts does), so tests can inject() into it or listen on port 0.
 */
export async function buildApp(deps: GatewayDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const requestTracing = createRequestTracing(deps.tracing);
  // The guard's entrances serve most requests beneath fastify (plugins/guard.ts, plugins/check-endpoint.ts):
  // each entry takes a request (true) or leaves it to the next and, last, to fastify.
  const rawEntries: Array<(req: IncomingMessage, res: ServerResponse) => boolean> = [];
  const addRawEntry = (entry: (req: IncomingMessage, res: ServerResponse) => boolean) => void rawEntries.push(entry);
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    serverFactory: (handler) =>
      createServer((req, res) => {
        for (const entry of rawEntries) if (entry(req, res)) return;
        handler(req, res);
      }),
    // X-Forwarded-For/-Proto are believed only from these proxies.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: requestIdOf,
    return503OnClosing: true,
    // No access log of every request: the guard logs at debug, and URLs may carry secrets.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 200 },
    // Every log line of a request carries its trace id (request-tracing.ts); with tracing on, the request's span starts here.
    childLoggerFactory: (logger, bindings, options, rawReq) => {
      const ids = requestTracing.begin(rawReq as IncomingMessage);
      return logger.child(ids === undefined ? bindings : Object.assign({}, bindings, ids), options);
    },
    // A URL fastify's router cannot decode is bad input like any other: the RFC's shape, not fastify's.
    frameworkErrors: (error, _request, reply) => {
      sendErrorResponse(reply, oauthErrorResponse({ status: 400, error: "invalid_request", description: error.code === "FST_ERR_BAD_URL" ? "malformed URL" : "bad request" }));
    },
  });

  if (deps.tracing.enabled) {
    // The span is named after the route; the handler runs with it active (after the body is read:
    // the body's stream events would not carry it), so its RPCs join the trace.
    app.addHook("onRequest", (request, reply, done) => {
      requestTracing.watch(request.raw, reply.raw);
      if (request.routeOptions.url !== undefined) requestTracing.route(request.raw, request.routeOptions.url);
      done();
    });
    app.addHook("preHandler", (request, _reply, done) => requestTracing.run(request.raw, done));
  }
  app.addHook("onClose", () => deps.tracing.shutdown());

  await app.register(oauthErrors, { renderErrorPage });
  await app.register(requireHttps, {
    enabled: config.requireHttps,
    trustedProxies: config.trustedProxies,
    // The check endpoint applies the same rule to the request it is asked about, and answers as nginx can pass on.
    exempt: [config.paths.healthz, config.paths.readyz, config.paths.metrics, config.paths.check],
  });
  await app.register(health, { authz: deps.authz, paths: config.paths, draining: deps.draining });
  // The browser-facing endpoints assert who the resource owner is: only a
  // gateway with the service credential serves them. Without it, the gateway
  // only guards (a sidecar).
  const serviceCredential = config.authz.serviceCredential;
  if (serviceCredential !== undefined) {
    // The default tenant's endpoints at the configured paths; the named tenants' under /{tenant} (issue 11),
    // registered whatever tenants there are now, so that a reload can add the first one.
    app.decorateRequest("gatehouseTenant", null);
    const routings = [defaultTenantRouting(deps), namedTenantRouting(deps)];
    // The token and introspection endpoints beneath fastify too; with tracing on, fastify's hooks set up
    // each request's span and trace context, so its routes serve them (plugins/lean-token-endpoints.ts).
    if (config.leanEndpoints && !deps.tracing.enabled) await app.register(leanTokenEndpoints, { deps, routings, addRawEntry, requestIdOf });
    for (const routing of routings) {
      await app.register(oauthRoutes, { deps, serviceCredential, routing });
      await app.register(openIdRoutes, { deps, routing });
      await app.register(endSessionRoutes, { deps, serviceCredential, routing });
      await app.register(pages, { deps, serviceCredential, routing });
      await app.register(registrationRoutes, { deps, routing });
    }
  }
  await app.register(metrics, { metrics: deps.metrics, path: config.paths.metrics });
  // RFC 9728 metadata of the protected resources the guard serves: on every gateway, guard-only sidecars too.
  await app.register(protectedResourceMetadata, { pipeline: deps.guard });
  await app.register(proxy, { timeoutMs: config.guard.upstreamTimeoutMs });
  // The guard's second entrance, for nginx auth_request, Traefik forwardAuth and Caddy forward_auth: same pipeline.
  await app.register(checkEndpoint, {
    path: config.paths.check,
    requireHttps: config.requireHttps,
    pipeline: deps.guard,
    trustedProxies: config.trustedProxies,
    realm: config.guard.realm,
    identityHeaders: config.guard.identityHeaders,
    requestTracing,
    addRawEntry,
    requestIdOf,
  });
  // Last: it takes every request that no route above serves.
  await app.register(guard, {
    config,
    requireHttps: config.requireHttps,
    setRawEntry: addRawEntry,
    requestIdOf,
    pipeline: deps.guard,
    metrics: deps.metrics,
    requestTracing,
  });
  // Envoy's ext_authz Check, on a gRPC listener of its own, through the same pipeline.
  if (config.guard.extAuthz !== undefined) {
    await app.register(extAuthz, { listen: config.guard.extAuthz, pipeline: deps.guard, drainTimeoutMs: config.drainTimeoutMs });
  }
  return app;
}

/** A request's id: the caller's X-Request-Id when it is a plain token, else a new UUID. */
function requestIdOf(req: IncomingMessage): string {
  const header = req.headers["x-request-id"];
  return typeof header === "string" && /^[\w.:-]{1,128}$/.test(header) ? header : randomUUID();
}
