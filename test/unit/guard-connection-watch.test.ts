import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { CLOCK_SKEW_GRACE_MS, createConnectionWatch, type ConnectionEnd, type ConnectionWatchControl } from "../../gateway/guard/connection-watch.js";
import type { Principal } from "../../gateway/guard/introspection-cache.js";

/** Long-lived connections end with their token: revoked (the token or its grant) or expired. Time is an argument. */

const principal = (jti: string, grantId: string, expiresAt: number): Principal => ({
  active: true,
  subject: "user-1",
  clientId: "web",
  scope: "read",
  scopes: new Set(["read"]),
  expiresAt,
  jti,
  grantId,
  audience: [],
  headerValues: { subject: "user-1", client: "web", scope: "read" },
});

let watch: ConnectionWatchControl<string> | undefined;
afterEach(() => watch?.close());

function watching(): { watch: ConnectionWatchControl<string>; ended: Array<[string, ConnectionEnd]> } {
  const ended: Array<[string, ConnectionEnd]> = [];
  watch = createConnectionWatch<string>({ end: (handle, reason) => ended.push([handle, reason]), clock: () => 0, sweepIntervalMs: 60_000 });
  return { watch, ended };
}

describe("the connection watch", () => {
  it("RFC 7009: revoking a token ends exactly its connections", () => {
    const { watch, ended } = watching();
    watch.add("a", principal("jti-1", "grant-1", 10_000));
    watch.add("b", principal("jti-1", "grant-1", 10_000));
    watch.add("c", principal("jti-2", "grant-1", 10_000));
    expect(watch.revoked({ jti: "jti-1" })).toBe(2);
    expect(ended).toEqual([
      ["a", "revoked"],
      ["b", "revoked"],
    ]);
    expect(watch.size).toBe(1);
  });

  it("revoking a grant (refresh family) ends the connections of all its tokens, and no other", () => {
    const { watch, ended } = watching();
    watch.add("a", principal("jti-1", "grant-1", 10_000));
    watch.add("b", principal("jti-2", "grant-1", 10_000));
    watch.add("c", principal("jti-3", "grant-2", 10_000));
    expect(watch.revoked({ grantId: "grant-1" })).toBe(2);
    expect(ended.map(([handle]) => handle)).toEqual(["a", "b"]);
  });

  it("a token that expires ends its connections at exp, not before", () => {
    const { watch, ended } = watching();
    watch.add("early", principal("jti-1", "grant-1", 1_000));
    watch.add("late", principal("jti-2", "grant-2", 5_000));
    expect(watch.sweep(999)).toBe(0);
    expect(watch.sweep(1_000)).toBe(1);
    expect(ended).toEqual([["early", "expired"]]);
    expect(watch.sweep(4_999)).toBe(0);
    expect(watch.sweep(5_000)).toBe(1);
    expect(watch.size).toBe(0);
  });

  it("a connection that ended by itself is forgotten; empty ids match nothing; after close nothing is ended", () => {
    const { watch, ended } = watching();
    const a = watch.add("a", principal("jti-1", "", 1_000));
    watch.delete(a);
    watch.delete(a);
    expect(a.handle).toBeUndefined();
    expect(watch.size).toBe(0);
    expect(watch.revoked({ jti: "jti-1" })).toBe(0);
    watch.add("b", principal("", "", 1_000));
    expect(watch.revoked({ jti: "" })).toBe(0);
    expect(watch.revoked({ grantId: "" })).toBe(0);
    watch.close();
    expect(watch.sweep(2_000)).toBe(0);
    expect(ended).toEqual([]);
  });

  it("one connection that fails to end does not keep the others open", () => {
    const ended: string[] = [];
    watch = createConnectionWatch<string>({
      end: (handle) => {
        ended.push(handle);
        if (handle === "a") throw new Error("socket gone");
      },
      clock: () => 0,
      sweepIntervalMs: 60_000,
    });
    watch.add("a", principal("jti-1", "grant-1", 10_000));
    watch.add("b", principal("jti-1", "grant-1", 10_000));
    expect(watch.revoked({ jti: "jti-1" })).toBe(2);
    expect(ended).toEqual(["a", "b"]);
  });
});

