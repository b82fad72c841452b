import { afterEach, describe, expect, it, vi } from "vitest";
import { STANDING_QUEUE_MS, createConcurrencyLimiter } from "../../startup/concurrency-limiter.js";
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

describe("concurrency limiter past saturation (a standing queue)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A limiter of one slot on a clock the test moves, with the slot taken. */
  const saturated = (queueTimeoutMs = 60_000) => {
    let time = 0;
    const limiter = createConcurrencyLimiter({ maxConcurrent: 1, maxQueue: 10, queueTimeoutMs }, () => time);
    const slot = limiter.acquire() as () => void;
    return { limiter, slot, advance: (ms: number) => (time += ms) };
  };
  const order = (grants: Array<Promise<(() => void) | undefined>>, served: string[], names: string[]) =>
    grants.forEach((grant, i) => void grant.then((release) => (served.push(names[i]!), release?.())));

  it("a queue that drains within the interval is served in order (FIFO)", async () => {
    const { limiter, slot, advance } = saturated();
    const served: string[] = [];
    const grants = [limiter.acquire(), limiter.acquire(), limiter.acquire()] as Array<Promise<(() => void) | undefined>>;
    order(grants, served, ["a", "b", "c"]);
    advance(STANDING_QUEUE_MS - 1);
    slot();
    await Promise.all(grants);
    expect(served).toEqual(["a", "b", "c"]);
  });

  it("a queue that has stood for the interval serves its newest waiter first (adaptive LIFO): the oldest is the likeliest to be past its caller's deadline", async () => {
    const { limiter, slot, advance } = saturated();
    const served: string[] = [];
    const grants = [limiter.acquire(), limiter.acquire(), limiter.acquire()] as Array<Promise<(() => void) | undefined>>;
    order(grants, served, ["a", "b", "c"]);
    advance(STANDING_QUEUE_MS);
    slot();
    await Promise.all(grants);
    // c first; then the queue was still standing for b's turn (a waits); a last, alone, once it is no longer standing.
    expect(served[0]).toBe("c");
    expect(served).toHaveLength(3);
    expect(limiter.queued()).toBe(0);
  });

  it("a request that joins a standing queue waits a tenth of the queue's wait (CoDel's target) and is shed after it; one that joined earlier keeps its wait", async () => {
    vi.useFakeTimers();
    const { limiter, advance } = saturated(10_000);
    const early = limiter.acquire() as Promise<(() => void) | undefined>;
    advance(STANDING_QUEUE_MS);
    const late = limiter.acquire() as Promise<(() => void) | undefined>;
    let lateAnswer: unknown = "waiting";
    void late.then((release) => (lateAnswer = release));
    await vi.advanceTimersByTimeAsync(999);
    expect(lateAnswer).toBe("waiting");
    await vi.advanceTimersByTimeAsync(1);
    expect(lateAnswer).toBeUndefined();
    expect(limiter.queued()).toBe(1);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(await early).toBeUndefined();
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
