import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { salvageList } from "../../startup/salvage-list.js";
import { salvageSection } from "../../startup/salvage-section.js";

describe("salvageSection: a section of an invalid file, on its own", () => {
  const withDefault = z.strictObject({ port: z.number().int().default(8080) }).default({ port: 8080 });
  const required = z.strictObject({ clientId: z.string().min(1) });

  it.each<[string, z.ZodType<unknown>, unknown, unknown]>([
    ["a valid section is its parsed value", withDefault, { port: 9000 }, { port: 9000 }],
    ["a missing section with a default is the default", withDefault, undefined, { port: 8080 }],
    ["an invalid section with a default is the default", withDefault, { port: "x" }, { port: 8080 }],
    ["an invalid section without a default is undefined", required, { clientId: "" }, undefined],
    ["a missing section without a default is undefined", required, undefined, undefined],
  ])("%s", (_name, schema, value, expected) => {
    expect(salvageSection(schema, value)).toEqual(expected);
  });
});

describe("salvageList: the entries of a list, each on its own", () => {
  const entry = z.strictObject({ id: z.string().min(1) });

  it("an invalid entry leaves a hole, so the others keep their positions", () => {
    expect(salvageList(entry, [{ id: "a" }, { id: "" }, { id: "c" }, "x"])).toEqual([{ id: "a" }, undefined, { id: "c" }, undefined]);
  });

  it.each<[string, unknown]>([
    ["missing", undefined],
    ["a mapping", { id: "a" }],
    ["a string", "a"],
  ])("a list that is %s gives no entries", (_name, value) => {
    expect(salvageList(entry, value)).toEqual([]);
  });

  it("entry i is entry i of the list when valid, a hole when not (fast-check)", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.record({ id: fc.string() }), fc.anything())), (items) => {
        const salvaged = salvageList(entry, items);
        expect(salvaged).toHaveLength(items.length);
        salvaged.forEach((value, i) => {
          const result = entry.safeParse(items[i]);
          expect(value).toEqual(result.success ? result.data : undefined);
        });
      }),
    );
  });
});
