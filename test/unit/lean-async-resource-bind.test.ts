import { AsyncLocalStorage, AsyncResource, executionAsyncId } from "node:async_hooks";
import { describe, expect, it } from "vitest";
import { installLeanAsyncResourceBind } from "../../startup/lean-async-resource-bind.js";

// The gateway's process replaces Node 20's AsyncResource#bind (its deprecated accessor cost 8 % of the
// split gateway's CPU): a bound function must do exactly what it did. The replacement is process-wide,
// so this file installs it once and checks the result; installing again changes nothing.

describe("installLeanAsyncResourceBind", () => {
  const original = AsyncResource.prototype.bind;
  const replaced = installLeanAsyncResourceBind();

  it("replaces Node 20's bind, whose bound functions carry the deprecated asyncResource property; a second install is a no-op", () => {
    // Node 20 (this project's engine) defines the property; a Node that no longer does keeps its own bind.
    expect(replaced).toBe(Object.hasOwn(original.call(new AsyncResource("t"), () => undefined), "asyncResource"));
    expect(installLeanAsyncResourceBind()).toBe(false);
    const bound = new AsyncResource("t").bind(() => undefined);
    expect(Object.hasOwn(bound, "asyncResource")).toBe(false);
  });

  it("runs the function in the resource's async scope: its execution id, and the AsyncLocalStorage value of where it was bound", async () => {
    const storage = new AsyncLocalStorage<string>();
    const { bound, id } = storage.run("bound here", () => {
      const resource = new AsyncResource("t");
      return { bound: resource.bind(() => ({ store: storage.getStore(), id: executionAsyncId() })), id: resource.asyncId() };
    });
    const seen = await storage.run("called here", () => new Promise<{ store: string | undefined; id: number }>((resolve) => setImmediate(() => resolve(bound()))));
    expect(seen).toEqual({ store: "bound here", id });
  });

  it("passes the arguments and the receiver through, or the thisArg given; length is the function's", () => {
    const resource = new AsyncResource("t");
    function add(this: { base: number } | undefined, a: number, b: number) {
      return (this?.base ?? 0) + a + b;
    }
    const unbound = resource.bind(add);
    expect(unbound.length).toBe(2);
    expect(unbound.call({ base: 10 }, 1, 2)).toBe(13);
    // (thisArg is in Node's documentation since v14.8; @types/node declares bind with fn alone.)
    const withThis = (resource.bind as (fn: typeof add, thisArg: unknown) => typeof add).call(resource, add, { base: 100 });
    expect(withThis.length).toBe(2);
    expect(withThis.call({ base: 10 }, 1, 2)).toBe(103);
    expect(AsyncResource.bind((x: number) => x * 2)(21)).toBe(42);
  });

  it("refuses what is not a function, as Node does (ERR_INVALID_ARG_TYPE)", () => {
    expect(() => new AsyncResource("t").bind(42 as unknown as () => void)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_TYPE" }));
  });
});
