import type { CodeChallenge } from "./pkce.js";
import type { AuditLog, RegistryStore } from "./registry.js";
import type { SigningKeyStore } from "./signing-key-store.js";

/**
 * The authz service's state, one narrow interface per aggregate. Two
 * implementations pass one contract suite (test/integration/store-contract.ts):
 * memory-store.ts, the reference and the embedded default for a single
 * process, and redis-store.ts, for production.
 *
 * Every key is a hash of a secret handle, never the handle itself (the callers
 * hash; see oauth/secrets.ts), and everything expires. Operations marked
 * atomic have exactly one winner under concurrency, across processes for the
 * Redis store. A store that cannot answer throws StoreUnavailableError.
 */
export interface Store {
  readonly requests: AuthorizationRequestStore;
  readonly codes: AuthorizationCodeStore;
  readonly grants: GrantStore;
  readonly revocationFeed: RevocationFeed;
  readonly sessions: SessionStore;
  readonly consents: ConsentStore;
  readonly attempts: AttemptCounter;
  /** The self-rotating signing keys of this key space (oauth/signing-key-store.ts). */
  readonly signingKeys: SigningKeyStore;
  readonly clientAssertions: ClientAssertionStore;
  /** Clients, scopes and users created at run time (admin API, dynamic registration); oauth/registry.ts. */
  readonly registry: RegistryStore;
  /** The admin API's audit trail, bounded (oauth/registry.ts). */
  readonly audit: AuditLog;
  /** What an administrator changed about users at run time: blocks and groups (issue 12). */
  readonly userStates: UserStateStore;
  /** Resolves when the store answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A validated authorization request waiting for the resource owner (seed 001: the PKCE cache). */
export interface ParkedRequest {
  clientId: string;
  responseType: "code" | "token";
  redirectUri: string;
  /** RFC 6749 §4.1.3: when the request carried redirect_uri, the token request must repeat it. */
  redirectUriGiven: boolean;
  scopes: string[];
  state: string;
  codeChallenge?: CodeChallenge | undefined;
  /** OpenID Connect Core §3.1.2.1: echoed in the ID Token; absent when the request had none. */
  nonce?: string | undefined;
  /** RFC 8707 §2: the resources the request named (known ones, in order); absent or empty: none. */
  resources?: string[] | undefined;
}

/**
 * Parked authorization requests, kept for minutes (the config's requestTtl).
 */
export interface AuthorizationRequestStore {
  park(requestHash: string, request: ParkedRequest, ttlSeconds: number): Promise<void>;
  /** Atomic: removes and returns the request; of concurrent takes exactly one gets it. */
  take(requestHash: string): Promise<ParkedRequest | undefined>;
}

/** What an authorization code stands for (RFC 6749 §4.1.2: bound to client and redirect URI). */
export interface CodeGrant {
  /** The grant (refresh token family) that redeeming the code starts. */
  grantId: string;
  clientId: string;
  redirectUri: string;
  redirectUriGiven: boolean;
  scopes: string[];
  subject: string;
  /** Seconds since the epoch. */
  authTime: number;
  codeChallenge?: CodeChallenge | undefined;
  /** OpenID Connect Core §3.1.2.1: the authentication request's nonce, for the ID Token. */
  nonce?: string | undefined;
  /** The login session the code was issued in (the ID Token's `sid`). */
  sid?: string | undefined;
  /** RFC 8707 §2: the resources of the authorization request, the `aud` of the grant's tokens; absent or empty: the server's audience. */
  resources?: string[] | undefined;
}

export type CodeRedemption =
  | { readonly kind: "redeemed"; readonly grant: CodeGrant }
  /** The code was redeemed before (RFC 6749 §4.1.2: revoke what it issued). */
  | { readonly kind: "replayed"; readonly grantId: string }
  | { readonly kind: "unknown" };

/**
 * Authorization codes, kept ≤ 60 s by default (RFC 6749 §4.1.2 recommends at
 * most 10 minutes).
 */
export interface AuthorizationCodeStore {
  save(codeHash: string, grant: CodeGrant, ttlSeconds: number): Promise<void>;
  /**
   * Atomic: the first redemption of a code gets its grant and leaves a
   * tombstone naming the grant for `tombstoneTtlSeconds`; every later one,
   * concurrent or not, gets `replayed` until the tombstone expires.
   */
  redeem(codeHash: string, tombstoneTtlSeconds: number): Promise<CodeRedemption>;
}

/** A refresh token family (RFC 9700 §4.14.2): every token rotated from one code redemption. */
export interface RefreshFamily {
  grantId: string;
  /** Hash of the one refresh token of the family that is currently valid. */
  tokenHash: string;
  clientId: string;
  subject: string;
  /** The scope the resource owner granted; refreshes may narrow it per request, never widen it (RFC 6749 §6). */
  scopes: string[];
  authTime: number;
  /** When the current token stops being accepted, ms since the epoch; the record expires with it. */
  tokenExpiresAt: number;
  /** When the family ends whatever the rotations, ms since the epoch. */
  familyExpiresAt: number;
  /** The login session the grant was issued in (ID Tokens of refreshes carry it); absent: none known. */
  sid?: string | undefined;
  /** RFC 8707 §2.2: the grant's resources; a refresh may narrow its token to some of them. Absent or empty: the server's audience. */
  resources?: string[] | undefined;
}

export interface RotateInput {
  grantId: string;
  presentedHash: string;
  nextHash: string;
  nextTokenExpiresAt: number;
  /**
   * The new token pair, encrypted under a key derived from the presented token
   * (oauth/grace-seal.ts), returned to a retry within the grace window.
   * Empty when the client has no grace window.
   */
  sealedTokens: string;
  graceMs: number;
  /** How long a revocation caused by reuse must be remembered (the access token lifetime). */
  revokedTtlMs: number;
}

export type Rotation =
  | { readonly kind: "rotated" }
  /** The presented token was rotated out less than the grace window ago. */
  | { readonly kind: "grace"; readonly sealedTokens: string }
  /** A rotated-out token came back: the family is now revoked (RFC 9700 §4.14.2). */
  | { readonly kind: "reused" }
  /** No such live family or token. */
  | { readonly kind: "unknown" };

/**
 * Grants: refresh token families, and revocations of grants and of single
 * access tokens (RFC 7009). A family lives until its current token expires; a
 * revocation is remembered for as long as the access tokens it kills can live.
 * A grant's keys share one hash tag, so checking both revocations at once is
 * one command on a cluster too.
 */
export interface GrantStore {
  /**
   * Creates a family, unless its grant was already revoked (a replayed code
   * can revoke a grant before the winning exchange creates it). Returns
   * whether it was created. The family is also indexed under its subject
   * (listOfSubject) until it would end whatever the rotations.
   */
  create(family: RefreshFamily): Promise<boolean>;
  /**
   * Issue 12: the live families of one resource owner, so that blocking the
   * user revokes every grant and an administrator can list them. The index
   * may name families that ended since; they are left out (and forgotten).
   */
  listOfSubject(subject: string): Promise<RefreshFamily[]>;
  /** The live family, or undefined when it expired or was revoked. */
  get(grantId: string): Promise<RefreshFamily | undefined>;
  /**
   * Atomic compare-and-swap rotation (RFC 6749 §6, RFC 9700 §4.14.2): if the
   * presented token is the current one it is replaced by `nextHash`; if it is
   * the one rotated out within `graceMs`, the sealed pair of that rotation is
   * returned; if it is any other token of the family, the family is revoked.
   * Of concurrent rotations with the same token exactly one rotates.
   */
  rotate(input: RotateInput): Promise<Rotation>;
  /**
   * True when `tokenHash` is a refresh token of the grant that a rotation
   * replaced (RFC 9700 §4.14.2), remembered until the family would have ended
   * whatever happened to it since: a rotated-out token that comes back, at
   * the token endpoint or at revocation, revokes the family.
   */
  wasRotatedOut(grantId: string, tokenHash: string): Promise<boolean>;
  /** Atomic: deletes the family and remembers the grant as revoked for `revokedTtlMs`. */
  revoke(grantId: string, revokedTtlMs: number): Promise<void>;
  /** Remembers one access token of the grant as revoked, until it would have expired. */
  revokeAccessToken(grantId: string, jti: string, ttlMs: number): Promise<void>;
  /** True when the grant, or the access token `jti` of it, is revoked. */
  isRevoked(grantId: string, jti?: string): Promise<boolean>;
}

/**
 * What a revocation announcement names: one access token, one grant, or
 * (issue 12) one resource owner whose rights or state changed, whose cached
 * introspections are all stale.
 */
export type Revocation = { readonly jti: string } | { readonly grantId: string } | { readonly subject: string };

export interface RevocationSubscription {
  unsubscribe(): void;
}

/**
 * Announces revocations to every replica (Redis pub/sub), so that caches of
 * introspection results are evicted at once. Delivery is at most once and in
 * no particular order (on a cluster, publishes travel through any node): a
 * subscriber whose connection breaks is told through `onBroken` and must stop
 * trusting what it cached.
 */
export interface RevocationFeed {
  announce(revocation: Revocation): Promise<void>;
  /** Resolves once announcements made from now on will be delivered. */
  subscribe(onRevocation: (revocation: Revocation) => void, onBroken: (reason: Error) => void): Promise<RevocationSubscription>;
}

export interface Session {
  subject: string;
  /** Seconds since the epoch. */
  authTime: number;
}

/** A client that received a grant in a login session (OpenID Connect Back-Channel Logout, `revokeOnLogout`). */
export interface SessionParticipant {
  clientId: string;
  grantId: string;
}

/** A live login session and the hash of its token (its handle in this store). */
export interface StoredSession {
  sessionHash: string;
  session: Session;
}

/**
 * Login sessions of resource owners, kept for the config's sessionTtl, and
 * indexed by subject (issue 12: blocking a user ends every session of theirs).
 */
export interface SessionStore {
  /** Creates the session and indexes it under its subject. */
  create(sessionHash: string, session: Session, ttlSeconds: number): Promise<void>;
  /** The subject's live sessions; ended ones the index still names are left out (and forgotten). */
  listOfSubject(subject: string): Promise<StoredSession[]>;
  /**
   * Ends every session of the subject and returns the hashes of those that
   * were live. The index is taken atomically, so two concurrent calls end
   * each session once; a session created meanwhile is indexed anew.
   */
  deleteAllOfSubject(subject: string): Promise<string[]>;
  get(sessionHash: string): Promise<Session | undefined>;
  delete(sessionHash: string): Promise<void>;
  /**
   * Records that a client got a grant in the session named by its `sid`
   * (oauth/login.ts sessionIdOf), for as long as a session can live.
   */
  addParticipant(sid: string, participant: SessionParticipant, ttlSeconds: number): Promise<void>;
  /** Atomic: returns and forgets the session's participants; of concurrent takes one gets them. */
  takeParticipants(sid: string): Promise<SessionParticipant[]>;
  /**
   * Remembers when a session will expire (ms since the epoch), so that its
   * end can be announced (Back-Channel Logout) although its key simply
   * vanishes. Kept until taken.
   */
  scheduleExpiry(expiry: SessionExpiry): Promise<void>;
  /** Atomic: removes and returns up to `limit` sessions expired at `now`; of concurrent takes each entry goes to one. */
  takeExpired(now: number, limit: number): Promise<SessionExpiry[]>;
}

/** A session's scheduled end, named by its sid. */
export interface SessionExpiry {
  sid: string;
  subject: string;
  /** ms since the epoch. */
  expiresAt: number;
}

/**
 * Issue 12: what an administrator set about a user at run time, on top of the
 * directory's entry (oauth/user-rights.ts says which wins).
 */
export interface UserState {
  /** Blocked (blockUser): no login, no refresh, no live token. */
  disabled: boolean;
  /** When present, the user's groups instead of the directory's. */
  groups?: readonly string[] | undefined;
}

/**
 * Users' run-time state, by subject. Unlike the protocol's state this is an
 * administrator's decision, not a handle that expires: a record has no TTL
 * (a block that lapsed by itself would unblock a user nobody unblocked).
 */
export interface UserStateStore {
  get(subject: string): Promise<UserState | undefined>;
  /** Replaces the record. */
  put(subject: string, state: UserState): Promise<void>;
  delete(subject: string): Promise<void>;
}

/** Remembered consent per (subject, client), kept for the config's consentTtl. */
export interface ConsentStore {
  /** Adds scopes to what the subject has granted the client. */
  remember(subject: string, clientId: string, scopes: readonly string[], ttlSeconds: number): Promise<void>;
  get(subject: string, clientId: string): Promise<string[]>;
  /**
   * Issue 12: the subject's remembered consents, by client, so that an
   * administrator can list and revoke them. Indexed under the subject for as
   * long as its longest-lived consent; expired ones are left out (and forgotten).
   */
  listOfSubject(subject: string): Promise<Array<{ clientId: string; scopes: string[] }>>;
  /** Forgets the subject's consent to the client: the next authorization request asks again. */
  forget(subject: string, clientId: string): Promise<void>;
}

/** Fixed-window counters for rate limiting, shared by every replica. */
export interface AttemptCounter {
  /** Atomic increment; the window starts with the first hit. Returns the count and ms until the window ends. */
  hit(key: string, windowMs: number): Promise<{ count: number; resetInMs: number }>;
  get(key: string): Promise<{ count: number; resetInMs: number }>;
  reset(key: string): Promise<void>;
}

/**
 * The `jti`s of client assertions already used (RFC 7523 §3 item 7: "the
 * authorization server MAY ensure that JWTs are not replayed by maintaining
 * the set of used jti values for the length of time for which the JWT would
 * be considered valid"), kept until the assertion expires.
 */
export interface ClientAssertionStore {
  /**
   * Atomic: records `jti` of `clientId`'s assertions until `expiresAt` (ms
   * since the epoch). True for the first use; false for every later one,
   * concurrent or not, until then.
   */
  use(clientId: string, jti: string, expiresAt: number): Promise<boolean>;
}
