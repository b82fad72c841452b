import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError } from "../../startup/config-error.js";
import { listSchemaProblems } from "../../startup/config-problems.js";

const schema = z.strictObject({
  issuer: z.string(),
  clients: z.array(z.strictObject({ id: z.string().min(1), pkce: z.strictObject({ required: z.boolean() }) })),
});

function problemsOf(value: unknown): string[] {
  const result = schema.safeParse(value);
  if (result.success) throw new Error("expected the schema to refuse the value");
  return listSchemaProblems(result.error.issues);
}

describe("listSchemaProblems", () => {
  it("lists every issue, not the first, each at its path as it reads in the YAML", () => {
    const problems = problemsOf({ issuer: 1, extra: true, clients: [{ id: "a", pkce: { required: true } }, { id: "", pkce: { required: "yes" } }] });
    expect(problems).toEqual([
      "issuer: Invalid input: expected string, received number",
      "clients[1].id: Too small: expected string to have >=1 characters",
      "clients[1].pkce.required: Invalid input: expected boolean, received string",
      '(root): Unrecognized key: "extra"',
    ]);
  });

  it("an issue about the document itself is at (root)", () => {
    expect(problemsOf(["not", "a", "mapping"])).toEqual(["(root): Invalid input: expected object, received array"]);
  });

  it("a path of keys and indices is written key.key[index] (fast-check)", () => {
    const part = fc.oneof(fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,8}$/), fc.nat({ max: 99 }));
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 6 }), fc.string({ minLength: 1 }), (path, message) => {
        const [line] = listSchemaProblems([{ code: "custom", path, message, input: undefined }]);
        const expected = path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
        expect(line).toBe(`${expected}: ${message}`);
      }),
    );
  });

  it("one line per issue, in zod's order (fast-check)", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1 }), { maxLength: 10 }), (messages) => {
        const issues = messages.map((message, i) => ({ code: "custom" as const, path: ["clients", i], message, input: undefined }));
        expect(listSchemaProblems(issues)).toEqual(messages.map((m, i) => `clients[${i}]: ${m}`));
      }),
    );
  });
});

describe("ConfigError", () => {
  it("carries every problem and lists them in its message", () => {
    const error = new ConfigError(["issuer: must use https", "clients[0].id: required"]);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("ConfigError");
    expect(error.problems).toEqual(["issuer: must use https", "clients[0].id: required"]);
    expect(error.message).toBe("invalid configuration:\n  - issuer: must use https\n  - clients[0].id: required");
  });

  it("names the configuration it is about", () => {
    expect(new ConfigError(["x: y"], "gateway configuration").message).toBe("invalid gateway configuration:\n  - x: y");
  });
});
