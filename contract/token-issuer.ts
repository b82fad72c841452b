/**
 * A compact JWS's payload `iss`, unverified; undefined for anything else (an
 * opaque token, a malformed one, a payload over 8 KiB). Both processes use it
 * only to choose which tenant to ask: the gateway which tenant's Introspect to
 * call, the authz service which tenant's keys then verify the token. Nothing
 * is believed from it.
 */
export function unverifiedIssuer(token: string): string | undefined {
  const first = token.indexOf(".");
  const second = first === -1 ? -1 : token.indexOf(".", first + 1);
  if (second === -1 || second - first > 8_192) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(token.slice(first + 1, second), "base64url").toString("utf8"));
    const iss = typeof payload === "object" && payload !== null ? (payload as { iss?: unknown }).iss : undefined;
    return typeof iss === "string" ? iss : undefined;
  } catch {
    return undefined;
  }
}
