import { OAuthError } from "./errors.js";

/**
 * Picks the redirect URI of an authorization request (RFC 6749 §3.1.2.3).
 *
 * Matching is exact string comparison against the registered URIs
 * (RFC 9700 §4.1.3): no prefix, no normalisation, no wildcard, no loopback
 * port leniency. When `requested` is empty it defaults to the only registered
 * URI; with several registered, it is required (seed 002, RFC 6749 §3.1.2.3).
 *
 * Failures carry no redirect URL: an unverified redirect URI must never be
 * redirected to (RFC 6749 §4.1.2.1, RFC 9700 §4.11).
 */
export function matchRedirectUri(registered: readonly string[], requested: string): string {
  if (requested === "") {
    if (registered.length === 1) return registered[0]!;
    throw new OAuthError("invalid_request", "redirect_uri is required: the client has several registered");
  }
  if (!registered.includes(requested)) {
    throw new OAuthError("invalid_request", "redirect_uri is not registered for this client");
  }
  return requested;
}

/**
 * Validates a redirect URI for registration (RFC 6749 §3.1.2): absolute, no
 * fragment; with `requireHttps`, https unless it targets a loopback host
 * (RFC 8252 §7.3) or is a private-use scheme of a native app (RFC 8252 §7.1).
 * Returns a problem, or undefined when the URI is acceptable.
 */
export function checkRegisteredRedirectUri(uri: string, requireHttps: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "must be an absolute URI (RFC 6749 §3.1.2)";
  }
  if (url.hash !== "" || uri.includes("#")) return "must not include a fragment (RFC 6749 §3.1.2)";
  if (url.protocol === "javascript:" || url.protocol === "data:") return `the ${url.protocol} scheme cannot be a redirect URI`;
  if (!requireHttps || url.protocol === "https:") return undefined;
  if (url.protocol === "http:") {
    return isLoopbackHost(url.hostname)
      ? undefined
      : "must use https (requireHttps is on); http is allowed only for loopback hosts (RFC 8252 §7.3)";
  }
  // A private-use scheme like com.example.app: (RFC 8252 §7.1) has a dot.
  return url.protocol.includes(".") ? undefined : "must use https, a loopback http URI, or a reverse-domain private-use scheme";
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
}
