import type { OAuthContext } from "./context.js";
import { OAuthError } from "./errors.js";
import type { Client } from "./model.js";

/**
 * A service client's limit on tokens per window (client credentials and token
 * exchange), counted in the store so that every replica sees one count. A
 * client past its limit is answered too_many_attempts with the seconds until
 * its window ends (the gateway: 429 with Retry-After). Costs one store round
 * trip, and only for clients that have a limit.
 */
export async function limitTokenRate(ctx: OAuthContext, client: Client): Promise<void> {
  const limit = client.service?.tokenRateLimit;
  if (limit === undefined) return;
  const { count, resetInMs } = await ctx.store.attempts.hit(`token-rate:${client.id}`, limit.windowSeconds * 1000);
  if (count > limit.max) {
    throw new OAuthError("too_many_attempts", `this client may obtain at most ${limit.max} tokens per ${limit.windowSeconds} s`, {
      retryAfter: Math.max(1, Math.ceil(resetInMs / 1000)),
    });
  }
}
