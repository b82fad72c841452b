import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/** What a CSRF token protects; a token made for one purpose never passes for another. */
export type CsrfPurpose = "login" | "consent" | "logout" | "end-session";

export interface Csrf {
  /** The token to put in a form, bound to `purpose` and to every value of `binding`. */
  token(purpose: CsrfPurpose, ...binding: readonly string[]): string;
  /** True when `presented` is the token for this purpose and binding; compared in constant time. */
  verify(presented: string | undefined, purpose: CsrfPurpose, ...binding: readonly string[]): boolean;
}

/**
 * CSRF tokens for the login, consent and logout forms (RFC 6749 §10.12: the
 * authorization server must protect its own endpoints against CSRF).
 *
 * Why this shape: a token is HMAC-SHA256(key, purpose ‖ binding), where the
 * binding is a secret the attacker's page cannot read, and the key is derived
 * with HKDF (RFC 5869) from the gateway's service credential, which every
 * replica already has. So the tokens need no storage and any replica accepts
 * a form rendered by another (the gateway keeps no state, ../shared/DESIGN.md).
 * - consent and logout forms are bound to the login session's token (an
 *   HttpOnly cookie) and, for consent, to the parked request's id: a token
 *   works only for this browser's session and this one decision;
 * - the login form has no session yet, so it is bound to a random value in a
 *   separate HttpOnly cookie (the signed double-submit cookie pattern): a page
 *   on another site can neither read that cookie nor compute the token, which
 *   stops login CSRF (logging the victim into the attacker's account).
 * SameSite=Lax cookies already keep cross-site POSTs from carrying the
 * session; the tokens also cover same-site attackers (a sibling subdomain)
 * and browsers without SameSite.
 */
export function createCsrf(serviceCredential: string, tenant?: string): Csrf {
  // Issue 11: each named tenant has a key of its own, so no token made for one tenant's form passes another's.
  const info = tenant === undefined ? "csrf-token v1" : `csrf-token v1 tenant ${tenant}`;
  const key = Buffer.from(hkdfSync("sha256", serviceCredential, "gatehouse-gateway", info, 32));
  const mac = (purpose: CsrfPurpose, binding: readonly string[]): Buffer => {
    const hmac = createHmac("sha256", key).update(purpose);
    // Length-prefixed, so ("ab", "c") and ("a", "bc") never collide.
    for (const part of binding) hmac.update(`\0${Buffer.byteLength(part)}:`).update(part);
    return hmac.digest();
  };
  return {
    token: (purpose, ...binding) => mac(purpose, binding).toString("base64url"),
    verify(presented, purpose, ...binding) {
      if (presented === undefined || !/^[A-Za-z0-9_-]{43}$/.test(presented)) return false;
      // Constant-time comparison (STYLE.md habit 1): timing must not reveal a prefix of the token.
      return timingSafeEqual(Buffer.from(presented, "base64url"), mac(purpose, binding));
    },
  };
}
