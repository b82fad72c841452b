/**
 * The RPC metadata the contract uses beside its messages; protobuf has no
 * place for them. proto/gatehouse/v1/ defines what a call carries in its
 * messages; these headers carry what is about the call itself (who is calling,
 * on whose behalf). The gateway sets them (gateway/rpc/), the authz service
 * reads them (services/authz/rpc/caller.ts): both import the names from here.
 *
 * Metadata names are lower case: HTTP/2 (RFC 9113 §8.2.2) and gRPC require it.
 */

/**
 * The gateway's service credential. Gateway-only RPCs (Authorize, Decide,
 * the session service) assert who the resource owner is; the authz service
 * answers them only for a caller presenting this credential, compared in
 * constant time.
 */
export const SERVICE_CREDENTIAL_HEADER = "gatehouse-service-credential";

/**
 * The browser's address as the gateway saw it, for the authz service's
 * failure limits per address. Believed only together with the service
 * credential; otherwise the RPC peer's address counts.
 */
export const CLIENT_ADDRESS_HEADER = "gatehouse-client-address";

/**
 * The URL of the endpoint (token, introspection, revocation) the gateway
 * received the request at: RFC 7523 §3 lets a client assertion name it as
 * its `aud` instead of the issuer. Believed only together with the service
 * credential.
 */
export const ENDPOINT_URL_HEADER = "gatehouse-endpoint-url";

/**
 * The tenant a call is for (issue 11; README, "Tenants"): a tenant name
 * (startup/tenant-name.ts). Absent, empty or "default": the default tenant
 * (the configuration's top level), so every caller from before tenants keeps
 * working. An unknown name is refused with NotFound (unknown_tenant), never
 * answered by another tenant. Introspect without it takes the tenant whose
 * issuer is the token's `iss` (then verified with that tenant's keys), or the
 * default tenant for a token without one. The caller's credentials (client,
 * or the gateway's service credential) are checked in that tenant only.
 */
export const TENANT_HEADER = "gatehouse-tenant";

/**
 * A Connect unary call's deadline, in milliseconds (the Connect protocol's
 * Connect-Timeout-Ms; gRPC's is grpc-timeout). The gateway's lean transport
 * sends it, and the authz service's fast path, its batch service and its
 * overload interceptor read it: one name for all of them.
 */
export const CONNECT_TIMEOUT_HEADER = "connect-timeout-ms";
