import type { z } from "zod";

/**
 * The entries of a list in an invalid file, each checked on its own. An
 * invalid entry leaves a hole (undefined), so positions keep their numbers
 * (`clients[2]`) in the problems the later checks report; a value that is not
 * a list gives an empty one.
 */
export function salvageList<T>(schema: z.ZodType<T>, value: unknown): Array<T | undefined> {
  if (!Array.isArray(value)) return [];
  return value.map((item) => {
    const result = schema.safeParse(item);
    return result.success ? result.data : undefined;
  });
}
