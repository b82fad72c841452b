/**
 * Every Redis key gatehouse uses, in one place. Keys that one script touches
 * together share a hash tag (`{g:<grantId>}`), so every script runs on Redis
 * Cluster, where a script may only touch keys of one slot.
 *
 * Handles (codes, tokens, sessions, request ids) appear only as hashes.
 */
export interface KeySchema {
  request(requestHash: string): string;
  code(codeHash: string): string;
  family(grantId: string): string;
  familyUsedToken(grantId: string, tokenHash: string): string;
  grantRevoked(grantId: string): string;
  accessTokenRevoked(grantId: string, jti: string): string;
  session(sessionHash: string): string;
  /** The clients (and their grants) of a login session, by the session's sid. */
  sessionParticipants(sid: string): string;
  /** One sorted set of every session's expiry (score: ms since the epoch). */
  sessionExpiries: string;
  consent(subject: string, clientId: string): string;
  /** The clients a subject has remembered consents for (issue 12), as long as the latest consent lives. */
  consentsOfSubject(subject: string): string;
  attempts(key: string): string;
  /** A used client assertion's jti (RFC 7523 §3). */
  clientAssertion(clientId: string, jti: string): string;
  /** The pub/sub channel of revocation announcements. */
  revocationChannel: string;
  /** Issue 12: the hashes of one subject's login sessions (a set). */
  subjectSessions(subject: string): string;
  /** Issue 12: the grant ids of one subject's refresh families (a set). */
  subjectGrants(subject: string): string;
  /** Issue 12: a user's run-time state (blocked, groups), by subject. */
  userState(subject: string): string;
  /** The self-rotating signing keys of this key space (private keys sealed under the KEK). */
  signingKeySet: string;
  /** The claim to generate the key of one slot (a generation of the set). */
  signingKeyClaim(slot: string): string;
  /**
   * One collection of the tenant's registry (oauth/registry.ts): entries
   * (a hash of JSON by id), their ids in order (a sorted set, lexicographic)
   * and aliases (a hash alias -> id). The tenant's registry shares one hash
   * tag, so a script that touches all three runs on one Cluster slot.
   * No TTL: entries are configuration, kept until deleted.
   */
  registry(collection: "clients" | "scopes" | "users"): { entries: string; order: string; aliases: string };
  /** The tenant's audit trail: a stream trimmed to its last AUDIT_EVENTS_KEPT events. */
  auditLog: string;
}

/**
 * `prefix` namespaces one deployment (or one test run) within a Redis;
 * `tenant` one tenant within it (undefined: the default tenant, whose keys are
 * exactly those of a deployment without tenants, so existing data stays
 * readable).
 *
 * A tenant's keys all start with `{prefix}t:{tenant}:`, outside the hash tag:
 * one literal prefix per tenant, so Redis ACL key patterns
 * (`~gatehouse:t:acme:*`) and SCAN can address one tenant, while the hash tag
 * stays per grant and a tenant's keys spread over every Cluster slot (a tag
 * holding the tenant would put each tenant's whole key space on one slot).
 * Scripts touch the keys of one grant of one tenant, so they stay on one slot.
 *
 * The revocation channel is the deployment's, shared by every tenant: one
 * subscription per process whatever the number of tenants; each announcement
 * names its tenant (redis-store.ts).
 */
export function createKeySchema(basePrefix: string, tenant?: string): KeySchema {
  if (/[{}]/.test(basePrefix)) throw new Error("the Redis key prefix must not contain { or }: it would change the hash tags");
  if (tenant !== undefined && !/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(tenant)) throw new Error(`not a tenant name: ${JSON.stringify(tenant)}`);
  const prefix = tenant === undefined ? basePrefix : `${basePrefix}t:${tenant}:`;
  const grant = (grantId: string) => `${prefix}{g:${grantId}}`;
  // Subjects and client ids are free text; encoding keeps ":" and "{" out of keys.
  const part = (value: string) => Buffer.from(value, "utf8").toString("base64url");
  return {
    request: (requestHash) => `${prefix}request:${requestHash}`,
    code: (codeHash) => `${prefix}code:${codeHash}`,
    family: (grantId) => `${grant(grantId)}:family`,
    familyUsedToken: (grantId, tokenHash) => `${grant(grantId)}:used:${tokenHash}`,
    grantRevoked: (grantId) => `${grant(grantId)}:revoked`,
    accessTokenRevoked: (grantId, jti) => `${grant(grantId)}:jti-revoked:${part(jti)}`,
    session: (sessionHash) => `${prefix}session:${sessionHash}`,
    sessionParticipants: (sid) => `${prefix}session-participants:${part(sid)}`,
    sessionExpiries: `${prefix}session-expiries`,
    consent: (subject, clientId) => `${prefix}consent:${part(subject)}:${part(clientId)}`,
    consentsOfSubject: (subject) => `${prefix}consents-of:${part(subject)}`,
    attempts: (key) => `${prefix}attempts:${part(key)}`,
    clientAssertion: (clientId, jti) => `${prefix}assertion:${part(clientId)}:${part(jti)}`,
    revocationChannel: `${basePrefix}revocations`,
    subjectSessions: (subject) => `${prefix}subject-sessions:${part(subject)}`,
    subjectGrants: (subject) => `${prefix}subject-grants:${part(subject)}`,
    userState: (subject) => `${prefix}user-state:${part(subject)}`,
    signingKeySet: `${prefix}signing-keys`,
    signingKeyClaim: (slot) => `${prefix}signing-keys:claim:${part(slot)}`,
    registry: (collection) => {
      const base = `${prefix}{registry${tenant === undefined ? "" : `:${tenant}`}}:${collection}`;
      return { entries: `${base}:entries`, order: `${base}:order`, aliases: `${base}:aliases` };
    },
    auditLog: `${prefix}audit`,
  };
}
