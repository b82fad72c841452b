import type { OAuthContext } from "./context.js";
import { OAuthError } from "./errors.js";

/** A counter of failures and the most it may reach within the window. */
export interface AttemptKey {
  key: string;
  max: number;
}

/**
 * Slows down and then refuses repeated failures (logins; client
 * authentication at the token endpoint), with counters in the store so every
 * replica sees the same counts. A refusal says when to retry.
 */
export function createAttemptLimiter(ctx: OAuthContext) {
  const { attempts } = ctx.store;
  const policy = () => ctx.policy.attempts;
  return {
    /** Throws too_many_attempts while any counter is at its limit. */
    async check(keys: readonly AttemptKey[]): Promise<void> {
      const counts = await Promise.all(keys.map(({ key }) => attempts.get(key)));
      counts.forEach((current, i) => {
        if (current.count >= keys[i]!.max) {
          throw new OAuthError("too_many_attempts", "too many failed attempts; try again later", {
            retryAfter: Math.max(1, Math.ceil(current.resetInMs / 1000)),
          });
        }
      });
    },
    /**
     * Counts a failure on every key, then waits longer the more failures there
     * were; past a limit, throws too_many_attempts instead of returning.
     */
    async fail(keys: readonly AttemptKey[]): Promise<void> {
      const counts = await Promise.all(keys.map(({ key }) => attempts.hit(key, policy().windowSeconds * 1000)));
      const failures = Math.max(...counts.map((c) => c.count));
      const delay = Math.min(policy().delayPerFailureMs * (failures - 1), policy().maxDelayMs);
      if (delay > 0) await ctx.sleep(delay);
      counts.forEach((current, i) => {
        if (current.count > keys[i]!.max) {
          throw new OAuthError("too_many_attempts", "too many failed attempts; try again later", {
            retryAfter: Math.max(1, Math.ceil(current.resetInMs / 1000)),
          });
        }
      });
    },
    async reset(key: string): Promise<void> {
      await attempts.reset(key);
    },
  };
}

export type AttemptLimiter = ReturnType<typeof createAttemptLimiter>;