describe("clocks that disagree", () => {
  it("a token the authz service called live after this gateway's clock passed its exp is not cut at once, but within CLOCK_SKEW_GRACE_MS", () => {
    let now = 10_000;
    const ended: string[] = [];
    watch = createConnectionWatch<string>({ end: (handle) => ended.push(handle), clock: () => now, sweepIntervalMs: 60_000 });
    watch.add("skewed", principal("jti-1", "grant-1", 9_000));
    watch.add("fine", principal("jti-2", "grant-2", 20_000));
    expect(watch.sweep(now)).toBe(0);
    now = 20_000;
    expect(watch.sweep(now)).toBe(1);
    expect(ended).toEqual(["fine"]);
    expect(watch.sweep(10_000 + CLOCK_SKEW_GRACE_MS - 1)).toBe(0);
    expect(watch.sweep(10_000 + CLOCK_SKEW_GRACE_MS)).toBe(1);
    expect(ended).toEqual(["fine", "skewed"]);
  });
});

describe("revocationGraceMs (plain responses)", () => {
  it("a revoked token's response that finishes within the grace is not cut; one still open after it is", () => {
    let now = 0;
    const ended: Array<[string, ConnectionEnd]> = [];
    watch = createConnectionWatch<string>({ end: (handle, reason) => ended.push([handle, reason]), clock: () => now, sweepIntervalMs: 60_000, revocationGraceMs: 250 });
    const inFlight = watch.add("in flight", principal("jti-1", "grant-1", 10_000));
    watch.add("stream", principal("jti-1", "grant-1", 10_000));
    watch.add("other", principal("jti-2", "grant-2", 10_000));
    expect(watch.revoked({ jti: "jti-1" })).toBe(2);
    expect(ended).toEqual([]);
    watch.delete(inFlight);
    now = 249;
    expect(watch.sweep(now)).toBe(0);
    now = 250;
    expect(watch.sweep(now)).toBe(1);
    expect(ended).toEqual([["stream", "revoked"]]);
    expect(watch.size).toBe(1);
  });
});

describe("the watch as a list", () => {
  it("any order of adds, deletes and revocations leaves exactly the connections a set would hold", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("add" as const), jti: fc.constantFrom("j1", "j2", "j3") }),
            fc.record({ op: fc.constant("delete" as const), pick: fc.nat() }),
            fc.record({ op: fc.constant("revoke" as const), jti: fc.constantFrom("j1", "j2", "j3") }),
          ),
          { maxLength: 60 },
        ),
        (ops) => {
          const ended: string[] = [];
          const w = createConnectionWatch<string>({ end: (handle) => ended.push(handle), clock: () => 0, sweepIntervalMs: 60_000 });
          try {
            const model = new Map<string, string>();
            const entries: Array<ReturnType<typeof w.add>> = [];
            let n = 0;
            for (const step of ops) {
              if (step.op === "add") {
                const handle = `h${n++}`;
                entries.push(w.add(handle, principal(step.jti, "g", 10_000)));
                model.set(handle, step.jti);
              } else if (step.op === "delete" && entries.length > 0) {
                const entry = entries[step.pick % entries.length]!;
                if (entry.handle !== undefined) model.delete(entry.handle);
                w.delete(entry);
              } else if (step.op === "revoke") {
                const expected = [...model].filter(([, jti]) => jti === step.jti).map(([handle]) => handle);
                ended.length = 0;
                expect(w.revoked({ jti: step.jti })).toBe(expected.length);
                expect(ended).toEqual(expected);
                for (const handle of expected) model.delete(handle);
              }
              expect(w.size).toBe(model.size);
            }
          } finally {
            w.close();
          }
        },
      ),
    );
  });
});
