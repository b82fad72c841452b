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
