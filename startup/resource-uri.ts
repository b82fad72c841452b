/**
 * A protected resource's canonical URI (RFC 8707 §2, RFC 9728 §1.2), as both
 * processes check it in the configuration's `resources`: an absolute URI
 * without a fragment ("MUST NOT include a fragment component"), and, as the
 * MCP authorization spec asks of the canonical server URI, without a query
 * (RFC 9728 §3.1 builds the metadata URL from the path alone); https unless
 * requireHttps is off. Returns what is wrong, or undefined.
 */
export function resourceUriProblem(uri: string, requireHttps: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "must be an absolute URI (RFC 8707 §2)";
  }
  if (uri.includes("#")) return "must not include a fragment (RFC 8707 §2)";
  if (url.search !== "" || uri.includes("?")) return "must not include a query (RFC 9728 §3.1 derives the metadata URL from the path)";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && !requireHttps)) return requireHttps ? "must use https (or set requireHttps: false for development)" : "must be an http(s) URI";
  if (url.username !== "" || url.password !== "") return "must not carry user information";
  return undefined;
}
