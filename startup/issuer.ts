/**
 * The problems of a configured issuer, each at the path `issuer`; none for a
 * good one. RFC 8414 §2: the issuer "is a URL that uses the https scheme and
 * has no query or fragment components". Plain http is allowed only where the
 * configuration says so (`requireHttps: false`, local development).
 */
export function checkIssuer(issuer: string, requireHttps: boolean): string[] {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return ["issuer: must be an absolute URL"];
  }
  const problems: string[] = [];
  // An empty query ("?") or fragment ("#") leaves url.search and url.hash empty: look at the text too.
  if (url.search !== "" || url.hash !== "" || issuer.includes("?") || issuer.includes("#")) {
    problems.push("issuer: must have no query or fragment (RFC 8414 §2)");
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && !requireHttps)) {
    problems.push("issuer: must use https (RFC 8414 §2); set requireHttps: false for local development");
  }
  return problems;
}
