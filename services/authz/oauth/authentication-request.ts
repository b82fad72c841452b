import { OAuthError } from "./errors.js";

/**
 * The OpenID Connect authentication request's own parameters (Core 1.0
 * §3.1.2.1), checked purely. Every refusal here is redirected to the client
 * by the caller, with state, once the redirect URI is verified (§3.1.2.6).
 */

/** Core §3.1.2.1 prompt values. select_account is served as login: the built-in login has one account per browser. */
export type PromptValue = "none" | "login" | "consent" | "select_account";
const PROMPT_VALUES: ReadonlySet<string> = new Set<PromptValue>(["none", "login", "consent", "select_account"]);
/** Core §3.1.2.1 display values. */
const DISPLAY_VALUES: ReadonlySet<string> = new Set(["page", "popup", "touch", "wap"]);

/** A nonce longer than this is refused (its value travels in every ID Token of the grant). */
export const MAX_NONCE_LENGTH = 512;
/** A max_age beyond this (about 31 years) is refused rather than overflowing arithmetic. */
const MAX_MAX_AGE = 1_000_000_000;

/**
 * Core §3.1.2.1: a space-delimited, case-sensitive list; `none` with any other
 * value is an error, and so is a value this server does not define.
 */
export function parsePrompt(prompt: string): ReadonlySet<PromptValue> {
  if (prompt === "") return new Set();
  const values = prompt.split(" ");
  for (const value of values) {
    if (!PROMPT_VALUES.has(value)) throw new OAuthError("invalid_request", `unsupported prompt value ${JSON.stringify(value.slice(0, 32))}`);
  }
  const set = new Set(values as PromptValue[]);
  if (set.has("none") && set.size > 1) throw new OAuthError("invalid_request", "prompt=none cannot be combined with other values");
  return set;
}

/** Core §3.1.2.1 max_age: seconds, a non-negative integer; undefined when absent. */
export function parseMaxAge(maxAge: string): number | undefined {
  if (maxAge === "") return undefined;
  if (!/^\d{1,10}$/.test(maxAge) || Number(maxAge) > MAX_MAX_AGE) throw new OAuthError("invalid_request", "max_age must be a non-negative integer (seconds)");
  return Number(maxAge);
}

/** Core §3.1.2.1 nonce: bounded in size; undefined when absent. */
export function parseNonce(nonce: string): string | undefined {
  if (nonce === "") return undefined;
  if (nonce.length > MAX_NONCE_LENGTH) throw new OAuthError("invalid_request", `nonce is longer than ${MAX_NONCE_LENGTH} characters`);
  return nonce;
}

/** Core §3.1.2.1 display: one of the four defined values (it only shapes the page; every value gets the same responsive page). */
export function checkDisplay(display: string): void {
  if (display !== "" && !DISPLAY_VALUES.has(display)) throw new OAuthError("invalid_request", "display must be page, popup, touch or wap");
}

/**
 * Core §6: request objects are not supported, so §6.1/§6.2 requests are
 * refused with the §3.1.2.6 codes (Discovery advertises
 * request_parameter_supported: false, request_uri_parameter_supported: false).
 */
export function refuseRequestObjects(request: string, requestUri: string): void {
  if (request !== "") throw new OAuthError("request_not_supported", "request objects are not supported");
  if (requestUri !== "") throw new OAuthError("request_uri_not_supported", "request_uri is not supported");
}

/** What the login session looks like to the request. */
export interface SessionState {
  /** The signed-in user's subject; "" when nobody is signed in. */
  subject: string;
  /** Seconds since the epoch. */
  authTime: number;
}

/** What the resource owner must do before the request can be decided. */
export interface Interaction {
  /** Show the login page even over an existing session. */
  login: boolean;
  /** Show the consent page even when consent is remembered or the client is first-party. */
  consent: boolean;
}

/**
 * Decides the interaction (Core §3.1.2.3, §3.1.2.1): a login is needed
 * without a session, for prompt=login or select_account, when the session is
 * older than max_age, or when id_token_hint names someone else. With
 * prompt=none nothing may be shown (§3.1.2.6): login_required or
 * consent_required instead.
 */
export function decideInteraction(input: {
  prompt: ReadonlySet<PromptValue>;
  maxAge: number | undefined;
  session: SessionState;
  /** Seconds since the epoch. */
  now: number;
  /** True when id_token_hint was given and names a user other than the session's. */
  hintMismatch: boolean;
  /** True when the client is first-party or the user's consent is remembered. */
  consentKnown: boolean;
}): Interaction {
  const { prompt, maxAge, session, now } = input;
  const stale = maxAge !== undefined && session.subject !== "" && now - session.authTime > maxAge;
  const login = session.subject === "" || prompt.has("login") || prompt.has("select_account") || stale || input.hintMismatch;
  if (prompt.has("none")) {
    if (login) throw new OAuthError("login_required", session.subject === "" ? "the user is not signed in" : "the user must sign in again");
    if (!input.consentKnown) throw new OAuthError("consent_required", "the user has not consented to this client");
  }
  return { login, consent: prompt.has("consent") };
}
