/** Milliseconds since the epoch. A dependency, so tests move time instead of sleeping. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/** Whole seconds since the epoch, as JWT and RFC 7662 NumericDates are (RFC 7519 §2). */
export function toSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}
