import { AdminError } from "./admin-error.js";

/** AIP-158: page sizes. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1_000;

/**
 * What a page token says: where a list resumes, and which list it belongs to
 * (the method, the tenant, and any filter; AIP-158: "the other request
 * fields must match"). It is opaque to callers (base64url JSON) and checked
 * on the way back, not signed: a forged token can only name a place in a
 * list the caller may read anyway, and the replicas share no signing key
 * that would survive a restart, which would make tokens expire for no
 * reason a caller could see.
 */
interface PageTokenContent {
  v: 1;
  /** The list: "clients", "users/alice/grants", ... */
  l: string;
  t: string;
  /** The filter the first page was asked with ("" none). */
  f: string;
  /** Resume after this key. */
  a: string;
}

export function encodePageToken(list: string, tenant: string, filter: string, after: string): string {
  const content: PageTokenContent = { v: 1, l: list, t: tenant, f: filter, a: after };
  return Buffer.from(JSON.stringify(content), "utf8").toString("base64url");
}

/** The key to resume after; undefined for the first page. InvalidArgument for a token of another list, or garbage. */
export function decodePageToken(token: string, list: string, tenant: string, filter: string): string | undefined {
  if (token === "") return undefined;
  let content: Partial<PageTokenContent>;
  try {
    content = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Partial<PageTokenContent>;
  } catch {
    throw badToken("not a page token: pass next_page_token of the previous response unchanged");
  }
  if (typeof content !== "object" || content === null || content.v !== 1 || typeof content.a !== "string" || typeof content.l !== "string") {
    throw badToken("not a page token: pass next_page_token of the previous response unchanged");
  }
  if (content.l !== list || content.t !== tenant) throw badToken(`a page token of another list (${content.l}); start this list without one`);
  if (content.f !== filter) throw badToken("the filter changed since the first page (AIP-158: the other request fields must stay the same); start again without a page token");
  return content.a;
}

/** AIP-158: 0 means the default; negative is an error; more than the maximum is coerced down. */
export function pageSizeOf(requested: number): number {
  if (requested < 0) throw new AdminError("invalid_argument", "page_size: must not be negative", [{ field: "page_size", description: "must not be negative" }]);
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(requested, MAX_PAGE_SIZE);
}

function badToken(description: string): AdminError {
  return new AdminError("invalid_argument", `page_token: ${description}`, [{ field: "page_token", description }]);
}
