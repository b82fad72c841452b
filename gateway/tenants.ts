import { DEFAULT_TENANT, tenantIssuer } from "../startup/tenant-name.js";
import type { EndpointName, GatewayConfig } from "./config.js";

/**
 * The gateway's view of the tenants (issue 11; README, "Tenants"): which
 * exist now (a reload replaces them), where their endpoints are, and which
 * tenant issued a token. The authz service holds everything else.
 */
export interface GatewayTenants {
  /** The named tenants now (not the default tenant). */
  readonly names: ReadonlySet<string>;
  /** True for DEFAULT_TENANT and every named tenant now. */
  has(name: string): boolean;
  /** The tenant whose issuer is `issuer`: DEFAULT_TENANT for the configuration's issuer; undefined for any other. */
  ofIssuer(issuer: string): string | undefined;
  /** The issuer of a tenant (DEFAULT_TENANT: the configuration's). */
  issuerOf(name: string): string;
  /**
   * True for a normalised path that is one of a named tenant's own endpoints:
   * `/{tenant}{paths.X}` for the browser endpoints, `{paths.metadata}/{tenant}` (RFC 8414 §3.1).
   */
  isOwnPath(path: string): boolean;
}

/** The endpoints that exist per tenant under `/{tenant}`; health, metrics and the check endpoint are the process's. */
export const TENANT_ENDPOINTS: readonly EndpointName[] = ["authorize", "consent", "token", "introspect", "revoke", "login", "logout", "jwks", "openidConfiguration", "userinfo", "endSession", "register"];

export function createGatewayTenants(config: Pick<GatewayConfig, "issuer" | "paths" | "tenants">): GatewayTenants {
  const names = new Set(config.tenants);
  const issuers = new Map<string, string>([[config.issuer, DEFAULT_TENANT], ...config.tenants.map((name): [string, string] => [tenantIssuer(config.issuer, name), name])]);
  const endpointPaths = new Set(TENANT_ENDPOINTS.map((name) => config.paths[name]));
  const metadataPrefix = `${config.paths.metadata}/`;
  return {
    names,
    has: (name) => name === DEFAULT_TENANT || names.has(name),
    ofIssuer: (issuer) => issuers.get(issuer),
    issuerOf: (name) => tenantIssuer(config.issuer, name),
    isOwnPath(path) {
      if (names.size === 0) return false;
      if (path.startsWith(metadataPrefix)) return names.has(path.slice(metadataPrefix.length));
      const slash = path.indexOf("/", 1);
      return slash !== -1 && names.has(path.slice(1, slash)) && endpointPaths.has(path.slice(slash));
    },
  };
}
