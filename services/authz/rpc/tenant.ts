import { unverifiedIssuer } from "../../../contract/token-issuer.js";
import type { HandlerContext } from "@connectrpc/connect";
import { TENANT_HEADER } from "../../../contract/metadata.js";
import { DEFAULT_TENANT } from "../../../startup/tenant-name.js";
import type { AuthorizationServer } from "../oauth/authorization-server.js";
import { OAuthError } from "../oauth/errors.js";
import type { TenantStores } from "../store/tenant-stores.js";

/** The tenants the handlers can reach, as configured now (a reload changes them for the next call). */
export interface TenantDirectory {
  /** The server of tenant `name` (DEFAULT_TENANT: the top level's); undefined: no such tenant. */
  server(name: string): AuthorizationServer | undefined;
  /** The tenant whose issuer is exactly `issuer`. */
  ofIssuer(issuer: string): string | undefined;
  /** Every tenant's revocations (the gateway's stream). */
  subscribeAll: TenantStores["subscribeAll"];
}

/** The tenant a call names in its metadata (contract/metadata.ts); absent or empty: the default tenant. */
export function tenantOf(context: HandlerContext): string {
  const named = context.requestHeader.get(TENANT_HEADER);
  return named === null || named === "" ? DEFAULT_TENANT : named;
}

/** The server of the call's tenant; an unknown tenant is refused (NotFound), never served by another. */
export function serverFor(context: HandlerContext, tenants: TenantDirectory): { tenant: string; server: AuthorizationServer } {
  const tenant = tenantOf(context);
  return { tenant, server: known(tenants, tenant) };
}

/**
 * Introspect's tenant: the one the call names; without a name, the one whose
 * issuer is the token's `iss` (read unverified here only to choose the
 * tenant; that tenant's key ring then verifies signature and `iss`), and the
 * default tenant for a token without a known `iss` (refresh tokens, foreign
 * JWTs: the default tenant answers them as before tenants).
 */
export function serverForToken(context: HandlerContext, tenants: TenantDirectory, token: string): { tenant: string; server: AuthorizationServer } {
  const named = context.requestHeader.get(TENANT_HEADER);
  if (named !== null && named !== "") return { tenant: named, server: known(tenants, named) };
  const issuer = unverifiedIssuer(token);
  const tenant = (issuer === undefined ? undefined : tenants.ofIssuer(issuer)) ?? DEFAULT_TENANT;
  return { tenant, server: known(tenants, tenant) };
}

function known(tenants: TenantDirectory, name: string): AuthorizationServer {
  const server = tenants.server(name);
  if (server === undefined) throw new OAuthError("unknown_tenant", `no tenant ${JSON.stringify(name.slice(0, 64))} is configured`);
  return server;
}
