import { OAuthError } from "./errors.js";
import type { Client, ServerPolicy } from "./model.js";

/**
 * RFC 8707 §2: a `resource` "MUST be an absolute URI ... MUST NOT include a
 * fragment component"; one that is not, or that the client may not name, is
 * invalid_target.
 */
export function checkResourceIndicator(resource: string): void {
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    throw new OAuthError("invalid_target", "resource must be an absolute URI (RFC 8707 §2)");
  }
  if (url.hash !== "" || resource.includes("#")) throw new OAuthError("invalid_target", "resource must not include a fragment (RFC 8707 §2)");
}

/** The audience named by the request if the client may name it, else invalid_target (RFC 8707 §2, RFC 8693 §2.2.2). */
export function allowedTarget(target: string, allowed: readonly string[]): string {
  if (!allowed.includes(target)) throw new OAuthError("invalid_target", `this client may not obtain tokens for ${JSON.stringify(target)}`);
  return target;
}

/**
 * The resources a client may name in an authorization request (RFC 8707 §2):
 * the server's protected resources (`resources`), its default audience, and
 * the audiences the client may request for itself as a service.
 */
export function knownResources(policy: ServerPolicy, client: Client): ReadonlySet<string> {
  return new Set([...(policy.resources?.keys() ?? []), policy.audience, ...(client.service?.audiences ?? [])]);
}

/** At most this many resource indicators in one request: each becomes an `aud` entry of every token of the grant. */
export const MAX_RESOURCE_INDICATORS = 16;

/**
 * RFC 8707 §2: the `resource` parameters of an authorization request, each
 * an absolute URI without a fragment that this server knows, in request
 * order, repeats dropped. A resource the server does not know, or one that
 * is not a URI of that shape, is invalid_target (§2). Empty: none named.
 */
export function resolveResourceIndicators(values: readonly string[], known: ReadonlySet<string>): string[] {
  if (values.length > MAX_RESOURCE_INDICATORS) throw new OAuthError("invalid_target", `at most ${MAX_RESOURCE_INDICATORS} resource indicators`);
  const resources: string[] = [];
  for (const value of values) {
    checkResourceIndicator(value);
    if (!known.has(value)) throw new OAuthError("invalid_target", `${JSON.stringify(value)} is not a resource this server issues tokens for`);
    if (!resources.includes(value)) resources.push(value);
  }
  return resources;
}

/**
 * RFC 8707 §2.2: at the token endpoint the client may narrow a grant to some
 * of its resources (a token for one of them); none named: all of them. A
 * resource outside the grant is invalid_target. Returns the token's audience, or undefined when
 * the grant named no resource (the server's default audience).
 */
export function narrowResources(requested: readonly string[], granted: readonly string[] | undefined): string[] | undefined {
  const grant = granted ?? [];
  if (requested.length === 0) return grant.length === 0 ? undefined : [...grant];
  const narrowed: string[] = [];
  for (const value of requested) {
    checkResourceIndicator(value);
    if (!grant.includes(value)) throw new OAuthError("invalid_target", `${JSON.stringify(value)} is not one of the resources of this grant`);
    if (!narrowed.includes(value)) narrowed.push(value);
  }
  return narrowed;
}
