/**
 * Call metadata as a plain record (metadata.ts: lower-case names): what the
 * gateway's client hands its transports, one object per call, and how the
 * receiving side reads it as Fetch Headers without building one.
 */

/** What the methods fall back to once the record is copied in. */
const base = Headers.prototype;

/** RFC 9110 §5.1 field names (a token), lower case as metadata names are. */
const LOWER_CASE_TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
/**
 * Field values that Headers keeps as they are (visible ASCII and latin1
 * octets, inner spaces and tabs; no leading or trailing whitespace, which
 * Headers strips) and that every transport sends unchanged.
 */
const PLAIN_VALUE = /^(?:[\x21-\x7e\x80-\xff](?:[\x20-\x7e\x80-\xff\t]*[\x21-\x7e\x80-\xff])?)?$/;

/** HeadersInit's record form: a plain object of fields, not a Headers or a list of pairs. */
export function isFieldRecord(init: ConstructorParameters<typeof Headers>[0]): init is Record<string, string> {
  return typeof init === "object" && init !== null && !Array.isArray(init) && !(init instanceof Headers) && !(Symbol.iterator in init);
}

/**
 * True when every field of `record` has a lower-case token for its name and a
 * value Headers would keep unchanged: such a record means the same as
 * `new Headers(record)`, field for field, and may be read as it is.
 */
export function isPlainMetadata(record: Readonly<Record<string, unknown>>): record is Readonly<Record<string, string>> {
  for (const name of Object.keys(record)) {
    const value = record[name];
    // ("__proto__" is a token, but `new Headers(record)` drops a field of that name: the long way.)
    if (typeof value !== "string" || !LOWER_CASE_TOKEN.test(name) || !PLAIN_VALUE.test(value) || name === "__proto__") return false;
  }
  return true;
}

/**
 * A head's fields as Node gives them (an object of lower-case names, a list
 * for a repeated field; pseudo-headers start with ":" and are left out) as
 * metadata: a plain record when each field came once, else a Headers with
 * every value appended, which is what `new Headers` of the fields gives.
 */
export function metadataOfNodeFields(fields: Readonly<Record<string, string | string[] | undefined>>): Record<string, string> | Headers {
  const record: Record<string, string> = {};
  for (const name in fields) {
    const value = fields[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ":" pseudo-header */) continue;
    // ("__proto__" would not become a field of a plain object: the long way too.)
    if (typeof value !== "string" || name === "__proto__") return headersOfNodeFields(fields);
    record[name] = value;
  }
  return record;
}

function headersOfNodeFields(fields: Readonly<Record<string, string | string[] | undefined>>): Headers {
  const headers = new Headers();
  for (const name in fields) {
    const value = fields[name];
    if (value === undefined || name.charCodeAt(0) === 58) continue;
    for (const v of Array.isArray(value) ? value : [String(value)]) headers.append(name, v);
  }
  return headers;
}

/** A RecordHeaders over a record already found plain (set by the class, whose constructor is private). */
let wrapPlain: (record: Readonly<Record<string, string>>) => Headers;

/**
 * A call's request headers over the plain record an in-process caller built
 * (all-in-one: the gateway's client), read without building a Fetch Headers:
 * `get` and `has` look the name up in the record; anything else (iteration,
 * a change) first copies the record into the Headers this is, and from then
 * on it is that Headers.
 *
 * Why: `new Headers(record)` runs WebIDL conversions and token checks on
 * every name and value, 1.6-2.5 µs for the four fields the gateway sends, and
 * each `get` about 0.15 µs; an RPC handler reads a few fields of every call.
 * In the all-in-one process that was about 5 % of the CPU of an
 * introspection.
 *
 * Only a plain record (isPlainMetadata) is taken (`from`); any other goes to
 * a real Headers, so a handler sees exactly what `new Headers(record)` would
 * give, and an invalid field still fails as it would (TypeError).
 */
export class RecordHeaders extends Headers {
  #record: Readonly<Record<string, string>> | undefined;

  private constructor(record: Readonly<Record<string, string>>) {
    super();
    this.#record = record;
  }

  /** Headers with the record's fields: a RecordHeaders when the record is plain (see the class), else a Headers. */
  static from(record: Readonly<Record<string, string>>): Headers {
    return isPlainMetadata(record) ? new RecordHeaders(record) : new Headers(record);
  }

  /** The record's fields into the Headers this is, once. */
  #fill(): void {
    const record = this.#record;
    if (record === undefined) return;
    this.#record = undefined;
    for (const name of Object.keys(record)) base.append.call(this, name, record[name]!);
  }

  // The Fetch methods, put on the prototype here: TypeScript declares them as properties of Headers, so
  // a class body cannot override them, and only code inside the class can read #record.
  static {
    wrapPlain = (record) => new RecordHeaders(record);
    const filled =
      <A extends unknown[], R>(method: (this: Headers, ...args: A) => R) =>
      function (this: RecordHeaders, ...args: A): R {
        this.#fill();
        return method.apply(this, args);
      };
    Object.defineProperties(RecordHeaders.prototype, {
      get: method(function (this: RecordHeaders, name: string) {
        const record = this.#record;
        if (record === undefined) return base.get.call(this, name);
        const key = String(name).toLowerCase();
        return Object.hasOwn(record, key) ? record[key]! : null;
      }),
      has: method(function (this: RecordHeaders, name: string) {
        const record = this.#record;
        return record === undefined ? base.has.call(this, name) : Object.hasOwn(record, String(name).toLowerCase());
      }),
      set: method(filled(base.set)),
      append: method(filled(base.append)),
      delete: method(filled(base.delete)),
      getSetCookie: method(filled(base.getSetCookie)),
      forEach: method(filled(base.forEach)),
      entries: method(filled(base.entries)),
      keys: method(filled(base.keys)),
      values: method(filled(base.values)),
      [Symbol.iterator]: method(filled(base[Symbol.iterator])),
    });
  }
}

/** A method as a class defines it: writable, configurable, not enumerable. */
function method(value: (...args: never[]) => unknown): PropertyDescriptor {
  return { value, writable: true, configurable: true, enumerable: false };
}

/**
 * A batched call's metadata map (proto/gatehouse/v1/batch_service.proto) as
 * Headers: read as it is (RecordHeaders) when it is plain, else a Headers
 * with every field appended, which refuses an invalid one (TypeError) and,
 * unlike `new Headers(record)`, keeps a field named "__proto__".
 */
export function metadataOfRecord(record: Readonly<Record<string, string>>): Headers {
  if (isPlainMetadata(record)) return wrapPlain(record);
  const headers = new Headers();
  for (const name of Object.keys(record)) headers.append(name, record[name]!);
  return headers;
}

/**
 * Headers as the record a batched call's metadata map carries
 * (proto/gatehouse/v1/batch_service.proto): every name once, a repeated
 * field's values joined as Headers joins them. Read back with
 * metadataOfRecord.
 */
export function recordOfMetadata(headers: Headers): Record<string, string> {
  // Without a prototype: a field named "__proto__" is a field like any other.
  const record: Record<string, string> = Object.create(null) as Record<string, string>;
  headers.forEach((value, name) => (record[name] = value));
  return record;
}
