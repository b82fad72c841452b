import type { GetMetadataResponse } from "../gen/gatehouse/v1/authorization_service_pb.js";
import type { EndpointName } from "./config.js";

/**
 * The one authorization server metadata document, served at both well-known
 * paths: RFC 8414 §3 (`oauth-authorization-server`) and OpenID Connect
 * Discovery 1.0 §4 (`openid-configuration`). RFC 8414 §2 defines its members
 * as a superset-compatible registry with Discovery's, so one builder keeps the
 * two consistent: same issuer, same endpoints, same capabilities.
 *
 * The protocol facts come from the authz service (GetMetadata); the endpoints
 * are the issuer plus the configured paths.
 */
export function buildServerMetadata(facts: GetMetadataResponse, issuer: string, paths: Readonly<Record<EndpointName, string>>): Record<string, unknown> {
  const base = issuer.replace(/\/+$/, "");
  const implicit = facts.responseTypesSupported.includes("token");
  // An authz service older than private_key_jwt sends none: the methods it always had.
  const authMethods = facts.tokenEndpointAuthMethodsSupported.length > 0 ? facts.tokenEndpointAuthMethodsSupported : ["client_secret_basic", "client_secret_post", "none"];
  const signingAlgorithms = facts.tokenEndpointAuthSigningAlgValuesSupported;
  return {
    issuer: facts.issuer,
    authorization_endpoint: base + paths.authorize,
    token_endpoint: base + paths.token,
    // Discovery §3 RECOMMENDED.
    userinfo_endpoint: base + paths.userinfo,
    jwks_uri: base + paths.jwks,
    scopes_supported: facts.scopesSupported,
    response_types_supported: facts.responseTypesSupported,
    // RFC 6749 §4.1.2 (query) and §4.2.2 (fragment, only with the implicit grant).
    response_modes_supported: implicit ? ["query", "fragment"] : ["query"],
    grant_types_supported: facts.grantTypesSupported,
    // Discovery §3 REQUIRED.
    subject_types_supported: facts.subjectTypesSupported,
    id_token_signing_alg_values_supported: facts.idTokenSigningAlgValuesSupported,
    // Discovery §3 RECOMMENDED: the claims UserInfo and ID Tokens can carry.
    claims_supported: facts.claimsSupported,
    ...(facts.acrValuesSupported.length > 0 ? { acr_values_supported: facts.acrValuesSupported } : {}),
    // Core §5.5 is not implemented: the claims parameter is ignored (Discovery §3: default false, said explicitly).
    claims_parameter_supported: false,
    // Core §6: request objects are refused with request_not_supported / request_uri_not_supported.
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    // Core §3.1.2.1 display values accepted (one responsive page serves them all).
    display_values_supported: ["page", "popup", "touch", "wap"],
    token_endpoint_auth_methods_supported: authMethods,
    // RFC 8414 §2: the JWS algorithms of private_key_jwt (RFC 7523), the same at every endpoint.
    ...(signingAlgorithms.length > 0 ? { token_endpoint_auth_signing_alg_values_supported: signingAlgorithms } : {}),
    introspection_endpoint: base + paths.introspect,
    introspection_endpoint_auth_methods_supported: authMethods.filter((method) => method !== "none"),
    ...(signingAlgorithms.length > 0 ? { introspection_endpoint_auth_signing_alg_values_supported: signingAlgorithms } : {}),
    revocation_endpoint: base + paths.revoke,
    revocation_endpoint_auth_methods_supported: authMethods,
    ...(signingAlgorithms.length > 0 ? { revocation_endpoint_auth_signing_alg_values_supported: signingAlgorithms } : {}),
    code_challenge_methods_supported: facts.codeChallengeMethodsSupported,
    // RP-Initiated Logout 1.0 §2.1 and Back-Channel Logout 1.0 §2.1 (sid in Logout Tokens and ID Tokens).
    end_session_endpoint: base + paths.endSession,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    // RFC 9207 §3: every authorization response carries iss.
    authorization_response_iss_parameter_supported: true,
    // RFC 8414 §2 / RFC 7591 §3: only when the tenant's registration policy is not off.
    ...(facts.registrationSupported ? { registration_endpoint: base + paths.register } : {}),
    // draft-ietf-oauth-client-id-metadata-document §5: https client ids are fetched (the MCP authorization spec checks it).
    ...(facts.clientIdMetadataDocumentSupported ? { client_id_metadata_document_supported: true } : {}),
  };
}
