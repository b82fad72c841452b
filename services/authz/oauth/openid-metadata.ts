import type { OAuthContext } from "./context.js";
import { SUPPORTED_CLAIMS } from "./user-claims.js";

/**
 * The OpenID Connect Discovery 1.0 §3 facts that depend on the server's
 * policy and keys, not on where the HTTP endpoints are (the gateway adds
 * those). They travel in GetMetadata beside the RFC 8414 ones.
 */
export function openIdFacts(ctx: OAuthContext) {
  const clients = [...ctx.policy.clients.values()];
  return {
    // §3 REQUIRED: public always; pairwise when a client uses it (Core §8).
    subjectTypesSupported: clients.some((c) => c.subjectType === "pairwise") ? ["public", "pairwise"] : ["public"],
    // §3 REQUIRED: the ring's algorithms; never none.
    idTokenSigningAlgValuesSupported: [...ctx.keys.idTokenAlgorithms],
    claimsSupported: [...SUPPORTED_CLAIMS],
    acrValuesSupported: ctx.policy.acr === undefined ? [] : [ctx.policy.acr],
  };
}
