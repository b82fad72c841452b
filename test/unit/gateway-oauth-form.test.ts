import { isUtf8 } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormError, parseForm } from "../../gateway/parse-form.js";
import { parseResumedAuthorizationRequest, serializeAuthorizationRequest } from "../../gateway/authorization-request.js";

describe("parseForm (application/x-www-form-urlencoded, strictly)", () => {
  it.each([
    ["", {}],
    ["a=1&b=2", { a: "1", b: "2" }],
    ["a=x+y", { a: "x y" }],
    ["a=x%2By", { a: "x+y" }],
    ["a=%E2%98%83", { a: "\u2603" }],
    ["a=%f0%9f%98%80", { a: "\u{1F600}" }],
    ["na%6De=v", { name: "v" }],
    ["a=1=2", { a: "1=2" }],
    ["a=&b=2", { b: "2" }],
    ["a&b=2", { b: "2" }],
    ["a=1&&b=2&", { a: "1", b: "2" }],
    ["__proto__=x&constructor=y", Object.fromEntries([["__proto__", "x"], ["constructor", "y"]])],
  ])("RFC 6749 §3.1 / WHATWG: %j", (input, expected) => {
    const parsed = parseForm(input);
    // No prototype: a parameter called __proto__ is just a parameter.
    expect(Object.getPrototypeOf(parsed)).toBeNull();
    expect(Object.entries(parsed)).toEqual(Object.entries(expected));
  });

  it.each([
    ["a=1&a=2", "a is given more than once"],
    ["a=&a=2", "a is given more than once"],
    ["a&a", "a is given more than once"],
    ["%3Cx%3E=1&%3Cx%3E=2", "a parameter is given more than once"],
    ["=1", "a parameter has no name"],
    ["a=%", "malformed percent-encoding"],
    ["a=%4", "malformed percent-encoding"],
    ["a=%4g", "malformed percent-encoding"],
    ["a=%%41", "malformed percent-encoding"],
    ["a=%FF", "a parameter is not valid UTF-8"],
    ["a=%C0%AF", "a parameter is not valid UTF-8"],
    ["a=%ED%A0%80", "a parameter is not valid UTF-8"],
    ["a=%F4%90%80%80", "a parameter is not valid UTF-8"],
    ["%FF=1", "a parameter is not valid UTF-8"],
  ])("refuses %j: %s", (input, message) => {
    expect(() => parseForm(input)).toThrow(new FormError(message));
  });

  it("refuses more parameters than the limit", () => {
    expect(() => parseForm(Array.from({ length: 5 }, (_, i) => `p${i}=1`).join("&"), { maxParameters: 4 })).toThrow(FormError);
    expect(Object.keys(parseForm(Array.from({ length: 4 }, (_, i) => `p${i}=1`).join("&"), { maxParameters: 4 }))).toHaveLength(4);
  });

  it("a form error is a 400 (fastify reads statusCode)", () => {
    expect(new FormError("x").statusCode).toBe(400);
  });

  it("property: whatever URLSearchParams encodes, parseForm decodes back (empty values omitted)", () => {
    const name = fc.string({ unit: "binary", minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(fc.dictionary(name, fc.string({ unit: "binary", maxLength: 20 }), { maxKeys: 10 }), (entries) => {
        const encoded = new URLSearchParams(Object.entries(entries)).toString();
        const expected = Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== ""));
        expect({ ...parseForm(Buffer.from(encoded)) }).toEqual(expected);
      }),
    );
  });

  it("property: a name given twice is always refused, wherever the copies are", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", minLength: 1, maxLength: 8 }), fc.array(fc.string({ unit: "binary", maxLength: 6 }), { maxLength: 4 }), (repeated, others) => {
        const pairs: Array<[string, string]> = [...others.filter((o) => o !== "" && o !== repeated).map((o): [string, string] => [o, "v"]), [repeated, "1"], [repeated, "2"]];
        const shuffled = pairs.reverse();
        expect(() => parseForm(new URLSearchParams(shuffled).toString())).toThrow(/more than once/);
      }),
    );
  });

  it("property: percent-encoded bytes are accepted exactly when they are well-formed UTF-8 (node:buffer isUtf8 as the oracle)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 16 }), (bytes) => {
        const encoded = `v=${[...bytes].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")}`;
        if (isUtf8(bytes)) {
          expect(parseForm(encoded).v ?? "").toBe(Buffer.from(bytes).toString("utf8"));
        } else {
          expect(() => parseForm(encoded)).toThrow(new FormError("a parameter is not valid UTF-8"));
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it("property: any bytes either parse or fail with a FormError, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          const parsed = parseForm(bytes);
          for (const value of Object.values(parsed)) expect(typeof value).toBe("string");
        } catch (error) {
          expect(error).toBeInstanceOf(FormError);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("the resumed authorization request", () => {
  it("keeps the known parameters, in a canonical order, and drops the rest", () => {
    const text = "state=s+1&client_id=web&prompt=none&unknown=x&response_type=code";
    expect(parseResumedAuthorizationRequest(text)).toBe("response_type=code&client_id=web&state=s+1&prompt=none");
  });

  it.each([["client_id=web&state=%FF"], ["client_id=a&client_id=b"], ["state=only"], [`client_id=web&state=${"x".repeat(1_025)}`]])(
    "refuses %j",
    (text) => {
      expect(parseResumedAuthorizationRequest(text)).toBeUndefined();
    },
  );

  it("property: serializing then parsing is the identity", () => {
    const value = fc.string({ unit: "binary", minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(value, value, fc.option(value, { nil: undefined }), (clientId, state, scope) => {
        const serialized = serializeAuthorizationRequest({ client_id: clientId, state, ...(scope === undefined ? {} : { scope }) });
        expect(parseResumedAuthorizationRequest(serialized)).toBe(serialized);
      }),
    );
  });
});
