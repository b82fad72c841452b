import { describe, expect, it } from "vitest";
import { createConcurrencyLimiter } from "../../startup/concurrency-limiter.js";
import { createOverloadReporter } from "../../startup/overload-reporter.js";
import { propagatedTimeoutMs } from "../../services/authz/interceptors/overload.js";

describe("concurrency limiter", () => {
  it("admits up to maxConcurrent at once, queues up to maxQueue, sheds the next, and hands a freed slot to the first in the queue", async () => {
    const limiter = createConcurrencyLimiter({ maxConcurrent: 2, maxQueue: 1, queueTimeoutMs: 60_000 });
    const first = limiter.acquire();
    const second = limiter.acquire();
    expect(typeof first).toBe("function");
    expect(typeof second).toBe("function");
    const queued = limiter.acquire();
    expect(queued).toBeInstanceOf(Promise);
    expect(limiter.acquire()).toBeUndefined();
    expect([limiter.inFlight(), limiter.queued()]).toEqual([2, 1]);

    (first as () => void)();
    const granted = await queued;
    expect(typeof granted).toBe("function");
    expect([limiter.inFlight(), limiter.queued()]).toEqual([2, 0]);
    // Releasing twice frees one slot only.
    (first as () => void)();
    expect(limiter.inFlight()).toBe(2);
    (second as () => void)();
    granted!();
    expect(limiter.inFlight()).toBe(0);
  });

  it("a request that would wait no time at all is shed at once instead of queued", () => {
    const limiter = createConcurrencyLimiter({ maxConcurrent: 1, maxQueue: 10, queueTimeoutMs: 60_000 });
    limiter.acquire();
    expect(limiter.acquire(0)).toBeUndefined();
    expect(limiter.queued()).toBe(0);
  });

  it("a queued request whose wait ends without a slot is shed and leaves the queue", async () => {
    const limiter = createConcurrencyLimiter({ maxConcurrent: 1, maxQueue: 10, queueTimeoutMs: 1 });
    limiter.acquire();
    expect(await limiter.acquire()).toBeUndefined();
    expect(limiter.queued()).toBe(0);
  });
});

describe("overload reporter", () => {
  it("writes at most one line per kind per interval, each with the count since the previous one, and counts every event", () => {
    let now = 1_000_000;
    const lines: Array<{ kind: string; count: number }> = [];
    const counted: string[] = [];
    const reporter = createOverloadReporter<"shed" | "deadline">({
      log: { warn: (fields) => void lines.push(fields as { kind: string; count: number }) },
      messages: { shed: "shed", deadline: "deadline" },
      count: (kind) => void counted.push(kind),
      now: () => now,
    });
    for (let i = 0; i < 100; i++) reporter.report("shed");
    reporter.report("deadline");
    expect(lines).toEqual([
      { kind: "shed", count: 1 },
      { kind: "deadline", count: 1 },
    ]);
    now += 1_000;
    reporter.report("shed");
    expect(lines.at(-1)).toEqual({ kind: "shed", count: 100 });
    reporter.report("shed");
    reporter.flush();
    expect(lines.at(-1)).toEqual({ kind: "shed", count: 1 });
    expect(lines.filter((l) => l.kind === "shed").reduce((sum, l) => sum + l.count, 0)).toBe(102);
    expect(counted.filter((k) => k === "shed")).toHaveLength(102);
  });
});

describe("the propagated deadline", () => {
  it("reads Connect's connect-timeout-ms and gRPC's grpc-timeout in every unit, and nothing malformed", () => {
    expect(propagatedTimeoutMs(new Headers({ "connect-timeout-ms": "2000" }))).toBe(2_000);
    expect(propagatedTimeoutMs(new Headers({ "grpc-timeout": "3S" }))).toBe(3_000);
    expect(propagatedTimeoutMs(new Headers({ "grpc-timeout": "1500m" }))).toBe(1_500);
    expect(propagatedTimeoutMs(new Headers({ "grpc-timeout": "2M" }))).toBe(120_000);
    expect(propagatedTimeoutMs(new Headers({ "grpc-timeout": "250000u" }))).toBe(250);
    expect(propagatedTimeoutMs(new Headers({ "grpc-timeout": "1H" }))).toBe(3_600_000);
    expect(propagatedTimeoutMs(new Headers({ "grpc-timeout": "5x" }))).toBeUndefined();
    expect(propagatedTimeoutMs(new Headers({ "connect-timeout-ms": "-1" }))).toBeUndefined();
    expect(propagatedTimeoutMs(new Headers())).toBeUndefined();
  });
});
