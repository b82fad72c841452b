import type { DirectorySource } from "./directory.js";
import type { Client, GrantType, ResponseType, ScopeDefinition, User } from "./model.js";

/**
 * The tenant's registry: clients, scopes and users created at run time (by
 * the admin API, issue 12, or by dynamic registration, RFC 7591), beside the
 * ones the configuration declares. One per tenant, in the tenant's key space
 * (store/keys.ts). Entries do not expire: they are configuration, kept until
 * deleted. Every replica reads them from the store on each lookup, so a
 * change is seen everywhere at once, with no cache to invalidate.
 */
export interface RegistryStore {
  readonly clients: RegistryCollection<StoredClient>;
  readonly scopes: RegistryCollection<StoredScope>;
  /** Users by username; `alias` is the subject (unique too). */
  readonly users: RegistryCollection<StoredUser>;
}

/** Who created an entry: the admin API or dynamic client registration (RFC 7591). */
export type EntrySource = "admin" | "registration";

/** What the registry keeps about every entry beside the entry itself. */
export interface EntryMeta {
  /** ms since the epoch. */
  createdAt: number;
  updatedAt: number;
  source: EntrySource;
  /** The admin credential's name, or "registration". */
  createdBy: string;
  /** Bumped by the store on every replace; the compare-and-set token of updates (AIP-154 etag). */
  revision: number;
}

/**
 * A stored client: the core's Client as plain JSON (arrays for its sets),
 * plus metadata. Dynamic registration may add fields of its own (RFC 7591
 * §2 metadata); the registry stores whatever is there.
 */
export type StoredClient = Omit<Client, "grantTypes" | "responseTypes"> & {
  grantTypes: GrantType[];
  responseTypes: ResponseType[];
} & EntryMeta;

/** A stored scope (seed 002: "The scopes you specify must already exist"). */
export interface StoredScope extends EntryMeta {
  name: string;
  description: string;
}

/** A stored resource owner of the built-in login. */
export interface StoredUser extends EntryMeta {
  username: string;
  subject: string;
  /** scrypt$N$r$p$salt$hash (oauth/password.ts); "" until a password is set: no login. */
  passwordHash: string;
  groups: string[];
  /**
   * The entry's own flag (User.disabled): false for users the admin API
   * creates. Blocking is the store's user state (oauth/user-rights.ts), laid
   * over it, which works for the configuration's users too.
   */
  disabled: boolean;
}

/** The core's Client of a stored record. */
export function clientOfStored(stored: StoredClient): Client {
  const { createdAt: _c, updatedAt: _u, source: _s, createdBy: _b, revision: _r, ...client } = stored;
  return Object.assign(client, { grantTypes: new Set(stored.grantTypes), responseTypes: new Set(stored.responseTypes) });
}

export type ReplaceResult = "replaced" | "conflict" | "missing";

/**
 * One kind of entry, by id. Ids are listed in byte order of their UTF-8
 * encoding (Redis ZRANGEBYLEX's order), which is also the order of pages.
 */
export interface RegistryCollection<T extends EntryMeta> {
  get(id: string): Promise<T | undefined>;
  /** The entry whose alias is `alias` (users: by subject). */
  getByAlias(alias: string): Promise<T | undefined>;
  /**
   * Atomic: stores `entry` (its revision set to 1) unless `id`, or `alias`
   * when given, is taken. Of concurrent creates of one id exactly one wins.
   */
  create(id: string, entry: T, alias?: string): Promise<boolean>;
  /** Atomic compare-and-set: replaces the entry if its revision is still `revision` (the new one is revision + 1). */
  replace(id: string, revision: number, entry: T): Promise<ReplaceResult>;
  /** Atomic: removes the entry (and its alias); false when there was none. */
  delete(id: string, alias?: string): Promise<boolean>;
  /** Up to `limit` entries with ids after `after` (exclusive; undefined: from the first), in id order. */
  list(after: string | undefined, limit: number): Promise<Array<{ id: string; entry: T }>>;
}

/** How many audit events the store keeps per tenant; older ones are dropped as new ones come. */
export const AUDIT_EVENTS_KEPT = 10_000;

/** A JSON object (an API view of a resource). */
export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

/** One change made through the admin API (never a secret, its digest or a password hash). */
export interface AuditRecord {
  /** `{ms}-{seq}`: increases with time (a Redis stream id). */
  id: string;
  /** ms since the epoch. */
  time: number;
  actor: string;
  action: string;
  resource: string;
  before?: JsonObject | undefined;
  after?: JsonObject | undefined;
}

/**
 * The tenant's audit trail: bounded to the last AUDIT_EVENTS_KEPT events
 * (a Redis stream trimmed on every append).
 */
export interface AuditLog {
  append(event: Omit<AuditRecord, "id" | "time">): Promise<AuditRecord>;
  /** Up to `limit` events older than `before` (an id; undefined: the newest), newest first; with `resource`, only that resource and those below it. */
  list(before: string | undefined, limit: number, resource?: string): Promise<AuditRecord[]>;
}

/** Whether `resource` is `prefix` or a resource below it ("users/alice" covers "users/alice/grants/g1"). */
export function resourceWithin(resource: string, prefix: string): boolean {
  return resource === prefix || resource.startsWith(`${prefix}/`);
}

/** Byte order of the UTF-8 encoding: how the registry orders ids (Redis ZRANGEBYLEX's order). */
export function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** The core's User of a stored user. */
export function userOfStored(stored: StoredUser): User {
  return { username: stored.username, subject: stored.subject, passwordHash: stored.passwordHash, groups: [...stored.groups], disabled: stored.disabled };
}

/** Scopes read per round trip when the directory asks for all of them. */
const SCOPE_PAGE = 1_000;

/**
 * The registry as a directory source (oauth/directory.ts), after the
 * configuration's: every lookup asks the store, so an entry created, changed
 * or deleted at one replica is what every replica answers from the next
 * request on, with no cache to invalidate (issue 12).
 */
export function registrySource(registry: RegistryStore): DirectorySource {
  return {
    findClient: async (clientId) => {
      const stored = await registry.clients.get(clientId);
      // Clients that registered themselves (with their RFC 7591 record) are registration's to answer
      // (oauth/registration.ts): they expire when unused.
      return stored === undefined || "registration" in stored ? undefined : clientOfStored(stored);
    },
    findUser: async (username) => {
      const stored = await registry.users.get(username);
      return stored === undefined ? undefined : userOfStored(stored);
    },
    findUserBySubject: async (subject) => {
      const stored = await registry.users.getByAlias(subject);
      return stored === undefined ? undefined : userOfStored(stored);
    },
    scopes: async () => {
      const scopes = new Map<string, ScopeDefinition>();
      for (let after: string | undefined, page; (page = await registry.scopes.list(after, SCOPE_PAGE)).length > 0; after = page[page.length - 1]!.id) {
        for (const { entry } of page) scopes.set(entry.name, { name: entry.name, description: entry.description });
        if (page.length < SCOPE_PAGE) break;
      }
      return scopes;
    },
  };
}
