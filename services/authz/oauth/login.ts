import type { AttemptLimiter } from "./attempts.js";
import { toSeconds } from "./clock.js";
import type { OAuthContext } from "./context.js";
import { OAuthError } from "./errors.js";
import { SECRET_BYTES } from "./issue-tokens.js";
import { decoyPasswordHash, verifyPassword } from "./password.js";
import { hashSecret } from "./secrets.js";
import { effectiveRights } from "./current-rights.js";

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
  /** The session's public id (OpenID Connect `sid`, see sessionIdOf). */
  sid: string;
}

/**
 * The `sid` of a login session (OpenID Connect Front-/Back-Channel Logout):
 * derived one-way from the stored hash of the session token, so it names the
 * session in ID Tokens without being able to open it, and needs no storage.
 */
export function sessionIdOf(sessionHash: string): string {
  return hashSecret(`sid:${sessionHash}`).slice(0, 32);
}

/** Inputs beyond these sizes are not credentials; refusing them early bounds the scrypt work. */
const MAX_USERNAME = 256;
const MAX_PASSWORD = 1024;

/**
 * Creates the login check. An unknown user costs the same scrypt work as a
 * wrong password, and both answer the same invalid_credentials, so neither
 * timing nor wording tells which usernames exist. A disabled user (issue 12)
 * is told so (account_disabled) only after the password verified.
 */
export function createLogin(ctx: OAuthContext, limiter: AttemptLimiter) {
  // Verified against when the username is unknown, to spend the same time.
  const decoy = decoyPasswordHash(ctx.random);

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

    const user = await ctx.directory.findUser(attempt.username);
    const matched = await verifyPassword(attempt.password, user?.passwordHash ?? decoy);
    if (user === undefined || !matched) {
      await limiter.fail(keys);
      throw new OAuthError("invalid_credentials", "the username or password is wrong");
    }
    await limiter.reset(keys[0]!.key);
    // Issue 12: said only once the password has verified, so that it tells a password guesser nothing.
    // The user found by name, with the store's state over it (not a second lookup by subject).
    if (effectiveRights(user, await ctx.store.userStates.get(user.subject)).disabled) throw new OAuthError("account_disabled", "this account is disabled");

    const sessionToken = ctx.random(SECRET_BYTES);
    const authTime = toSeconds(ctx.clock());
    const ttl = ctx.policy.lifetimes.session;
    const sessionHash = hashSecret(sessionToken);
    await ctx.store.sessions.create(sessionHash, { subject: user.subject, authTime }, ttl);
    const sid = sessionIdOf(sessionHash);
    // Back-Channel Logout: a session that simply expires is announced too (oauth/end-session.ts).
    await ctx.store.sessions.scheduleExpiry({ sid, subject: user.subject, expiresAt: ctx.clock() + ttl * 1000 });
    return { sessionToken, subject: user.subject, authTime, expiresIn: ttl, sid };
  };
}
