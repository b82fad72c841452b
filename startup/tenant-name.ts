/**
 * Tenant names (issue 11), shared by both processes: a tenant's name is the
 * last path segment of its issuer (`{issuer}/{name}`), the first segment of
 * its browser endpoints (`/{name}/oauth2/token`), the RPC metadata value that
 * selects it (contract/metadata.ts) and part of its Redis keys. So it is a
 * slug: lower-case ASCII letters and digits in groups joined by single
 * hyphens, which needs no encoding in any of those places and has one
 * spelling only (no case folding, no percent-encoding, no dot segments).
 */
export const TENANT_NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** At most one DNS label's length: enough for a name, short enough for keys and headers. */
export const TENANT_NAME_MAX_LENGTH = 63;

/**
 * The tenant of a configuration's top level, served at the issuer itself
 * (no path prefix), as every deployment before tenants. Routes name it with
 * this word, and the guard reports it with it; no configured tenant may take it.
 */
export const DEFAULT_TENANT = "default";

export const TENANT_NAME_RULE = "must be a slug: lower-case letters and digits, groups joined by single hyphens (it is a path segment of the issuer)";

/** The issuer of tenant `name` under the deployment's issuer: `{issuer}/{name}`; the default tenant's is the issuer itself. */
export function tenantIssuer(issuer: string, name: string): string {
  return name === DEFAULT_TENANT ? issuer : `${issuer.replace(/\/+$/, "")}/${name}`;
}
