import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isFieldRecord, isPlainMetadata, metadataOfNodeFields, metadataOfRecord, recordOfMetadata, RecordHeaders } from "../../contract/metadata-headers.js";

// Call metadata as a plain record, read as Headers without building one (the all-in-one process's RPCs):
// it must mean exactly what `new Headers(record)` means.

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz";
const name = fc.string({ unit: fc.constantFrom(...TCHARS.split("")), minLength: 1, maxLength: 12 });
/** Visible ASCII and latin1, with inner spaces: what metadata values are. */
const value = fc
  .string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 20 })
  .map((v) => v.trim());
const plainRecord = fc.dictionary(name, value, { maxKeys: 6 });

/** Everything a reader can see of a Headers. */
function seen(headers: Headers, probes: readonly string[]) {
  return {
    entries: [...headers.entries()],
    iterated: [...headers],
    keys: [...headers.keys()],
    values: [...headers.values()],
    forEach: (() => {
      const out: string[][] = [];
      headers.forEach((v, k) => out.push([k, v]));
      return out;
    })(),
    cookies: headers.getSetCookie(),
    got: probes.map((probe) => [headers.get(probe), headers.has(probe)]),
  };
}

describe("RecordHeaders", () => {
  it("reads as new Headers(record) reads, for any plain record and any name asked (upper case too)", () => {
    fc.assert(
      fc.property(plainRecord, fc.array(name, { maxLength: 4 }), (record, extra) => {
        const probes = [...Object.keys(record), ...Object.keys(record).map((k) => k.toUpperCase()), ...extra, "constructor", "__proto__", "toString"];
        const expected = new Headers(record);
        // Lookups first (the record is read as it is), then everything else (copied in).
        const lazy = RecordHeaders.from(record);
        const looked = probes.map((probe) => [lazy.get(probe), lazy.has(probe)]);
        expect(looked).toEqual(probes.map((probe) => [expected.get(probe), expected.has(probe)]));
        expect(seen(lazy, probes)).toEqual(seen(expected, probes));
      }),
    );
  });

  it("changes as a Headers changes: set, append, delete, then every reader", () => {
    fc.assert(
      fc.property(plainRecord, name, value, name, (record, setName, setValue, deleted) => {
        const expected = new Headers(record);
        const lazy = RecordHeaders.from(record);
        for (const headers of [expected, lazy]) {
          headers.append(setName, setValue);
          headers.set("gatehouse-x", setValue);
          headers.delete(deleted);
        }
        const probes = [setName, deleted, "gatehouse-x"];
        expect(seen(lazy, probes)).toEqual(seen(expected, probes));
      }),
    );
  });

  it("is a Headers (instanceof, and new Headers of it copies it)", () => {
    const lazy = RecordHeaders.from({ authorization: "Basic eDp5", "gatehouse-tenant": "acme" });
    expect(lazy).toBeInstanceOf(Headers);
    expect([...new Headers(lazy)]).toEqual([
      ["authorization", "Basic eDp5"],
      ["gatehouse-tenant", "acme"],
    ]);
    // Reading never changes the record's own object.
    const record = { "set-cookie": "a=1" };
    expect(RecordHeaders.from(record).getSetCookie()).toEqual(["a=1"]);
    expect(record).toEqual({ "set-cookie": "a=1" });
  });

  it("leaves every other record to a real Headers: upper-case names, values Headers would trim, invalid fields (TypeError as before)", () => {
    const records: Array<Record<string, string>> = [{ Authorization: "x" }, { authorization: " padded " }, { authorization: "a\tb\t" }, { "x-y": "" }];
    for (const record of records) {
      const headers = RecordHeaders.from(record);
      expect([...headers]).toEqual([...new Headers(record)]);
    }
    expect(RecordHeaders.from({ Authorization: "x" })).not.toBeInstanceOf(RecordHeaders);
    expect(() => RecordHeaders.from({ "bad name": "x" })).toThrow(TypeError);
    expect(() => RecordHeaders.from({ authorization: "line\nbreak" })).toThrow(TypeError);
    expect(() => RecordHeaders.from({ authorization: "\u20ac" })).toThrow(TypeError);
  });
});

