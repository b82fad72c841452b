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
}
