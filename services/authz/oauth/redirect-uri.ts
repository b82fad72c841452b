import { OAuthError } from "./errors.js";

/**
 * Picks the redirect URI of an authorization request (RFC 6749 §3.1.2.3).
 *
 * Matching is exact string comparison against the registered URIs
 * (RFC 9700 §4.1.3): no prefix, no normalisation, no wildcard. The one
 * exception is `loopbackAnyPort`, for native apps (RFC 8252 §7.3: "The
 * authorization server MUST allow any port to be specified at the time of
 * the request for loopback IP redirect URIs"): a registered
 * `http://127.0.0.1/cb` then matches `http://127.0.0.1:51234/cb`, every other
 * part still exact. When `requested` is empty it defaults to the only
 * registered URI; with several registered, it is required (seed 002, RFC 6749
 * §3.1.2.3).
 *
 * Failures carry no redirect URL: an unverified redirect URI must never be
 * redirected to (RFC 6749 §4.1.2.1, RFC 9700 §4.11).
 */
export function matchRedirectUri(registered: readonly string[], requested: string, options: { loopbackAnyPort?: boolean | undefined } = {}): string {
  if (requested === "") {
    if (registered.length === 1) return registered[0]!;
    throw new OAuthError("invalid_request", "redirect_uri is required: the client has several registered");
  }
  if (registered.includes(requested)) return requested;
  if (options.loopbackAnyPort === true && registered.some((uri) => matchesLoopbackAnyPort(uri, requested))) return requested;
  throw new OAuthError("invalid_request", "redirect_uri is not registered for this client");
}

/**
 * RFC 8252 §7.3: `requested` is `registered` with another (or no) port, both
 * http on the same loopback host. Both must be in the URL parser's own form
 * (href), so that no normalisation (dot segments, case, escapes) makes two
 * different strings match.
 */
export function matchesLoopbackAnyPort(registered: string, requested: string): boolean {
  let a: URL;
  let b: URL;
  try {
    a = new URL(registered);
    b = new URL(requested);
  } catch {
    return false;
  }
  if (a.href !== registered || b.href !== requested) return false;
  if (a.protocol !== "http:" || b.protocol !== "http:" || !isLoopbackHost(a.hostname)) return false;
  if (a.username !== "" || a.password !== "" || b.username !== "" || b.password !== "") return false;
  return a.hostname === b.hostname && a.pathname === b.pathname && a.search === b.search && b.hash === "";
}

/**
 * Validates a redirect URI a client registers itself (RFC 7591 §2, a
 * Client ID Metadata Document), whatever `requireHttps` says, by RFC 8252's
 * rules for native apps and RFC 6749 §3.1.2 for all:
 * - absolute, no fragment, no credentials;
 * - https (a web client, or a claimed https scheme, RFC 8252 §7.2);
 * - http only on a loopback host (RFC 8252 §7.3; `localhost` is NOT
 *   RECOMMENDED there, §8.3, but accepted: MCP clients use it);
 * - a private-use scheme in reverse-domain form, `com.example.app:/cb`
 *   (RFC 8252 §7.1: "a URI scheme based on a domain name under their control,
 *   expressed in reverse order"), never one of the web's own schemes.
 * Returns a problem, or undefined when the URI is acceptable.
 */
export function checkSelfRegisteredRedirectUri(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "must be an absolute URI (RFC 6749 §3.1.2)";
  }
  if (uri.includes("#")) return "must not include a fragment (RFC 6749 §3.1.2)";
  if (url.username !== "" || url.password !== "") return "must not include user information";
  if (url.protocol === "https:") return url.hostname === "" ? "must name a host" : undefined;
  if (url.protocol === "http:") {
    return isLoopbackHost(url.hostname) ? undefined : "http is allowed only for loopback hosts (RFC 8252 §7.3); use https";
  }
  const scheme = url.protocol.slice(0, -1);
  if (/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/.test(scheme)) return undefined;
  return "must be https, http on a loopback address (RFC 8252 §7.3), or a private-use scheme in reverse-domain form such as com.example.app (RFC 8252 §7.1)";
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

/** 127.0.0.0/8, [::1] and localhost (RFC 8252 §7.3, §8.3). */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
}