describe("isPlainMetadata and isFieldRecord", () => {
  it("takes lower-case token names with values Headers keeps unchanged, and nothing else", () => {
    expect(isPlainMetadata({ "gatehouse-service-credential": "s3cret", "gatehouse-client-address": "::1", empty: "" })).toBe(true);
    expect(isPlainMetadata({ "Gatehouse-Tenant": "a" })).toBe(false);
    expect(isPlainMetadata({ a: " x" })).toBe(false);
    expect(isPlainMetadata({ a: "x\r\n" })).toBe(false);
    expect(isPlainMetadata({ a: "\u0100" })).toBe(false);
    expect(isPlainMetadata({ "a b": "x" })).toBe(false);
    expect(isPlainMetadata({ a: 1 as unknown as string })).toBe(false);
  });

  it("tells a record from a Headers, a list of pairs and an iterable", () => {
    expect(isFieldRecord({ a: "b" })).toBe(true);
    expect(isFieldRecord(new Headers())).toBe(false);
    expect(isFieldRecord([["a", "b"]])).toBe(false);
    expect(isFieldRecord(new Map([["a", "b"]]) as unknown as Record<string, string>)).toBe(false);
    expect(isFieldRecord(undefined)).toBe(false);
  });
});

describe("metadataOfNodeFields", () => {
  it("is a plain record of the fields when each came once, pseudo-headers left out; else the Headers new Headers gives", () => {
    expect(metadataOfNodeFields({ ":status": "200", "content-type": "application/proto", "x-a": "1", absent: undefined })).toEqual({ "content-type": "application/proto", "x-a": "1" });
    const repeated = metadataOfNodeFields({ ":path": "/x", "set-cookie": ["a=1", "b=2"], "x-a": "1" });
    expect(repeated).toBeInstanceOf(Headers);
    expect([...(repeated as Headers)]).toEqual([...new Headers([["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-a", "1"]])]);
  });
});

describe("recordOfMetadata and metadataOfRecord (a batched call's metadata map, proto/gatehouse/v1/batch_service.proto)", () => {
  it("read back as the same metadata, a repeated field's values joined as Headers joins them (a field named __proto__ too)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), (fields) => {
        const headers = new Headers();
        for (const [n, v] of fields) headers.append(n, v);
        // The joined values as fields again: RFC 9110 §5.5, a field value has no leading or trailing whitespace,
        // so a join that ends in some (two empty values: ", ") reads back trimmed (","), as any recipient reads it.
        const joined = new Headers();
        for (const [n, v] of headers) joined.append(n, v);
        expect([...metadataOfRecord(recordOfMetadata(headers))]).toEqual([...joined]);
      }),
    );
  });

  it("a join of empty values (fast-check seed 136916680: [s, ''], [s, '']) reads back as the field value HTTP makes of it", () => {
    const headers = new Headers([["s", ""], ["s", ""]]);
    expect([...headers]).toEqual([["s", ", "]]);
    expect([...metadataOfRecord(recordOfMetadata(headers))]).toEqual([["s", ","]]);
  });
});

describe("a field named __proto__ (found by the properties above, now asked every run)", () => {
  const withProto = () => {
    const record: Record<string, string> = {};
    Object.defineProperty(record, "__proto__", { value: "x", enumerable: true, writable: true, configurable: true });
    record.a = "1";
    return record;
  };

  it("RecordHeaders.from means what new Headers(record) means, which drops it", () => {
    expect([...RecordHeaders.from(withProto())]).toEqual([...new Headers(withProto())]);
  });

  it("metadataOfRecord keeps it, as a Headers it is appended to keeps it", () => {
    const expected = new Headers();
    expected.append("__proto__", "x");
    expected.append("a", "1");
    expect([...metadataOfRecord(withProto())]).toEqual([...expected]);
  });
});
