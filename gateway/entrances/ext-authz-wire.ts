import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/**
 * The two messages of Envoy's `Check`, read and written directly on the
 * protobuf wire with the field numbers of proto/envoy/ (themselves Envoy's).
 * The generated code (gen/envoy/) reads and writes the same bytes; the tests
 * hold the two to each other. Going without it here halves what a Check
 * costs in encoding: only the fields the guard reads are decoded (everything
 * else Envoy sends, metadata included, is skipped unread), and the answer is
 * written without building message objects first.
 */

/** What the guard reads of a CheckRequest (attributes.request.http and the source address). */
export interface EnvoyHttpRequest {
  /** HttpRequest.id (1). */
  readonly id: string;
  /** HttpRequest.method (2). */
  readonly method: string;
  /** HttpRequest.headers (3): lower-case names, repeated fields joined. */
  readonly headers: Record<string, string>;
  /** HttpRequest.path (4): the request target, path and query, undecoded. */
  readonly path: string;
  /** HttpRequest.host (5). */
  readonly host: string;
  /** HttpRequest.header_map (13), one entry per field, when the filter sets encode_raw_headers. */
  readonly headerMap: ReadonlyArray<{ readonly key: string; readonly value: string }> | undefined;
}

export interface EnvoyCheck {
  /** Undefined when the request carries no HTTP attributes (Envoy's network filter). */
  readonly http: EnvoyHttpRequest | undefined;
  /** attributes.source.address.socket_address.address, or "". */
  readonly peer: string;
}

/** google.rpc.Code values the answer uses. */
export type CheckStatusCode = number;

/** A header field to set (HeaderValueOption with append false, OVERWRITE_IF_EXISTS_OR_ADD). */
export type HeaderToSet = readonly [name: string, value: string];

export type CheckAnswer =
  | { readonly kind: "ok"; readonly headers: readonly HeaderToSet[]; readonly headersToRemove: readonly string[] }
  | { readonly kind: "denied"; readonly code: CheckStatusCode; readonly message: string; readonly httpStatus: number; readonly headers: readonly HeaderToSet[]; readonly body: string }
  /** A status without an HTTP response (a Check the guard cannot decide on). */
  | { readonly kind: "status"; readonly code: CheckStatusCode; readonly message: string };

/** Reads a CheckRequest; throws on bytes that are not one. */
export function decodeCheckRequest(bytes: Uint8Array): EnvoyCheck {
  const reader = new BinaryReader(bytes);
  let http: EnvoyHttpRequest | undefined;
  let peer = "";
  // CheckRequest.attributes (1) → AttributeContext: source (1), request (4).
  eachField(reader, reader.len, (field, type) => {
    if (field !== 1 || type !== WireType.LengthDelimited) return false;
    eachField(reader, end(reader), (field, type) => {
      if (type !== WireType.LengthDelimited) return false;
      if (field === 1) {
        // Peer.address (1) → Address.socket_address (1) → SocketAddress.address (2).
        eachField(reader, end(reader), (field, type) => {
          if (field !== 1 || type !== WireType.LengthDelimited) return false;
          eachField(reader, end(reader), (field, type) => {
            if (field !== 1 || type !== WireType.LengthDelimited) return false;
            eachField(reader, end(reader), (field, type) => {
              if (field !== 2 || type !== WireType.LengthDelimited) return false;
              peer = reader.string();
              return true;
            });
            return true;
          });
          return true;
        });
        return true;
      }
      if (field === 4) {
        // Request.http (2).
        eachField(reader, end(reader), (field, type) => {
          if (field !== 2 || type !== WireType.LengthDelimited) return false;
          http = readHttpRequest(reader, end(reader));
          return true;
        });
        return true;
      }
      return false;
    });
    return true;
  });
  return { http, peer };
}

