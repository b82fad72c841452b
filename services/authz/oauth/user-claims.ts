import type { ServerPolicy, StandardClaims, User } from "./model.js";

/** OpenID Connect Core §5.4: which standard claims each scope value releases. */
export const CLAIMS_BY_SCOPE: Readonly<Record<string, readonly (keyof StandardClaims)[]>> = {
  profile: [
    "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile",
    "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
  ],
  email: ["email", "email_verified"],
  address: ["address"],
  phone: ["phone_number", "phone_number_verified"],
};

/** Discovery `claims_supported`: every claim this server can return. */
export const SUPPORTED_CLAIMS: readonly string[] = [
  "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid", "amr", "acr",
  ...Object.values(CLAIMS_BY_SCOPE).flat(),
];

/** The user's claims that `scopes` release (§5.4); a claim the user does not have is left out (§5.3.2). */
export function claimsForScopes(claims: StandardClaims | undefined, scopes: readonly string[]): Partial<StandardClaims> {
  const released: Record<string, unknown> = {};
  if (claims === undefined) return released;
  for (const scope of scopes) {
    for (const name of CLAIMS_BY_SCOPE[scope] ?? []) {
      if (claims[name] !== undefined) released[name] = structuredClone(claims[name]);
    }
  }
  return released as Partial<StandardClaims>;
}

const bySubject = new WeakMap<ReadonlyMap<string, User>, ReadonlyMap<string, User>>();

/** The user whose subject this is; users are configured by username, tokens carry the subject. */
export function findUserBySubject(policy: Pick<ServerPolicy, "users">, subject: string): User | undefined {
  let index = bySubject.get(policy.users);
  if (index === undefined) {
    index = new Map([...policy.users.values()].map((user) => [user.subject, user]));
    bySubject.set(policy.users, index);
  }
  return index.get(subject);
}
