import type { JWK } from "jose";

/**
 * The core's port for key sets fetched on a client's say-so: a client's
 * `jwks_uri` (RFC 7591 §2, OIDC Core §9) and a Kubernetes cluster's JWKS.
 * Fetching is I/O, so it is implemented outside the core
 * (services/authz/fetch/), which owns what makes it safe: https only, no
 * redirects, size and time limits, no private, loopback or link-local
 * addresses (checked after DNS resolution and on connect), and caching by
 * the response's HTTP caching headers within bounds.
 */
export interface RemoteJwks {
  /**
   * The key set at `uri`: from the cache while it is fresh. With `refresh`
   * (an assertion named a `kid` the cached set lacks: the client rotated its
   * keys), fetched again unless it was fetched very recently, so that garbage
   * `kid`s cannot make the server hammer the client's host.
   * Throws RemoteJwksError when the set cannot be had.
   */
  get(uri: string, options: { refresh: boolean }): Promise<{ keys: JWK[] }>;
}

/** A key set could not be fetched or was not one; the message says why, and is safe to show to the client. */
export class RemoteJwksError extends Error {
  override readonly name = "RemoteJwksError";
}
