import { OAuthError } from "./errors.js";

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
