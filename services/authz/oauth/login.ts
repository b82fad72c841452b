import type { AttemptLimiter } from "./attempts.js";
import { toSeconds } from "./clock.js";
import type { OAuthContext } from "./context.js";
import { OAuthError } from "./errors.js";
import { SECRET_BYTES } from "./issue-tokens.js";
import { hashPassword, verifyPassword } from "./password.js";
import { hashSecret } from "./secrets.js";

export interface LoginAttempt {
  username: string;
  password: string;
  clientAddress: string;
}

export interface OpenedSession {
  sessionToken: string;
  subject: string;
  authTime: number;
  expiresIn: number;
}

/** Inputs beyond these sizes are not credentials; refusing them early bounds the scrypt work. */
const MAX_USERNAME = 256;
const MAX_PASSWORD = 1024;

/**
 * Creates the login check. An unknown user costs the same scrypt work as a
 * wrong password, and both answer the same invalid_credentials, so neither
 * timing nor wording tells which usernames exist.
 */
export function createLogin(ctx: OAuthContext, limiter: AttemptLimiter) {
  // Verified against when the username is unknown, to spend the same time.
  const decoy = hashPassword("gatehouse decoy password");

  return async function login(attempt: LoginAttempt): Promise<OpenedSession> {
    if (attempt.username === "" || attempt.password === "") throw new OAuthError("invalid_request", "username and password are required");
    if (attempt.username.length > MAX_USERNAME || attempt.password.length > MAX_PASSWORD) {
      throw new OAuthError("invalid_credentials", "the username or password is wrong");
    }
    const policy = ctx.policy.attempts;
    const keys = [
      { key: `login:user:${attempt.username}`, max: policy.maxFailuresPerUser },
      { key: `login:address:${attempt.clientAddress}`, max: policy.maxFailuresPerAddress },
    ];
    await limiter.check(keys);

    const user = ctx.policy.users.get(attempt.username);
    const matched = await verifyPassword(attempt.password, user?.passwordHash ?? (await decoy));
    if (user === undefined || !matched) {
      await limiter.fail(keys);
      throw new OAuthError("invalid_credentials", "the username or password is wrong");
    }
    await limiter.reset(keys[0]!.key);

    const sessionToken = ctx.random(SECRET_BYTES);
    const authTime = toSeconds(ctx.clock());
    const ttl = ctx.policy.lifetimes.session;
    await ctx.store.sessions.create(hashSecret(sessionToken), { subject: user.subject, authTime }, ttl);
    return { sessionToken, subject: user.subject, authTime, expiresIn: ttl };
  };
}
