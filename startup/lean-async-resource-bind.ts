import { AsyncResource } from "node:async_hooks";

/** Any function: a bound function takes whatever its function takes. */
type AnyFunction = (this: unknown, ...args: any[]) => unknown;
type Bind = (this: AsyncResource, fn: AnyFunction, thisArg?: unknown) => AnyFunction;

/**
 * `AsyncResource#bind` as Node documents it, without the `asyncResource`
 * accessor pair that Node 20 also defines on every bound function, each half
 * wrapped in `util.deprecate` (DEP0172).
 *
 * Why: node:http2 binds a function for every client request
 * (`ClientHttp2Session#request`: `reqAsync.bind(requestOnConnect...)`), and
 * building those two deprecated wrappers was 8 % of the split gateway's CPU
 * per introspection (a CPU profile at a fixed rate). The gateway calls the
 * authz service over HTTP/2 on every token, introspection and guard request
 * that is not cached.
 *
 * What a bound function does is unchanged: it runs `fn` in the resource's
 * async scope (`runInAsyncScope`, so AsyncLocalStorage and async hooks see
 * what they saw), with `this` or `thisArg`, and its `length` is fn's. Only
 * the deprecated `bound.asyncResource` property is absent, as it is in the
 * Node versions that removed it.
 *
 * Installed once, at the start of the gateway's process (gateway/main.ts),
 * whose calls to the authz service are HTTP/2 requests; the all-in-one
 * process calls it in process. Returns whether it replaced anything: on a
 * Node whose own `bind` defines no such property it leaves `bind` alone.
 */
export function installLeanAsyncResourceBind(): boolean {
  const prototype = AsyncResource.prototype as unknown as { bind: Bind };
  if (!definesDeprecatedAccessor(prototype.bind)) return false;
  prototype.bind = function bind(fn, thisArg) {
    if (typeof fn !== "function") {
      throw Object.assign(new TypeError(`The "fn" argument must be of type function. Received ${fn === null ? "null" : typeof fn}`), { code: "ERR_INVALID_ARG_TYPE" });
    }
    let bound: AnyFunction;
    if (thisArg === undefined) {
      const resource = this;
      bound = function (this: unknown, ...args: unknown[]) {
        return resource.runInAsyncScope(fn, this, ...args);
      };
    } else {
      bound = this.runInAsyncScope.bind(this, fn, thisArg) as AnyFunction;
    }
    Object.defineProperty(bound, "length", { configurable: true, enumerable: false, writable: false, value: fn.length });
    return bound;
  };
  return true;
}

/** True when `bind` puts an `asyncResource` property on what it returns (Node 20: DEP0172's accessor). */
function definesDeprecatedAccessor(bind: Bind): boolean {
  const resource = new AsyncResource("gatehouse.probe");
  try {
    return Object.hasOwn(bind.call(resource, () => undefined), "asyncResource");
  } finally {
    resource.emitDestroy();
  }
}
