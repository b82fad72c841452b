import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import { createTlsCheck } from "../tls-check.js";
import { renderErrorPage } from "../views/error-page.js";
import { pageHeaders } from "../views/page.js";

export interface RequireHttpsOptions {
  /** config.requireHttps: off only in development. */
  enabled: boolean;
  /** config.trustedProxies: the only peers whose X-Forwarded-Proto is believed. */
  trustedProxies: readonly string[];
  /** Probes that kubelets and scrapers send over plain HTTP inside the cluster. */
  exempt: readonly string[];
}

/**
 * Seed 002 (Require HTTPS) and RFC 6749 §3.1/§3.2 ("MUST require the use of
 * TLS"): with `requireHttps` on, a request is served only when it came over
 * TLS: on a TLS socket, or from a trusted proxy whose `X-Forwarded-Proto`
 * says https. Plain HTTP is also accepted from loopback, where no network
 * sees it, unless a trusted proxy on loopback says the client used http.
 * Everything else is refused with 400 invalid_request (an HTML page for the
 * login and consent pages) before any parameter is read. Probes are exempt.
 */
const plugin: FastifyPluginAsync<RequireHttpsOptions> = async (app, options) => {
  const cameOverTls = createTlsCheck(options);
  if (cameOverTls === undefined) return;
  const exempt = new Set(options.exempt);
  app.addHook("onRequest", async (request, reply) => {
    if (exempt.has(request.routeOptions.url ?? "") || cameOverTls(request.raw)) return;
    const description = "this endpoint must be used over https";
    if (request.routeOptions.config?.html === true) {
      return reply.code(400).headers(pageHeaders()).type("text/html; charset=utf-8").send(renderErrorPage(400, description));
    }
    return reply.sendOAuthError({ status: 400, error: "invalid_request", description });
  });
};

/** Refuses plain HTTP from the network when requireHttps is on; registered before every route. */
export const requireHttps = fp(plugin, { name: "require-https", fastify: "5.x", dependencies: ["oauth-errors"] });
