import { describe, expect, it } from "vitest";
import { countedRequests, formatCountedPhases, IDLE, totalOf, type CountedPhase } from "../../bench/lib/callgrind.js";

// The arithmetic of the benchmarks' instruction counts (BENCH_INSTRUCTIONS, issue 11's 5 % bar).

const phase = (name: string, tenants: number, instructions: Record<string, number>, seconds = 10, requests = 1_000): CountedPhase => ({
  name,
  deployment: "",
  tenants,
  requests,
  seconds,
  instructions,
  compiler: 0,
  majorGc: 0,
});

describe("callgrind dumps", () => {
  it("reads the summary line, or the totals line", () => {
    expect(totalOf("version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 220484813\n")).toBe(220_484_813);
    expect(totalOf("events: Ir\nfn=(1) main\n0 5\ntotals: 42\n")).toBe(42);
  });

  it("refuses a dump without either", () => {
    expect(() => totalOf("events: Ir\nfn=(1) main\n")).toThrow(/summary/);
  });
});

describe("BENCH_INSTRUCTIONS", () => {
  it("is a positive whole number of requests, or absent", () => {
    expect(countedRequests(undefined)).toBeUndefined();
    expect(countedRequests("1000")).toBe(1_000);
    for (const bad of ["0", "-5", "1.5", "many", ""]) expect(() => countedRequests(bad), bad).toThrow(/BENCH_INSTRUCTIONS/);
  });
});

describe("the report", () => {
  it("takes the idle rate's share of each phase's time out, and judges tenants ÷ single against 1.05", () => {
    const report = formatCountedPhases(
      [
        // 1,000 requests in 10 s; idle: 100 instructions a second → 1,000 of them are not the requests'.
        phase("ExchangeCode", 0, { service: 1_001_000 }),
        phase(IDLE, 0, { service: 1_000 }),
        phase("ExchangeCode", 100, { service: 1_042_000 }),
        phase(IDLE, 100, { service: 2_000 }),
        phase("Refresh", 0, { service: 1_001_000 }),
        phase("Refresh", 100, { service: 1_102_000 }),
      ],
      100,
    );
    // (1,001,000 - 1,000) / 1,000 = 1,000; (1,042,000 - 2,000) / 1,000 = 1,040.
    expect(report).toMatch(/ExchangeCode: 1\.0 k .*→ 1\.0 k .*ratio 1\.040 \(issue 11, at most 1\.05: met\)/);
    // (1,102,000 - 2,000) / 1,000 = 1,100: 1.100.
    expect(report).toMatch(/Refresh: .*ratio 1\.100 \(issue 11, at most 1\.05: MISSED\)/);
  });

  it("adds the processes of a two-process deployment and shows each", () => {
    const report = formatCountedPhases([phase("split token", 0, { gateway: 700_000_000, "authz service": 1_300_000_000 })], 0);
    expect(report).toContain("split token: 2.000 M (gateway 700.0 k, authz service 1.300 M;");
  });

  it("judges with the median over rounds", () => {
    const rounds = [1_000_000, 1_010_000, 1_900_000].flatMap((many) => [phase("Introspect", 0, { service: 1_000_000 }), phase("Introspect", 100, { service: many })]);
    expect(formatCountedPhases(rounds, 100)).toMatch(/ratio 1\.010 \(issue 11, at most 1\.05: met\)/);
  });
});
