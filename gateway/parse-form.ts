/**
 * A parameter list in the application/x-www-form-urlencoded format, decoded
 * strictly: the token, introspection and revocation request bodies
 * (RFC 6749 §4.1.3, RFC 7662 §2.1, RFC 7009 §2.1), the authorization request's
 * query (RFC 6749 §4.1.1) and the login and consent forms.
 *
 * Stricter than URLSearchParams, which silently keeps malformed input:
 * - a parameter given twice is refused (RFC 6749 §3.1: "Request and response
 *   parameters MUST NOT be included more than once"; §3.2 the same for the
 *   token endpoint), whether or not the name is one the endpoint knows;
 * - a `%` not followed by two hex digits is refused;
 * - names and values must decode to well-formed UTF-8 (no overlong forms, no
 *   surrogates): the decoder is fatal, never replacing bytes with U+FFFD;
 * - a parameter without a name is refused.
 * A parameter with an empty value is left out of the result, as RFC 6749 §3.1
 * asks ("Parameters sent without a value MUST be treated as if they were
 * omitted"), but still counts for the duplicate check.
 *
 * The one exception to the duplicate rule is a name in `repeatable`: RFC 8707
 * §2 lets `resource` be given several times. Such a name's values are
 * collected, in order, into an array (one value is an array of one).
 */
export function parseForm(input: Uint8Array | string, options?: { maxParameters?: number }): Record<string, string>;
export function parseForm(input: Uint8Array | string, options: { maxParameters?: number; repeatable: ReadonlySet<string> }): Record<string, string | string[]>;
export function parseForm(input: Uint8Array | string, options: { maxParameters?: number; repeatable?: ReadonlySet<string> } = {}): Record<string, string | string[]> {
  const bytes = typeof input === "string" ? Buffer.from(input, "latin1") : input;
  const maxParameters = options.maxParameters ?? MAX_PARAMETERS;
  const repeatable = options.repeatable;
  const result: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  const seen = new Set<string>();
  let count = 0;
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(AMPERSAND, start);
    if (end === -1) end = bytes.length;
    if (end > start) {
      const equals = bytes.indexOf(EQUALS, start);
      const split = equals === -1 || equals > end ? end : equals;
      const name = decodeComponent(bytes, start, split);
      const value = split === end ? "" : decodeComponent(bytes, split + 1, end);
      if (name === "") throw new FormError("a parameter has no name");
      if (++count > maxParameters) throw new FormError("too many parameters");
      if (repeatable?.has(name) === true) {
        if (value !== "") ((result[name] ??= []) as string[]).push(value);
      } else {
        if (seen.has(name)) throw new FormError(`${describeName(name)} is given more than once`);
        seen.add(name);
        if (value !== "") result[name] = value;
      }
    }
    start = end + 1;
  }
  return result;
}

/** A malformed form: always the client's fault, so a 400 in the RFC's shape (invalid_request). */
export class FormError extends Error {
  override readonly name = "FormError";
  readonly statusCode = 400;
  readonly code = "GATEHOUSE_MALFORMED_FORM";
}

/** The parameters that may repeat (RFC 8707 §2: `resource`), for the endpoints that take them. */
export const REPEATABLE_PARAMETERS: ReadonlySet<string> = new Set(["resource"]);

/** No request gatehouse understands has more than a dozen parameters. */
const MAX_PARAMETERS = 64;
const AMPERSAND = 0x26;
const EQUALS = 0x3d;
const PLUS = 0x2b;
const PERCENT = 0x25;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decodes one name or value: `+` is a space, `%XX` a byte, and the bytes must be UTF-8. */
function decodeComponent(bytes: Uint8Array, from: number, to: number): string {
  let plain = true;
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    if (b === PERCENT || b === PLUS || b > 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) return Buffer.from(bytes.buffer, bytes.byteOffset + from, to - from).toString("latin1");
  const out = new Uint8Array(to - from);
  let length = 0;
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    if (b === PLUS) {
      out[length++] = 0x20;
    } else if (b === PERCENT) {
      const high = hexValue(bytes[i + 1]);
      const low = hexValue(bytes[i + 2]);
      if (i + 2 >= to || high < 0 || low < 0) throw new FormError("malformed percent-encoding");
      out[length++] = (high << 4) | low;
      i += 2;
    } else {
      out[length++] = b;
    }
  }
  try {
    return utf8.decode(out.subarray(0, length));
  } catch {
    throw new FormError("a parameter is not valid UTF-8");
  }
}

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}

/**
 * Names a parameter in an error description only when it is a plain name:
 * RFC 6749 §5.2 limits error_description to printable ASCII without `"` or `\`,
 * and a name chosen by an attacker has no business in a response anyway.
 */
function describeName(name: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : "a parameter";
}
