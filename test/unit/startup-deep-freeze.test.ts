import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deepFreeze } from "../../startup/deep-freeze.js";

/** Every object reachable from `value` (properties, Map keys and values, Set members). */
function reachable(value: unknown, seen = new Set<object>()): Set<object> {
  if (value === null || typeof value !== "object" || seen.has(value)) return seen;
  seen.add(value);
  if (value instanceof Map) for (const [key, entry] of value) (reachable(key, seen), reachable(entry, seen));
  else if (value instanceof Set) for (const member of value) reachable(member, seen);
  else for (const child of Object.values(value)) reachable(child, seen);
  return seen;
}

/** A structural copy, with Maps and Sets as tagged arrays, to compare contents before and after. */
function snapshot(value: unknown): unknown {
  if (value instanceof Map) return ["Map", [...value].map(([k, v]) => [snapshot(k), snapshot(v)])];
  if (value instanceof Set) return ["Set", [...value].map(snapshot)];
  if (Array.isArray(value)) return value.map(snapshot);
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, snapshot(v)]));
  return value;
}

/** Plain configuration-like data: objects, arrays, Maps and Sets, nested. */
const configValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined)),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie("value"), { maxKeys: 4 }),
    fc.array(fc.tuple(fc.string({ maxLength: 6 }), tie("value")), { maxLength: 4 }).map((entries) => new Map(entries)),
    fc.array(tie("value"), { maxLength: 4 }).map((members) => new Set(members)),
  ),
})).value;

describe("deepFreeze", () => {
  it("freezes every object it can reach, keeping the contents (fast-check)", () => {
    fc.assert(
      fc.property(configValue, (value) => {
        const before = snapshot(value);
        const frozen = deepFreeze(value);
        expect(snapshot(frozen)).toEqual(before);
        for (const object of reachable(frozen)) expect(Object.isFrozen(object)).toBe(true);
      }),
    );
  });

  it("every Map and Set it can reach refuses set, add, delete and clear (fast-check)", () => {
    fc.assert(
      fc.property(configValue, (value) => {
        for (const object of reachable(deepFreeze(value))) {
          if (object instanceof Map) {
            const size = object.size;
            expect(() => object.set("new", 1)).toThrow(TypeError);
            expect(() => object.delete([...object.keys()][0])).toThrow(TypeError);
            expect(() => object.clear()).toThrow(TypeError);
            expect(object.size).toBe(size);
          }
          if (object instanceof Set) {
            const size = object.size;
            expect(() => object.add(Symbol("new"))).toThrow(TypeError);
            expect(() => object.delete([...object][0])).toThrow(TypeError);
            expect(() => object.clear()).toThrow(TypeError);
            expect(object.size).toBe(size);
          }
        }
      }),
    );
  });

  it("a Map held by a frozen object is swapped for its read-only copy, which still reads and iterates", () => {
    const config = deepFreeze({ clients: new Map([["web", { scopes: new Set(["read"]) }]]) });
    expect(config.clients).toBeInstanceOf(Map);
    expect(config.clients.get("web")!.scopes.has("read")).toBe(true);
    expect([...config.clients.keys()]).toEqual(["web"]);
    expect(() => config.clients.set("evil", { scopes: new Set() })).toThrow("the configuration is read-only");
    expect(() => config.clients.get("web")!.scopes.add("admin")).toThrow(TypeError);
    expect(() => {
      (config as { clients: unknown }).clients = new Map();
    }).toThrow(TypeError);
  });

  it("objects used as Map keys and Set members are frozen too", () => {
    const key = { name: "k" };
    const member = { name: "m" };
    const frozen = deepFreeze({ map: new Map([[key, 1]]), set: new Set([member]) });
    expect(Object.isFrozen([...frozen.map.keys()][0])).toBe(true);
    expect(Object.isFrozen([...frozen.set][0])).toBe(true);
  });

  it("a cycle through a Map ends, and leads back to the read-only copy", () => {
    const map = new Map<string, unknown>();
    const holder = { map };
    map.set("self", holder);
    const frozen = deepFreeze(holder);
    expect(frozen.map.get("self")).toBe(frozen);
    expect(() => frozen.map.set("x", 1)).toThrow(TypeError);
  });

  it("freezing twice gives the same value; a read-only Map stays as it is", () => {
    const once = deepFreeze({ map: new Map([["a", [1]]]) });
    const map = once.map;
    expect(deepFreeze(once)).toBe(once);
    expect(deepFreeze(once).map).toBe(map);
  });

  it("a getter is not called", () => {
    let calls = 0;
    const value = {
      get counted() {
        calls += 1;
        return {};
      },
    };
    deepFreeze(value);
    expect([calls, Object.isFrozen(value)]).toEqual([0, true]);
  });
});
