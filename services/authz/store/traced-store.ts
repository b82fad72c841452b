import type { Tracing } from "../../../startup/tracing.js";
import type { Store } from "../oauth/store.js";

/** The aggregates whose every operation is one Redis round trip or script (or one memory operation). */
const AGGREGATES = ["requests", "codes", "grants", "sessions", "consents", "attempts", "clientAssertions", "audit", "userStates"] as const;

/**
 * The store with a span around every operation (`store.codes.redeem`,
 * `store.grants.rotate`, ...): each is one Redis command or Lua script, so
 * the spans show the round trips of a request. Built only when tracing is on
 * (deps.ts); the untraced store is the store itself.
 */
export function traceStore(store: Store, tracing: Tracing, system: "redis" | "memory"): Store {
  const attributes = { "db.system.name": system };
  const wrap = <T extends object>(target: T, prefix: string): T => {
    const wrapped: Record<string, unknown> = {};
    for (const name of Object.keys(target) as Array<keyof T & string>) {
      const member = target[name];
      wrapped[name] =
        typeof member === "function"
          ? (...args: unknown[]) => tracing.inSpan(`store.${prefix}.${name}`, () => (member as (...a: unknown[]) => Promise<unknown>).apply(target, args), attributes)
          : member;
    }
    return wrapped as T;
  };
  const traced = { ...store } as { -readonly [K in keyof Store]: Store[K] };
  for (const aggregate of AGGREGATES) (traced as Record<string, unknown>)[aggregate] = wrap(store[aggregate], aggregate);
  // The feed's announce is a command per revocation; its subscription lives as long as the process and is not a step of a request.
  traced.revocationFeed = {
    announce: (revocation) => tracing.inSpan("store.revocationFeed.announce", () => store.revocationFeed.announce(revocation), attributes),
    subscribe: (onRevocation, onBroken) => store.revocationFeed.subscribe(onRevocation, onBroken),
  };
  // The registry's collections are one level deeper: store.registry.clients.get, ...
  traced.registry = { clients: wrap(store.registry.clients, "registry.clients"), scopes: wrap(store.registry.scopes, "registry.scopes"), users: wrap(store.registry.users, "registry.users") };
  traced.ping = () => store.ping();
  traced.close = () => store.close();
  return traced;
}
