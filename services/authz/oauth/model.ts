import type { JWK } from "jose";
import type { PkcePolicy } from "./pkce.js";

/** RFC 8693 §2.1: the token exchange grant type. */
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";

/** Grant types gatehouse issues tokens for (RFC 6749 §4.1, §4.4, §6; RFC 8693). */
export type GrantType = "authorization_code" | "refresh_token" | "client_credentials" | typeof TOKEN_EXCHANGE_GRANT;
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
  /** The service-to-service settings (client credentials, private_key_jwt, token exchange); absent: none. */
  service?: ServiceClientPolicy | undefined;
  /**
   * How a client registered itself: RFC 7591 dynamic registration, or a
   * Client ID Metadata Document whose URL is its id; absent: an operator
   * registered it (the configuration, the admin API)
   * (draft-ietf-oauth-client-id-metadata-document). The last two are
   * self-asserted: the consent page says so, and their loopback redirect URIs
   * match with any port (RFC 8252 §7.3).
   */
  selfRegistered?: "registration" | "metadata-document" | undefined;
  /** RFC 8252 §7.3: a loopback redirect URI matches whatever port the request names (native apps' ephemeral ports). */
  loopbackRedirectAnyPort?: boolean | undefined;
  /** RFC 7591 §2 `logo_uri`, shown on the consent page. */
  logoUri?: string | undefined;
  /** RFC 7591 §2 `client_uri`. */
  clientUri?: string | undefined;
}

/**
 * What a client that is a service may do besides the code grant. Every field
 * has a safe default, so a client without this section behaves as before.
 */
export interface ServiceClientPolicy {
  /** RFC 7523 §2.2 / OIDC Core §9 private_key_jwt: the client's public keys, registered inline. */
  jwks?: { keys: readonly JWK[] } | undefined;
  /** The same keys, fetched from this https URL (through the core's RemoteJwks port). */
  jwksUri?: string | undefined;
  /**
   * A Kubernetes service account that authenticates as this client with its
   * projected token (RFC 7523 §2.2 jwt-bearer assertion): the cluster's
   * issuer (one of ServerPolicy.serviceAccountIssuers) and the token's `sub`,
   * `system:serviceaccount:{namespace}:{name}`.
   */
  serviceAccount?: { issuer: string; subject: string } | undefined;
  /** RFC 8707 resources the client may name for its own tokens (client credentials). */
  audiences: readonly string[];
  /** The `aud` of its client-credentials tokens when the request names no resource; absent: the server's audience. */
  defaultAudience?: string | undefined;
  /** Lifetime of the access tokens issued to it by client credentials and token exchange; absent: lifetimes.accessToken. */
  accessTokenLifetime?: number | undefined;
  /** Most tokens it may obtain per window (client credentials and token exchange), counted across replicas in the store. */
  tokenRateLimit?: { max: number; windowSeconds: number } | undefined;
  /** RFC 8693 token exchange policy; absent: the client may not exchange tokens. */
  tokenExchange?: TokenExchangePolicy | undefined;
}

/** Per-client RFC 8693 policy: anything outside it is invalid_target, invalid_scope or unauthorized_client. */
export interface TokenExchangePolicy {
  /** Audiences (RFC 8693 `audience` or RFC 8707 `resource`) it may exchange for. */
  audiences: readonly string[];
  /** Scopes it may carry over from a subject token. */
  scopes: readonly string[];
  /** The `aud` a subject token must carry for this client to present it: tokens addressed to this service. */
  subjectAudiences: readonly string[];
  /** Without an actor token, issue the token with no `act` (impersonation, RFC 8693 §1.1) instead of naming this client as the actor. */
  impersonate: boolean;
}

/** A Kubernetes cluster whose projected service account tokens authenticate clients. */
export interface ServiceAccountIssuer {
  /** The cluster's service account issuer (`--service-account-issuer`), compared exactly with the token's `iss`. */
  issuer: string;
  /** The audience the projected token must carry (the projected volume's `audience`). */
  audience: string;
  /** The cluster's keys: inline, or its JWKS URL (`{issuer}/openid/v1/jwks`), fetched through RemoteJwks. */
  jwks?: { keys: readonly JWK[] } | undefined;
  jwksUri?: string | undefined;
}

