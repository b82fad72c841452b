import { describe, expect, it } from "vitest";
import { TIME_SCALE, scaledBudget } from "../support/scaled-budget.js";
import { waitFor } from "../support/wait-for.js";

describe("waitFor, the tests' way to wait for a condition", () => {
  it("returns the condition's first truthy value, checking again while it is false or throws", async () => {
    let checks = 0;
    const value = await waitFor(
      () => {
        checks++;
        if (checks === 1) throw new Error("not listening yet");
        return checks >= 3 ? { checks } : false;
      },
      { budgetMs: 1_000, what: "the third check", intervalMs: 1 },
    );
    expect(value).toEqual({ checks: 3 });
  });

  it("fails naming what it waited for, its scaled budget and the last check's error", async () => {
    const failure = waitFor(() => Promise.reject(new Error("ECONNREFUSED")), { budgetMs: 10, what: "the replica's readiness", intervalMs: 1 });
    await expect(failure).rejects.toThrow(
      `waited ${scaledBudget(10)} ms (10 ms × TEST_TIME_SCALE ${TIME_SCALE}) for the replica's readiness; the last check threw: Error: ECONNREFUSED`,
    );
    await expect(waitFor(() => 0, { budgetMs: 10, what: "a count above zero", intervalMs: 1 })).rejects.toThrow(/for a count above zero; the condition was still false$/);
  });

  it("budgets scale by TEST_TIME_SCALE, at least 1", () => {
    expect(TIME_SCALE).toBeGreaterThanOrEqual(1);
    expect(scaledBudget(1_000)).toBe(1_000 * TIME_SCALE);
  });
});
