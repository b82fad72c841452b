import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { runPacedHttpLoad } from "../../bench/lib/paced-load.js";

// bench:guard's paced load (issue 10's "p99 added"): what it sends and what it counts, against a real server.
// Nothing here is timed: how evenly it paces is the benchmark's to show, not a test's.

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve()))));

/** A server that answers each request with what `answer` says, and counts what it saw. */
async function serve(answer: (n: number) => number, delayMs = 0): Promise<{ url: string; seen: () => number; maxInFlight: () => number }> {
  let seen = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  server = createServer((req, res) => {
    const n = ++seen;
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    const reply = () => {
      inFlight--;
      res.writeHead(answer(n)).end("ok");
    };
    if (delayMs > 0) setTimeout(reply, delayMs);
    else reply();
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`, seen: () => seen, maxInFlight: () => maxInFlight };
}

describe("runPacedHttpLoad", () => {
  it("sends rate × seconds requests and counts each answer once", async () => {
    const target = await serve(() => 200);
    const result = await runPacedHttpLoad("paced", { url: target.url, connections: 4, seconds: 0.5, rate: 200, headers: { authorization: "Bearer t" } });
    expect(target.seen()).toBe(100);
    expect(result.requests).toBe(100);
    expect(result.errors).toBe(0);
    expect(result.p50).toBeGreaterThan(0);
    expect(result.p99).toBeGreaterThanOrEqual(result.p50);
  });

  it("counts answers other than 200 as errors, with the first described", async () => {
    const target = await serve((n) => (n % 10 === 0 ? 503 : 200));
    const result = await runPacedHttpLoad("paced", { url: target.url, connections: 4, seconds: 0.5, rate: 200, headers: {} });
    expect(result.errors).toBe(10);
    expect(result.requests).toBe(90);
    expect(result.firstError).toMatch(/10 errors, first: answered 503/);
  });

  it("never has more requests in flight than connections; the rest wait for one and are charged the wait", async () => {
    // Each answer takes 50 ms: two connections carry at most 40 a second, and 100 a second are offered.
    const target = await serve(() => 200, 50);
    const result = await runPacedHttpLoad("paced", { url: target.url, connections: 2, seconds: 0.3, rate: 100, headers: {} });
    expect(target.maxInFlight()).toBeLessThanOrEqual(2);
    expect(result.requests).toBe(30);
    // The last requests waited behind the others: far longer than one answer's 50 ms.
    expect(result.p99).toBeGreaterThan(200);
    expect(result.firstError).toMatch(/fell behind the pace/);
  });
});
