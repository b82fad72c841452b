import type { Client, ScopeDefinition, ServerPolicy, User } from "./model.js";

/**
 * Where the protocol core finds a tenant's clients, users and scopes.
 *
 * They come from several sources: the configuration file (read-only here,
 * "managed by configuration"), the store (entries an administrator created at
 * run time, clients that registered themselves, RFC 7591), and documents
 * fetched on demand (Client ID Metadata Documents). Every lookup is async so
 * that a source may ask the store on each use: an entry changed at one replica
 * takes effect at every replica at once, with no cache to invalidate.
 */
export interface Directory {
  /** RFC 6749 §2.2: the client registered under `clientId`. */
  findClient(clientId: string): Promise<Client | undefined>;
  /** A resource owner of the built-in login, by the name they sign in with. */
  findUser(username: string): Promise<User | undefined>;
  /** A resource owner by the `sub` of their tokens. */
  findUserBySubject(subject: string): Promise<User | undefined>;
  /** Every scope the tenant knows, by name: the configuration's first, in its order. */
  scopes(): Promise<ReadonlyMap<string, ScopeDefinition>>;
}

/**
 * One source of a directory; a source answers what it holds and leaves the
 * rest out (an absent method, or `undefined`, means "ask the next one").
 */
export interface DirectorySource {
  findClient?(clientId: string): Promise<Client | undefined> | Client | undefined;
  findUser?(username: string): Promise<User | undefined> | User | undefined;
  findUserBySubject?(subject: string): Promise<User | undefined> | User | undefined;
  /** Scopes this source adds; a name an earlier source already has is not overridden. */
  scopes?(): Promise<ReadonlyMap<string, ScopeDefinition>> | ReadonlyMap<string, ScopeDefinition>;
}

/**
 * A directory over sources asked in order; the first answer wins. The
 * configuration is the first source, so an entry declared in the file can
 * never be shadowed by one created at run time under the same name.
 */
export function createDirectory(sources: readonly DirectorySource[]): Directory {
  const clientSources = sources.filter((source) => source.findClient !== undefined);
  const userSources = sources.filter((source) => source.findUser !== undefined);
  const subjectSources = sources.filter((source) => source.findUserBySubject !== undefined);
  const scopeSources = sources.filter((source) => source.scopes !== undefined);
  return {
    async findClient(clientId) {
      for (const source of clientSources) {
        const client = await source.findClient!(clientId);
        if (client !== undefined) return client;
      }
      return undefined;
    },
    async findUser(username) {
      for (const source of userSources) {
        const user = await source.findUser!(username);
        if (user !== undefined) return user;
      }
      return undefined;
    },
    async findUserBySubject(subject) {
      for (const source of subjectSources) {
        const user = await source.findUserBySubject!(subject);
        if (user !== undefined) return user;
      }
      return undefined;
    },
    async scopes() {
      if (scopeSources.length === 1) return scopeSources[0]!.scopes!();
      const merged = new Map<string, ScopeDefinition>();
      for (const source of scopeSources) {
        for (const [name, scope] of await source.scopes!()) if (!merged.has(name)) merged.set(name, scope);
      }
      return merged;
    },
  };
}

/**
 * The configuration's clients, users and scopes as the directory's first
 * source. Lookups answer synchronously: the token endpoint's usual client
 * costs no store round trip.
 */
export function configurationSource(policy: Pick<ServerPolicy, "clients" | "users" | "scopes">): DirectorySource {
  const usersBySubject = new Map<string, User>();
  for (const user of policy.users.values()) usersBySubject.set(user.subject, user);
  return {
    findClient: (clientId) => policy.clients.get(clientId),
    findUser: (username) => policy.users.get(username),
    findUserBySubject: (subject) => usersBySubject.get(subject),
    scopes: () => policy.scopes,
  };
}
