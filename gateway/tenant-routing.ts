import type { FastifyReply, FastifyRequest } from "fastify";
import { TENANT_HEADER } from "../contract/metadata.js";
import { DEFAULT_TENANT } from "../startup/tenant-name.js";
import type { GatewayDeps } from "./deps.js";
import { NOT_FOUND, sendErrorResponse } from "./oauth-error-response.js";
import { sendErrorPage } from "./views/error-page.js";

/** TENANT_NAME as a find-my-way parameter pattern. */
const SLUG_PATTERN = "^[a-z0-9-]+$";

/** The tenant a browser endpoint request is for, and what serving it needs. */
export interface TenantRoute {
  /** DEFAULT_TENANT or a tenant's name. */
  readonly name: string;
  /** What the tenant's endpoint paths start with: "" for the default tenant, `/{name}` for another. */
  readonly base: string;
  /** The tenant's issuer, without a trailing slash: its endpoints in metadata are this plus the configured paths. */
  readonly issuer: string;
  /** The RPC metadata that names the tenant (none for the default tenant). */
  readonly rpcHeaders: Readonly<Record<string, string>>;
}

/**
 * Where one registration of the browser endpoints (plugins/oauth-routes.ts,
 * plugins/pages.ts) lives, and which tenant a request to it is for. The
 * default tenant's registration is at the configured paths, as before
 * tenants; the named tenants share one registration under `/:tenant`, so
 * that a reload can add and remove tenants without touching fastify's router.
 */
export interface TenantRouting {
  /** The route pattern of an endpoint path. */
  at(path: string): string;
  /** The metadata document's route pattern (RFC 8414 §3.1: `/.well-known/oauth-authorization-server/{tenant}`). */
  readonly metadataPath: string;
  /** The request's tenant; undefined: not a tenant now (answered 404). */
  resolve(request: FastifyRequest): TenantRoute | undefined;
  /**
   * The tenant a path's first segment names (the segment, for the named
   * tenants' registration; ignored for the default tenant's); undefined: not
   * a tenant now. For the endpoints served beneath fastify (plugins/lean-token-endpoints.ts).
   */
  routeOf(segment: string): TenantRoute | undefined;
}

export function defaultTenantRouting(deps: Pick<GatewayDeps, "config">): TenantRouting {
  // The default tenant is named in its calls too: without a name, Introspect would follow a token's iss
  // to another tenant, and /oauth2/introspect would answer for it.
  const rpcHeaders: Readonly<Record<string, string>> = Object.freeze({ [TENANT_HEADER]: DEFAULT_TENANT });
  const route: TenantRoute = Object.freeze({ name: DEFAULT_TENANT, base: "", issuer: deps.config.issuer.replace(/\/+$/, ""), rpcHeaders });
  return { at: (path) => path, metadataPath: deps.config.paths.metadata, resolve: () => route, routeOf: () => route };
}

/** The named tenants' registration; each tenant's TenantRoute is made once (bounded by the tenants ever configured). */
export function namedTenantRouting(deps: Pick<GatewayDeps, "config" | "tenants" | "authz">): TenantRouting {
  const routes = new Map<string, TenantRoute>();
  const routeOf = (name: string | undefined): TenantRoute | undefined => {
    if (name === undefined || !deps.tenants().names.has(name)) return undefined;
    let route = routes.get(name);
    if (route === undefined) {
      route = Object.freeze({ name, base: `/${name}`, issuer: deps.tenants().issuerOf(name), rpcHeaders: Object.freeze(deps.authz.tenantHeaders(name)) });
      routes.set(name, route);
    }
    return route;
  };
  return {
    // Only a slug is a tenant's segment (startup/tenant-name.ts): anything else (an empty segment, as in
    // //oauth2/token) is no route here and goes to the guard, which refuses it as it did before tenants.
    at: (path) => `/:tenant(${SLUG_PATTERN})${path}`,
    metadataPath: `${deps.config.paths.metadata}/:tenant(${SLUG_PATTERN})`,
    resolve: (request) => routeOf((request.params as { tenant?: string }).tenant),
    routeOf,
  };
}

/**
 * An onRequest hook: the request's tenant into `request.gatehouseTenant`, or a
 * 404 (a page for the HTML endpoints, RFC-shaped JSON for the others) for a
 * tenant that does not exist now: never another tenant's answer.
 */
export function createTenantHook(routing: TenantRouting) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const tenant = routing.resolve(request);
    if (tenant !== undefined) {
      request.gatehouseTenant = tenant;
      return;
    }
    if (request.routeOptions.config?.html === true) return sendErrorPage(reply, { status: 404, description: "There is no such sign-in service here." });
    return sendErrorResponse(reply, NOT_FOUND);
  };
}

/** The request's tenant, set by the tenant hook before any handler runs. */
export function tenantOf(request: FastifyRequest): TenantRoute {
  const tenant = request.gatehouseTenant;
  if (tenant === null) throw new Error("the tenant hook did not run");
  return tenant;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The tenant of a browser endpoint request (tenant-routing.ts); null until the tenant hook ran. */
    gatehouseTenant: TenantRoute | null;
  }
}
