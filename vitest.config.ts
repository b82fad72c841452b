import { defineConfig } from "vitest/config";
import { scaledBudget } from "./test/support/scaled-budget.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    // Two cores: two test files at a time keeps servers and Redis responsive.
    maxWorkers: 2,
    // Budgets, not expectations: what a quiet machine needs with a margin,
    // scaled by TEST_TIME_SCALE (test/support/scaled-budget.ts; 4 by default,
    // for a two-core machine at a load average of 8). A test that waits on
    // processes states its own, larger budget and why.
    testTimeout: scaledBudget(10_000),
    // Starting a Redis Cluster or Sentinel set, or processes under tsx, is the slow part.
    hookTimeout: scaledBudget(60_000),
    teardownTimeout: scaledBudget(10_000),
    // expect.poll waits for a condition; its default budget (1 s) is a quiet machine's.
    expect: { poll: { timeout: scaledBudget(5_000), interval: 50 } },
  },
});
