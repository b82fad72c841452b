/**
 * Request header fields as every entrance can give them: lower-case names,
 * and a value or, for a field that came more than once, the list of values
 * (Node's IncomingHttpHeaders, Envoy's header map, ...).
 */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The one value of a field; a repeated field's values joined with ", " (RFC 9110 §5.3). */
export function headerString(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  return value === undefined || typeof value === "string" ? value : value.join(", ");
}

/**
 * RFC 9112 §6.3: a request has a body when it says how the body is framed,
 * by Transfer-Encoding or by a Content-Length other than zero; without
 * either, none follows the head.
 */
export function hasRequestBody(headers: RequestHeaders): boolean {
  const length = headers["content-length"];
  return headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}
