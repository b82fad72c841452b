/**
 * How long the tests may wait, on the machine they run on.
 *
 * Every budget in the tests is written as what a quiet two-core machine needs,
 * with a margin, and multiplied here by one factor: TEST_TIME_SCALE. A budget
 * only bounds how long a failing test takes to say so; a passing test never
 * waits for it, so a generous factor costs nothing when things go well.
 *
 * The default, 4, is for a two-core machine at a load average of about 8 (a
 * second `npm test` beside this one, or other work): each process then gets
 * about a quarter of the CPU it would have on its own. Set TEST_TIME_SCALE=1
 * on a quiet machine to hear of a hang sooner, or higher on a slower one.
 *
 * This module is the only reader of TEST_TIME_SCALE (and vitest.config.ts
 * takes its timeouts from here).
 */
export const TIME_SCALE: number = parseScale(process.env.TEST_TIME_SCALE);

function parseScale(value: string | undefined): number {
  if (value === undefined || value === "") return 4;
  const scale = Number(value);
  if (!Number.isFinite(scale) || scale < 1) throw new Error(`TEST_TIME_SCALE must be a number of at least 1, not ${JSON.stringify(value)}`);
  return scale;
}

/** A quiet machine's budget (ms), scaled for this machine by TEST_TIME_SCALE. */
export function scaledBudget(quietMs: number): number {
  return Math.round(quietMs * TIME_SCALE);
}
