/**
 * Builds an authorization response URL (RFC 6749 §4.1.2, §4.2.2): the
 * parameters go in the query for the code flow and in the fragment for the
 * implicit flow. The redirect URI's own query is kept as registered
 * (RFC 6749 §3.1.2: "MUST be retained when adding additional query parameters").
 * Empty values are left out.
 */
export function buildAuthorizationResponseUrl(
  redirectUri: string,
  mode: "query" | "fragment",
  params: Readonly<Record<string, string | number | undefined>>,
): string {
  const encoded = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") encoded.append(name, String(value));
  }
  if (mode === "fragment") return `${redirectUri}#${encoded}`;
  const separator = redirectUri.includes("?") ? (redirectUri.endsWith("?") || redirectUri.endsWith("&") ? "" : "&") : "?";
  return `${redirectUri}${separator}${encoded}`;
}
