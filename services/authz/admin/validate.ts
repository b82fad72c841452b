import type { FieldViolation } from "./admin-error.js";
import { checkRegisteredRedirectUri } from "../oauth/redirect-uri.js";
import { GROUP_NAME, GROUP_NAME_MAX_LENGTH, GROUP_NAME_RULE } from "../../../startup/group-name.js";

/**
 * The admin API's checks of single fields: each returns the problem in
 * words specific enough to fix it, or undefined. The same rules as the
 * configuration file's (services/authz/config.ts), so an entry that the API
 * accepts would also load from the file.
 */

/** Client ids the API accepts (RFC 6749 Appendix A.1 allows any printable ASCII; a narrower set keeps resource names and URLs plain). */
export const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;
/** RFC 6749 §3.3 scope-token. */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/;
/** Usernames: printable, no whitespace, ≤ 256 characters (the login form's bound). */
export const USERNAME = /^[^\s\p{Cc}/]{1,256}$/u;
/** Subjects: printable ASCII (RFC 7519 `sub` is a StringOrURI; a narrower set keeps logs and keys plain). */
export const SUBJECT = /^[\x21-\x7E]{1,256}$/;
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1_024;
export const MAX_LIST_ENTRIES = 50;

/** Collects violations; `at` builds the field path. */
export class Violations {
  readonly list: FieldViolation[] = [];
  add(field: string, description: string | undefined): void {
    if (description !== undefined) this.list.push({ field, description });
  }
}

export function checkClientId(id: string): string | undefined {
  return CLIENT_ID.test(id) ? undefined : "must be 1-128 of A-Z a-z 0-9 . _ ~ -";
}

export function checkDisplayName(name: string): string | undefined {
  if (name.trim() === "") return "required: the name the consent page shows";
  if (name.length > 200) return "must be at most 200 characters";
  if (/\p{Cc}/u.test(name)) return "must not contain control characters";
  return undefined;
}

export function checkScopeToken(scope: string): string | undefined {
  return SCOPE_TOKEN.test(scope) ? undefined : "must be a scope-token (RFC 6749 §3.3): 1-128 printable ASCII characters, no space, quote or backslash";
}

export function checkDescription(description: string): string | undefined {
  if (description.trim() === "") return "required: the consent page shows it";
  if (description.length > 500) return "must be at most 500 characters";
  return undefined;
}

export function checkUsername(username: string): string | undefined {
  return USERNAME.test(username) ? undefined : "must be 1-256 characters without spaces, slashes or control characters";
}

export function checkSubject(subject: string): string | undefined {
  return SUBJECT.test(subject) ? undefined : "must be 1-256 printable ASCII characters without spaces";
}

/** Group names are slugs, spelled the same in both processes (startup/group-name.ts). */
export function checkGroup(group: string): string | undefined {
  if (group.length > GROUP_NAME_MAX_LENGTH) return `must be at most ${GROUP_NAME_MAX_LENGTH} characters`;
  return GROUP_NAME.test(group) ? undefined : GROUP_NAME_RULE;
}

export function checkPassword(password: string): string | undefined {
  if (password.length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (password.length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  return undefined;
}

/** RFC 6749 §3.1.2 as the configuration checks it: absolute, no fragment, https outside development. */
export function checkRedirectUri(uri: string, requireHttps: boolean): string | undefined {
  return checkRegisteredRedirectUri(uri, requireHttps);
}

/** A list's own problems: too long, duplicates (each duplicate at its index). */
export function checkList(values: readonly string[], field: string, violations: Violations, max = MAX_LIST_ENTRIES): void {
  if (values.length > max) violations.add(field, `must have at most ${max} entries`);
  values.forEach((value, i) => {
    if (values.indexOf(value) !== i) violations.add(`${field}[${i}]`, `duplicate of ${field}[${values.indexOf(value)}]`);
  });
}
