import { TIME_SCALE, scaledBudget } from "./scaled-budget.js";

export interface WaitForOptions {
  /** What a quiet machine needs (ms), with a margin; scaled by TEST_TIME_SCALE. */
  budgetMs: number;
  /** What is awaited, in words: the failure message names it. */
  what: string;
  /** Pause between checks (ms). */
  intervalMs?: number;
}

/**
 * Waits until `condition` returns a truthy value, checking it again and again,
 * and returns that value. A check that throws counts as "not yet" (a server
 * still starting refuses connections). When the scaled budget is spent, it
 * fails with a message naming what it waited for and the last check's error.
 * Tests wait for conditions, never for a fixed time: how long a condition
 * takes is the machine's business, not the test's.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitForOptions): Promise<NonNullable<T>> {
  const budget = scaledBudget(options.budgetMs);
  const deadline = performance.now() + budget;
  const intervalMs = options.intervalMs ?? 25;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      const last = lastError === undefined ? "the condition was still false" : `the last check threw: ${String(lastError)}`;
      throw new Error(`waited ${budget} ms (${options.budgetMs} ms × TEST_TIME_SCALE ${TIME_SCALE}) for ${options.what}; ${last}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
