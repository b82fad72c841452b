/**
 * Remembers the result of a read for `ttlMs` (metadata, JWKS): concurrent
 * callers share one call in flight, and a failure is never remembered, so
 * the next caller asks again. `now` is the deps' clock (tests move time).
 */
export function createCachedCall<T>(load: () => Promise<T>, options: { ttlMs: number; now: () => number }): () => Promise<T> {
  let cached: { value: T; expiresAt: number } | undefined;
  let inFlight: Promise<T> | undefined;
  return () => {
    if (cached !== undefined && options.now() < cached.expiresAt) return Promise.resolve(cached.value);
    inFlight ??= load().then(
      (value) => {
        cached = { value, expiresAt: options.now() + options.ttlMs };
        inFlight = undefined;
        return value;
      },
      (error: unknown) => {
        inFlight = undefined;
        throw error;
      },
    );
    return inFlight;
  };
}
