import type { PkcePolicy } from "./pkce.js";

/** Grant types gatehouse issues tokens for (RFC 6749 §4.1, §6). */
export type GrantType = "authorization_code" | "refresh_token";
/** Response types of the authorization endpoint (RFC 6749 §3.1.1); `token` is the implicit grant, by opt-in only (RFC 9700 §2.1.2). */
export type ResponseType = "code" | "token";

/** A registered client (RFC 6749 §2). */
export interface Client {
  id: string;
  name: string;
  /** RFC 6749 §2.1. */
  type: "confidential" | "public";
  /**
   * SHA-256 digests (base64url) of the client's secrets: several, so that a
   * secret can be rotated. Secrets are machine-generated with ≥ 256 bits, so a
   * fast digest is as safe as a slow hash and keeps token requests cheap.
   */
  secretHashes: readonly string[];
  redirectUris: readonly string[];
  /** Scopes the client may request. */
  scopes: readonly string[];
  /** Scopes used when a request omits `scope` (RFC 6749 §3.3). */
  defaultScopes: readonly string[];
  grantTypes: ReadonlySet<GrantType>;
  responseTypes: ReadonlySet<ResponseType>;
  pkce: PkcePolicy;
  /** Seconds within which a just-rotated refresh token may be presented again for the same new pair. */
  refreshGraceSeconds: number;
  /** First-party clients skip the consent page. */
  firstParty: boolean;
  /** May introspect tokens issued to other clients (a resource server, the gateway). */
  introspectAnyToken: boolean;
  /**
   * OpenID Connect Dynamic Client Registration §2 `id_token_signed_response_alg`:
   * the algorithm of this client's ID Tokens, one the key ring has a key for;
   * absent: the active key's.
   */
  idTokenSignedResponseAlg?: string | undefined;
  /**
   * OpenID Connect Core §8: `pairwise` gives this client a `sub` of its own per
   * user, derived from `sectorIdentifier`; absent or `public`: the user's subject.
   */
  subjectType?: "public" | "pairwise" | undefined;
  /** §8.1: the host the pairwise `sub` is computed for (the redirect URIs' host by default). */
  sectorIdentifier?: string | undefined;
  /**
   * §8.1 / Registration §5: a JSON array of URIs, fetched at load, that must
   * list every redirect URI; its host is then the sector identifier.
   */
  sectorIdentifierUri?: string | undefined;
  /** RP-Initiated Logout 1.0 §3: where the user agent may be sent after logout, matched exactly. */
  postLogoutRedirectUris?: readonly string[] | undefined;
  /** Back-Channel Logout 1.0 §2.2: where Logout Tokens are posted when a session the client took part in ends. */
  backchannelLogoutUri?: string | undefined;
  /** When a session ends, revoke the grants this client got in it (their refresh and access tokens). */
  revokeOnLogout?: boolean | undefined;
}

/** A scope the server knows (seed 002: "The scopes you specify must already exist"). */
export interface ScopeDefinition {
  name: string;
  description: string;
}

/** A resource owner of the built-in login. */
export interface User {
  username: string;
  /** The `sub` of their tokens. */
  subject: string;
  /** scrypt$N$r$p$salt$hash (oauth/password.ts). */
  passwordHash: string;
  /** OpenID Connect Core §5.1 standard claims (name, email, ...); released by scope (§5.4). */
  claims?: StandardClaims | undefined;
}

/** OpenID Connect Core §5.1.1 address claim. */
export interface AddressClaim {
  formatted?: string;
  street_address?: string;
  locality?: string;
  region?: string;
  postal_code?: string;
  country?: string;
}

/** OpenID Connect Core §5.1 standard claims a user may have (`sub` is the subject, not one of these). */
export interface StandardClaims {
  name?: string;
  given_name?: string;
  family_name?: string;
  middle_name?: string;
  nickname?: string;
  preferred_username?: string;
  profile?: string;
  picture?: string;
  website?: string;
  email?: string;
  email_verified?: boolean;
  gender?: string;
  birthdate?: string;
  zoneinfo?: string;
  locale?: string;
  phone_number?: string;
  phone_number_verified?: boolean;
  address?: AddressClaim;
  /** Seconds since the epoch. */
  updated_at?: number;
}

/** Lifetimes, in seconds. */
export interface Lifetimes {
  accessToken: number;
  /** RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED". */
  code: number;
  /** A refresh token's life after its issue; each rotation starts a new one. */
  refreshToken: number;
  /** A refresh token family's absolute life, whatever the rotations. */
  refreshFamily: number;
  /** How long a validated authorization request waits for the resource owner. */
  request: number;
  session: number;
  consent: number;
}

/** Rate limits of failed logins and failed client authentications. */
export interface AttemptPolicy {
  windowSeconds: number;
  maxFailuresPerUser: number;
  maxFailuresPerAddress: number;
  /** A failed attempt's answer is delayed by this much per earlier failure in the window, up to maxDelayMs. */
  delayPerFailureMs: number;
  maxDelayMs: number;
}

/** Everything the protocol core needs to know from the configuration. */
export interface ServerPolicy {
  /** RFC 8414 issuer identifier; the `iss` of tokens and authorization responses (RFC 9207). */
  issuer: string;
  /** The `aud` of access tokens (RFC 9068 §2.2). */
  audience: string;
  clients: ReadonlyMap<string, Client>;
  /** By name, in configuration order. */
  scopes: ReadonlyMap<string, ScopeDefinition>;
  users: ReadonlyMap<string, User>;
  lifetimes: Lifetimes;
  attempts: AttemptPolicy;
  /** OpenID Connect Core §2 `acr` of ID Tokens (the login's assurance level); absent: not claimed. */
  acr?: string | undefined;
  /** Secret of pairwise subject identifiers (§8.1); absent: pairwise clients cannot be served. */
  pairwiseSalt?: string | undefined;
}