/** Bounds of client assertions (RFC 7523 §3). */
export interface ClientAssertionPolicy {
  /** JWS algorithms accepted: asymmetric only, never `none` or HMAC (RFC 8725 §3.1, §2.1). */
  algorithms: readonly string[];
  /** An assertion whose `exp` (or age since `iat`) is further than this is refused (RFC 7523 §3 item 4: "reject JWTs with an exp ... far in the future"). */
  maxLifetimeSeconds: number;
  /** Tolerated clock difference for `exp`, `nbf` and `iat`. */
  clockSkewSeconds: number;
}

/** A scope the server knows (seed 002: "The scopes you specify must already exist"). */
export interface ScopeDefinition {
  name: string;
  description: string;
  /**
   * Issue 12: the groups whose members may be granted this scope (any one of
   * them suffices); absent or empty: every user may. A user outside them is
   * never offered the scope, and a refresh of a grant holding it fails once
   * the user has left them (oauth/user-rights.ts).
   */
  groups?: readonly string[] | undefined;
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
  /**
   * Issue 12 (seed 001 stage 8, "the resource owner is authorized to access
   * the requested resource"): the user's rights, as group slugs. They gate
   * scopes (ScopeDefinition.groups) and the gateway's routes (routes[].groups).
   * The store's user state may override them at run time (oauth/user-rights.ts).
   */
  groups: readonly string[];
  /**
   * A disabled user cannot sign in, refresh, or use a token (seed 003: "the
   * user is not blocked"). The configuration's `true` cannot be lifted at run
   * time; the store's user state can disable anyone (oauth/user-rights.ts).
   */
  disabled: boolean;
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
  /** Client assertions (private_key_jwt); absent: the defaults (oauth/client-assertion.ts). */
  clientAssertions?: ClientAssertionPolicy | undefined;
  /** Kubernetes clusters whose service account tokens are accepted as client assertions; absent: none. */
  serviceAccountIssuers?: readonly ServiceAccountIssuer[] | undefined;
  /** How clients may register themselves (RFC 7591, Client ID Metadata Documents); absent: they may not. */
  registration?: RegistrationPolicy | undefined;
  /**
   * The protected resources (RFC 8707 §2, RFC 9728) this server issues tokens
   * for, by canonical URI (the config's `resources`, per tenant); absent: none
   * besides `audience` and service clients' audiences.
   */
  resources?: ReadonlyMap<string, ProtectedResource> | undefined;
}

/**
 * Per tenant: RFC 7591 dynamic client registration and Client ID Metadata
 * Documents. `off` serves no registration endpoint; `initial-access-token`
 * asks for one of the configured tokens (RFC 7591 §3, "initial access
 * token"); `open` lets anyone register, rate-limited per address.
 */
export interface RegistrationPolicy {
  mode: "off" | "initial-access-token" | "open";
  /** SHA-256 digests (base64url) of the initial access tokens, compared in constant time. */
  initialAccessTokenHashes: readonly string[];
  /** Registrations per address per window (mode `open`), counted in the store across replicas. */
  rateLimit: { max: number; windowSeconds: number };
  /** A client may register with client_secret_basic / client_secret_post; else every registered client is public. */
  allowConfidential: boolean;
  /** The scopes a registered or metadata-document client may have; what it asks beyond them is dropped. */
  scopes: readonly string[];
  /** A registered client unused for this long is forgotten (Hydra's unbounded growth, ory/hydra#1574). */
  unusedClientTtlSeconds: number;
  /** Last use is written at most this often per client. */
  touchIntervalSeconds: number;
  /** draft-ietf-oauth-client-id-metadata-document: an https client_id is resolved by fetching it. */
  clientIdMetadataDocuments: boolean;
}

/** A protected resource a client may name with RFC 8707 `resource` (an MCP server, an API). */
export interface ProtectedResource {
  /** The canonical URI (RFC 8707 §2: absolute, no fragment): the `aud` of tokens for it. */
  uri: string;
  /** RFC 9728 §2 resource_name, shown on the consent page; "" when none. */
  name: string;
}
