import type { z } from "zod";

/**
 * A section of an invalid file, checked on its own: its value if `schema`
 * accepts it, else its default, else undefined. The schema has reported the
 * section's problems already; this lets the checks that read it still run,
 * so that one run lists every problem, without cascades from the bad part.
 */
export function salvageSection<T>(schema: z.ZodType<T>, value: unknown): T | undefined {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fallback = schema.safeParse(undefined);
  return fallback.success ? fallback.data : undefined;
}