function readHttpRequest(reader: BinaryReader, stop: number): EnvoyHttpRequest {
  let id = "";
  let method = "";
  let path = "";
  let host = "";
  // No prototype: a field named `__proto__` is a field like any other.
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  let headerMap: Array<{ key: string; value: string }> | undefined;
  eachField(reader, stop, (field, type) => {
    if (type !== WireType.LengthDelimited) return false;
    switch (field) {
      case 1:
        id = reader.string();
        return true;
      case 2:
        method = reader.string();
        return true;
      case 3: {
        // A map entry: key (1), value (2).
        let key = "";
        let value = "";
        eachField(reader, end(reader), (field, type) => {
          if (type !== WireType.LengthDelimited) return false;
          if (field === 1) key = reader.string();
          else if (field === 2) value = reader.string();
          else return false;
          return true;
        });
        headers[key] = value;
        return true;
      }
      case 4:
        path = reader.string();
        return true;
      case 5:
        host = reader.string();
        return true;
      case 13:
        // HeaderMap.headers (1) → HeaderValue: key (1), value (2), raw_value (3).
        headerMap = [];
        eachField(reader, end(reader), (field, type) => {
          if (field !== 1 || type !== WireType.LengthDelimited) return false;
          let key = "";
          let value = "";
          let raw: Uint8Array | undefined;
          eachField(reader, end(reader), (field, type) => {
            if (type !== WireType.LengthDelimited) return false;
            if (field === 1) key = reader.string();
            else if (field === 2) value = reader.string();
            else if (field === 3) raw = reader.bytes();
            else return false;
            return true;
          });
          // raw_value carries the field's bytes as sent: read them as Node reads header bytes (latin1).
          headerMap!.push({ key, value: raw !== undefined && raw.length > 0 ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("latin1") : value });
          return true;
        });
        return true;
      default:
        return false;
    }
  });
  return { id, method, headers, path, host, headerMap };
}

/** The end of the length-delimited field whose length is next. */
function end(reader: BinaryReader): number {
  const length = reader.uint32();
  const stop = reader.pos + length;
  if (stop > reader.len) throw new RangeError("a field runs past the end of the message");
  return stop;
}

/** Visits each field up to `stop`; `read` consumes the fields it knows and returns false for the rest, which are skipped. */
function eachField(reader: BinaryReader, stop: number, read: (field: number, type: WireType) => boolean): void {
  while (reader.pos < stop) {
    const [field, type] = reader.tag();
    if (!read(field, type)) reader.skip(type, field);
  }
  if (reader.pos !== stop) throw new RangeError("a field runs past the end of its message");
}

/** Writes a CheckResponse: status (1), denied_response (2) or ok_response (3). */
export function encodeCheckResponse(answer: CheckAnswer): Uint8Array {
  const writer = new BinaryWriter();
  // google.rpc.Status: code (1), message (2); OK is an empty status.
  writer.tag(1, WireType.LengthDelimited).fork();
  if (answer.kind !== "ok") writer.tag(1, WireType.Varint).int32(answer.code).tag(2, WireType.LengthDelimited).string(answer.message);
  writer.join();
  if (answer.kind === "denied") {
    // DeniedHttpResponse: status (1: HttpStatus.code 1), headers (2), body (3).
    writer.tag(2, WireType.LengthDelimited).fork();
    writer.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int32(answer.httpStatus).join();
    for (const [name, value] of answer.headers) writeHeaderOption(writer, 2, name, value);
    if (answer.body !== "") writer.tag(3, WireType.LengthDelimited).string(answer.body);
    writer.join();
  } else if (answer.kind === "ok") {
    // OkHttpResponse: headers (2), headers_to_remove (5).
    writer.tag(3, WireType.LengthDelimited).fork();
    for (const [name, value] of answer.headers) writeHeaderOption(writer, 2, name, value);
    for (const name of answer.headersToRemove) writer.tag(5, WireType.LengthDelimited).string(name);
    writer.join();
  }
  return writer.finish();
}

/**
 * HeaderValueOption: header (1: HeaderValue key 1, value 2), append (2:
 * google.protobuf.BoolValue, present and false: an empty message),
 * append_action (3: OVERWRITE_IF_EXISTS_OR_ADD = 2).
 */
function writeHeaderOption(writer: BinaryWriter, field: number, name: string, value: string): void {
  writer.tag(field, WireType.LengthDelimited).fork();
  writer.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(name).tag(2, WireType.LengthDelimited).string(value).join();
  writer.tag(2, WireType.LengthDelimited).fork().join();
  writer.tag(3, WireType.Varint).int32(2);
  writer.join();
}
