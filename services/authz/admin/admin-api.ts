import type { OAuthContext } from "../oauth/context.js";
import type { Client, GrantType, ResponseType, ScopeDefinition, User } from "../oauth/model.js";
import { TOKEN_EXCHANGE_GRANT } from "../oauth/model.js";
import { hashPassword } from "../oauth/password.js";
import { compareIds, userOfStored, type AuditRecord, type EntryMeta, type JsonObject, type RegistryCollection, type StoredClient, type StoredScope, type StoredUser } from "../oauth/registry.js";
import { hashSecret } from "../oauth/secrets.js";
import { AdminError, managedByConfiguration, notFound, refuseViolations } from "./admin-error.js";
import { decodePageToken, encodePageToken, pageSizeOf } from "./page-token.js";
import {
  checkClientId,
  checkDescription,
  checkDisplayName,
  checkGroup,
  checkList,
  checkPassword,
  checkRedirectUri,
  checkScopeToken,
  checkSubject,
  checkUsername,
  Violations,
} from "./validate.js";

/**
 * The admin API's operations (issue 12), over one tenant's configuration
 * (read-only: `ctx.policy`'s clients, scopes and users are the file's) and
 * its store's registry (read-write). Connect-free: rpc/admin-service.ts
 * translates. Every change is appended to the tenant's audit log and logged
 * as JSON, with who (the admin credential's name), what, before and after
 * (views without secrets, digests or password hashes) and when.
 */

/** One tenant as the admin API sees it. */
export interface AdminTenant {
  /** The tenant's name (DEFAULT_TENANT for the top level). */
  readonly name: string;
  /** Its protocol context: the configuration's directory in `policy`, and its store. */
  readonly ctx: OAuthContext;
  /** https redirect URIs outside loopback (the configuration's requireHttps). */
  readonly requireHttps: boolean;
}

/**
 * The resource owner's rights operations of oauth/user-rights.ts, which the
 * admin API calls and does not re-implement: blocking ends sessions and
 * revokes grants; every change is announced to the gateways.
 */
export interface UserRightsCalls {
  block(ctx: OAuthContext, subject: string): Promise<void>;
  unblock(ctx: OAuthContext, subject: string): Promise<void>;
  rightsChanged(ctx: OAuthContext, subject: string, before: readonly string[], after: readonly string[]): Promise<void>;
  /** The user's groups now (the entry's, or the run-time state's override). */
  currentGroups(ctx: OAuthContext, user: User): Promise<readonly string[]>;
  /** Whether the user is disabled now (the entry's flag or a run-time block). */
  isDisabled(ctx: OAuthContext, user: User): Promise<boolean>;
  /** The user's live login sessions, by sid (never a session token). */
  listSessions(ctx: OAuthContext, subject: string): Promise<ReadonlyArray<{ sid: string; authTime: number }>>;
  /** Ends one session as a logout would; false when no live session of theirs has the sid. */
  endSession(ctx: OAuthContext, subject: string, sid: string): Promise<boolean>;
  /** The user's live grants (refresh token families). */
  listGrants(ctx: OAuthContext, subject: string): Promise<ReadonlyArray<{ grantId: string; clientId: string; scopes: readonly string[]; authTime: number; familyExpiresAt: number }>>;
  /** Revokes one grant of the user (refresh family and access tokens, announced); false when it is not a live grant of theirs. */
  revokeGrant(ctx: OAuthContext, subject: string, grantId: string): Promise<boolean>;
}

export interface AdminApiDeps {
  /** JSON log lines of audit events (the authz service's pino logger). */
  readonly log: { info(object: object, message: string): void };
  readonly rights: UserRightsCalls;
}

export type ManagedBy = "configuration" | "admin" | "registration";

/** A client as the API shows it: no secret, no digest; how many secrets it has. */
export interface ClientView {
  clientId: string;
  displayName: string;
  type: "confidential" | "public";
  redirectUris: string[];
  scopes: string[];
  defaultScopes: string[];
  grantTypes: string[];
  responseTypes: string[];
  pkce: { required: boolean; allowPlain: boolean };
  refreshGraceSeconds: number;
  firstParty: boolean;
  introspectAnyToken: boolean;
  postLogoutRedirectUris: string[];
  managedBy: ManagedBy;
  secretCount: number;
  createTime?: number | undefined;
  updateTime?: number | undefined;
  createdBy?: string | undefined;
}

/** What a caller may set on a client (create, update). */
export interface ClientFields {
  displayName: string;
  type: "confidential" | "public" | undefined;
  redirectUris: string[];
  scopes: string[];
  defaultScopes: string[];
  grantTypes: string[];
  responseTypes: string[];
  pkce: { required: boolean; allowPlain: boolean } | undefined;
  refreshGraceSeconds: number;
  firstParty: boolean;
  introspectAnyToken: boolean;
  postLogoutRedirectUris: string[];
}

export interface ScopeView {
  scope: string;
  description: string;
  managedBy: ManagedBy;
  /** The configuration's scopes[].groups; stored scopes have none. */
  groups: string[];
}

export interface UserView {
  username: string;
  subject: string;
  groups: string[];
  disabled: boolean;
  managedBy: ManagedBy;
  createTime?: number | undefined;
  updateTime?: number | undefined;
  createdBy?: string | undefined;
}

export interface GrantView {
  grantId: string;
  clientId: string;
  scopes: string[];
  /** ms since the epoch. */
  authTime: number;
  /** When the refresh token family ends whatever the rotations, ms since the epoch. */
  expireTime: number;
}

export interface SessionView {
  sid: string;
  authTime: number;
  expireTime: number;
}

export interface ConsentView {
  clientId: string;
  scopes: string[];
}

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/** The update_mask paths of clients (AIP-134; proto field names). */
const CLIENT_PATHS = {
  display_name: "displayName",
  redirect_uris: "redirectUris",
  scopes: "scopes",
  default_scopes: "defaultScopes",
  grant_types: "grantTypes",
  response_types: "responseTypes",
  pkce: "pkce",
  "pkce.required": "pkce",
  "pkce.allow_plain": "pkce",
  refresh_grace_seconds: "refreshGraceSeconds",
  first_party: "firstParty",
  introspect_any_token: "introspectAnyToken",
  post_logout_redirect_uris: "postLogoutRedirectUris",
} as const satisfies Record<string, keyof ClientFields>;
const SCOPE_PATHS = ["description"] as const;
const USER_PATHS = ["groups"] as const;

/** Grant types an administrator may give a client; token exchange needs the file's service settings. */
const GRANT_TYPES: readonly GrantType[] = ["authorization_code", "refresh_token", "client_credentials"];
const RESPONSE_TYPES: readonly ResponseType[] = ["code", "token"];
/** 256 bits (DESIGN.md: client secrets are machine-generated and high-entropy). */
const SECRET_BYTES = 32;
/** Retries of a read-modify-write that lost a compare-and-set to a concurrent change. */
const CAS_ATTEMPTS = 3;

export function createAdminApi(deps: AdminApiDeps) {
  const audit = async (tenant: AdminTenant, actor: string, action: string, resource: string, before: object | undefined, after: object | undefined) => {
    const record: AuditRecord = await tenant.ctx.store.audit.append({
      actor,
      action,
      resource,
      ...(before === undefined ? {} : { before: toJson(before) }),
      ...(after === undefined ? {} : { after: toJson(after) }),
    });
    deps.log.info({ audit: { ...record, tenant: tenant.name } }, `admin: ${action} ${resource} by ${actor}`);
  };

  /** Read, change, compare-and-set; a lost race is retried, then Aborted. */
  const change = async <T extends EntryMeta>(
    collection: RegistryCollection<T>,
    id: string,
    resource: string,
    apply: (current: T) => Promise<T> | T,
  ): Promise<{ before: T; after: T }> => {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await collection.get(id);
      if (current === undefined) throw notFound(resource);
      const next = await apply(current);
      const result = await collection.replace(id, current.revision, next);
      if (result === "replaced") return { before: current, after: { ...next, revision: current.revision + 1 } };
      if (result === "missing") throw notFound(resource);
    }
    throw new AdminError("aborted", `${resource} was changed concurrently; read it again and retry`);
  };

  const meta = (tenant: AdminTenant, actor: string): EntryMeta => {
    const now = tenant.ctx.clock();
    return { createdAt: now, updatedAt: now, source: "admin", createdBy: actor, revision: 0 };
  };

  const scopeExists = async (tenant: AdminTenant, name: string) => tenant.ctx.policy.scopes.has(name) || (await tenant.ctx.store.registry.scopes.get(name)) !== undefined;

  /** Checks a whole client; paths are `${prefix}field`. */
  const checkClient = async (tenant: AdminTenant, fields: ClientFields, prefix: string, violations: Violations) => {
    violations.add(`${prefix}display_name`, checkDisplayName(fields.displayName));
    if (fields.type === undefined) violations.add(`${prefix}type`, "required: CLIENT_TYPE_CONFIDENTIAL or CLIENT_TYPE_PUBLIC");
    checkList(fields.redirectUris, `${prefix}redirect_uris`, violations);
    fields.redirectUris.forEach((uri, i) => violations.add(`${prefix}redirect_uris[${i}]`, checkRedirectUri(uri, tenant.requireHttps)));
    checkList(fields.postLogoutRedirectUris, `${prefix}post_logout_redirect_uris`, violations);
    fields.postLogoutRedirectUris.forEach((uri, i) => violations.add(`${prefix}post_logout_redirect_uris[${i}]`, checkRedirectUri(uri, tenant.requireHttps)));
    checkList(fields.scopes, `${prefix}scopes`, violations);
    for (const [i, scope] of fields.scopes.entries()) {
      const problem = checkScopeToken(scope) ?? ((await scopeExists(tenant, scope)) ? undefined : `unknown scope ${JSON.stringify(scope)}: create it first (CreateScope) or declare it in the configuration`);
      violations.add(`${prefix}scopes[${i}]`, problem);
    }
    checkList(fields.defaultScopes, `${prefix}default_scopes`, violations);
    fields.defaultScopes.forEach((scope, i) => {
      if (!fields.scopes.includes(scope)) violations.add(`${prefix}default_scopes[${i}]`, `${JSON.stringify(scope)} is not in this client's scopes`);
    });
    checkList(fields.grantTypes, `${prefix}grant_types`, violations);
    fields.grantTypes.forEach((grant, i) => {
      if (grant === TOKEN_EXCHANGE_GRANT) violations.add(`${prefix}grant_types[${i}]`, "token exchange needs a client's service settings, which only the configuration file holds");
      else if (!(GRANT_TYPES as readonly string[]).includes(grant)) violations.add(`${prefix}grant_types[${i}]`, `unknown grant type ${JSON.stringify(grant)}; known: ${GRANT_TYPES.join(", ")}`);
    });
    checkList(fields.responseTypes, `${prefix}response_types`, violations);
    fields.responseTypes.forEach((type, i) => {
      if (!(RESPONSE_TYPES as readonly string[]).includes(type)) violations.add(`${prefix}response_types[${i}]`, `unknown response type ${JSON.stringify(type)}; known: code, token`);
    });
    if (fields.grantTypes.includes("refresh_token") && !fields.grantTypes.includes("authorization_code")) {
      violations.add(`${prefix}grant_types`, "refresh_token needs authorization_code, the only grant that issues refresh tokens");
    }
    if (fields.grantTypes.includes("client_credentials") && fields.type === "public") {
      violations.add(`${prefix}grant_types`, "client_credentials needs a confidential client (RFC 6749 §4.4)");
    }
    if (fields.responseTypes.includes("code") && !fields.grantTypes.includes("authorization_code")) {
      violations.add(`${prefix}response_types`, "response type code needs the authorization_code grant type");
    }
    if (fields.responseTypes.length > 0 && fields.redirectUris.length === 0) {
      violations.add(`${prefix}redirect_uris`, "a client that uses the authorization endpoint needs at least one redirect URI");
    }
    if (fields.refreshGraceSeconds < 0 || fields.refreshGraceSeconds > 300) violations.add(`${prefix}refresh_grace_seconds`, "must be 0..300");
    if (fields.type === "public") {
      if (fields.pkce?.required === false) violations.add(`${prefix}pkce.required`, "public clients must use PKCE (RFC 9700 §2.1.1)");
      if (fields.introspectAnyToken) violations.add(`${prefix}introspect_any_token`, "a public client cannot authenticate to introspect");
    }
  };

  const clientView = (client: Client | StoredClient, managedBy: ManagedBy, stored?: StoredClient): ClientView => ({
    clientId: client.id,
    displayName: client.name,
    type: client.type,
    redirectUris: [...client.redirectUris],
    scopes: [...client.scopes],
    defaultScopes: [...client.defaultScopes],
    grantTypes: [...client.grantTypes],
    responseTypes: [...client.responseTypes],
    pkce: { required: client.pkce.required, allowPlain: client.pkce.allowPlain },
    refreshGraceSeconds: client.refreshGraceSeconds,
    firstParty: client.firstParty,
    introspectAnyToken: client.introspectAnyToken,
    postLogoutRedirectUris: [...(client.postLogoutRedirectUris ?? [])],
    managedBy,
    secretCount: client.secretHashes.length,
    ...(stored === undefined ? {} : { createTime: stored.createdAt, updateTime: stored.updatedAt, createdBy: stored.createdBy }),
  });
  const storedClientView = (stored: StoredClient) => clientView(stored, stored.source, stored);

  const configClient = (tenant: AdminTenant, id: string) => tenant.ctx.policy.clients.get(id);

  const newSecret = (tenant: AdminTenant) => tenant.ctx.random(SECRET_BYTES);

  const userView = async (tenant: AdminTenant, user: User, stored?: StoredUser): Promise<UserView> => ({
    username: user.username,
    subject: user.subject,
    groups: [...((await deps.rights.currentGroups(tenant.ctx, user)) ?? user.groups)],
    disabled: await deps.rights.isDisabled(tenant.ctx, user),
    managedBy: stored?.source ?? "configuration",
    ...(stored === undefined ? {} : { createTime: stored.createdAt, updateTime: stored.updatedAt, createdBy: stored.createdBy }),
  });

  /** The user named `username`: the configuration's, else the store's. */
  const findUser = async (tenant: AdminTenant, username: string): Promise<{ user: User; stored?: StoredUser } | undefined> => {
    const configured = tenant.ctx.policy.users.get(username);
    if (configured !== undefined) return { user: configured };
    const stored = await tenant.ctx.store.registry.users.get(username);
    return stored === undefined ? undefined : { user: userOfStored(stored), stored };
  };

  /**
   * One page of a list over the configuration's entries and the store's,
   * merged in id order (the configuration's win a tie: a stored entry never
   * shadows one of the file).
   */
  const mergedPage = async <C, S extends EntryMeta, V>(
    tenant: AdminTenant,
    list: string,
    pageSize: number,
    pageToken: string,
    configured: ReadonlyMap<string, C>,
    collection: RegistryCollection<S>,
    viewOfConfigured: (entry: C) => V | Promise<V>,
    viewOfStored: (entry: S) => V | Promise<V>,
  ): Promise<Page<V>> => {
    const size = pageSizeOf(pageSize);
    const after = decodePageToken(pageToken, list, tenant.name, "");
    const fromConfig = [...configured.keys()].filter((id) => after === undefined || compareIds(id, after) > 0).sort(compareIds).slice(0, size + 1);
    const fromStore = (await collection.list(after, size + 1)).filter((e) => !configured.has(e.id));
    const merged: Array<{ id: string; view: () => V | Promise<V> }> = [
      ...fromConfig.map((id) => ({ id, view: () => viewOfConfigured(configured.get(id)!) })),
      ...fromStore.map((e) => ({ id: e.id, view: () => viewOfStored(e.entry) })),
    ].sort((a, b) => compareIds(a.id, b.id));
    const page = merged.slice(0, size);
    const items = await Promise.all(page.map((e) => e.view()));
    const more = merged.length > size;
    return { items, nextPageToken: more ? encodePageToken(list, tenant.name, "", page[page.length - 1]!.id) : "" };
  };

  const requireUser = async (tenant: AdminTenant, username: string): Promise<User> => {
    const found = await findUser(tenant, username);
    if (found === undefined) throw notFound(`users/${username}`);
    return found.user;
  };

  return {
    // ---- clients ----

    async createClient(tenant: AdminTenant, actor: string, clientId: string, fields: ClientFields): Promise<{ client: ClientView; secret: string }> {
      const violations = new Violations();
      const id = clientId === "" ? tenant.ctx.random(16) : clientId;
      violations.add("client_id", checkClientId(id));
      const complete: ClientFields = {
        ...fields,
        grantTypes: fields.grantTypes.length > 0 ? fields.grantTypes : ["authorization_code", "refresh_token"],
        responseTypes: fields.responseTypes.length > 0 ? fields.responseTypes : fields.grantTypes.length === 0 || fields.grantTypes.includes("authorization_code") ? ["code"] : [],
        pkce: fields.pkce ?? { required: true, allowPlain: false },
      };
      await checkClient(tenant, complete, "client.", violations);
      refuseViolations(violations.list);
      const resource = `clients/${id}`;
      if (configClient(tenant, id) !== undefined) throw new AdminError("already_exists", `${resource} already exists (in the configuration file)`);
      const secret = complete.type === "confidential" ? newSecret(tenant) : "";
      const stored: StoredClient = {
        ...meta(tenant, actor),
        id,
        name: complete.displayName,
        type: complete.type!,
        secretHashes: secret === "" ? [] : [hashSecret(secret)],
        redirectUris: complete.redirectUris,
        scopes: complete.scopes,
        defaultScopes: complete.defaultScopes,
        grantTypes: complete.grantTypes as GrantType[],
        responseTypes: complete.responseTypes as ResponseType[],
        pkce: complete.pkce!,
        refreshGraceSeconds: complete.refreshGraceSeconds,
        firstParty: complete.firstParty,
        introspectAnyToken: complete.introspectAnyToken,
        ...(complete.postLogoutRedirectUris.length > 0 ? { postLogoutRedirectUris: complete.postLogoutRedirectUris } : {}),
      };
      if (!(await tenant.ctx.store.registry.clients.create(id, stored))) throw new AdminError("already_exists", `${resource} already exists`);
      const view = storedClientView({ ...stored, revision: 1 });
      await audit(tenant, actor, "CreateClient", resource, undefined, view);
      return { client: view, secret };
    },

    async getClient(tenant: AdminTenant, id: string): Promise<ClientView> {
      const configured = configClient(tenant, id);
      if (configured !== undefined) return clientView(configured, "configuration");
      const stored = await tenant.ctx.store.registry.clients.get(id);
      if (stored === undefined) throw notFound(`clients/${id}`);
      return storedClientView(stored);
    },

    listClients(tenant: AdminTenant, pageSize: number, pageToken: string): Promise<Page<ClientView>> {
      return mergedPage(tenant, "clients", pageSize, pageToken, tenant.ctx.policy.clients, tenant.ctx.store.registry.clients, (c) => clientView(c, "configuration"), storedClientView);
    },

    async updateClient(tenant: AdminTenant, actor: string, id: string, fields: ClientFields, paths: readonly string[]): Promise<ClientView> {
      const resource = `clients/${id}`;
      const violations = new Violations();
      checkMask(paths, Object.keys(CLIENT_PATHS), violations);
      refuseViolations(violations.list);
      if (configClient(tenant, id) !== undefined) throw managedByConfiguration(resource);
      const { before, after } = await change(tenant.ctx.store.registry.clients, id, resource, async (current) => {
        const next = fieldsOfStored(current);
        for (const path of paths) {
          if (path === "pkce.required") next.pkce = { ...next.pkce!, required: fields.pkce?.required ?? false };
          else if (path === "pkce.allow_plain") next.pkce = { ...next.pkce!, allowPlain: fields.pkce?.allowPlain ?? false };
          else if (path === "pkce") next.pkce = fields.pkce ?? { required: false, allowPlain: false };
          else Object.assign(next, { [CLIENT_PATHS[path as keyof typeof CLIENT_PATHS]]: fields[CLIENT_PATHS[path as keyof typeof CLIENT_PATHS]] });
        }
        const problems = new Violations();
        await checkClient(tenant, next, "client.", problems);
        refuseViolations(problems.list);
        return {
          ...current,
          name: next.displayName,
          redirectUris: next.redirectUris,
          scopes: next.scopes,
          defaultScopes: next.defaultScopes,
          grantTypes: next.grantTypes as GrantType[],
          responseTypes: next.responseTypes as ResponseType[],
          pkce: next.pkce!,
          refreshGraceSeconds: next.refreshGraceSeconds,
          firstParty: next.firstParty,
          introspectAnyToken: next.introspectAnyToken,
          postLogoutRedirectUris: next.postLogoutRedirectUris,
          updatedAt: tenant.ctx.clock(),
        };
      });
      const view = storedClientView(after);
      await audit(tenant, actor, "UpdateClient", resource, storedClientView(before), view);
      return view;
    },

    async deleteClient(tenant: AdminTenant, actor: string, id: string): Promise<void> {
      const resource = `clients/${id}`;
      if (configClient(tenant, id) !== undefined) throw managedByConfiguration(resource);
      const current = await tenant.ctx.store.registry.clients.get(id);
      if (current === undefined || !(await tenant.ctx.store.registry.clients.delete(id))) throw notFound(resource);
      await audit(tenant, actor, "DeleteClient", resource, storedClientView(current), undefined);
    },

    /**
     * A new secret, shown once; the old ones stop working at once, or (with
     * `keepPrevious`) the most recent one keeps working beside it until the
     * next rotation: an overlap for rolling the new secret out.
     */
    async rotateClientSecret(tenant: AdminTenant, actor: string, id: string, keepPrevious: boolean): Promise<{ client: ClientView; secret: string }> {
      const resource = `clients/${id}`;
      if (configClient(tenant, id) !== undefined) throw managedByConfiguration(resource);
      const secret = newSecret(tenant);
      const { before, after } = await change(tenant.ctx.store.registry.clients, id, resource, (current) => {
        if (current.type !== "confidential") throw new AdminError("failed_precondition", `${resource} is a public client: it has no secret (RFC 6749 §2.1)`);
        const kept = keepPrevious && current.secretHashes.length > 0 ? [current.secretHashes[0]!] : [];
        return { ...current, secretHashes: [hashSecret(secret), ...kept], updatedAt: tenant.ctx.clock() };
      });
      const view = storedClientView(after);
      await audit(tenant, actor, "RotateClientSecret", resource, storedClientView(before), view);
      return { client: view, secret };
    },

    // ---- scopes ----

    async createScope(tenant: AdminTenant, actor: string, scopeId: string, description: string, groups: readonly string[] = []): Promise<ScopeView> {
      const violations = new Violations();
      violations.add("scope_id", checkScopeToken(scopeId));
      violations.add("scope.description", checkDescription(description));
      if (groups.length > 0) violations.add("scope.groups", "output only: a scope limited to groups is declared in the configuration (scopes[].groups)");
      refuseViolations(violations.list);
      const resource = `scopes/${scopeId}`;
      if (tenant.ctx.policy.scopes.has(scopeId)) throw new AdminError("already_exists", `${resource} already exists (in the configuration file)`);
      const stored: StoredScope = { ...meta(tenant, actor), name: scopeId, description };
      if (!(await tenant.ctx.store.registry.scopes.create(scopeId, stored))) throw new AdminError("already_exists", `${resource} already exists`);
      const view = scopeView(stored, "admin");
      await audit(tenant, actor, "CreateScope", resource, undefined, view);
      return view;
    },

    async getScope(tenant: AdminTenant, scope: string): Promise<ScopeView> {
      const configured = tenant.ctx.policy.scopes.get(scope);
      if (configured !== undefined) return scopeView(configured, "configuration");
      const stored = await tenant.ctx.store.registry.scopes.get(scope);
      if (stored === undefined) throw notFound(`scopes/${scope}`);
      return scopeView(stored, stored.source);
    },

    listScopes(tenant: AdminTenant, pageSize: number, pageToken: string): Promise<Page<ScopeView>> {
      return mergedPage(tenant, "scopes", pageSize, pageToken, tenant.ctx.policy.scopes, tenant.ctx.store.registry.scopes, (s) => scopeView(s, "configuration"), (s) => scopeView(s, s.source));
    },

    async updateScope(tenant: AdminTenant, actor: string, scope: string, description: string, paths: readonly string[]): Promise<ScopeView> {
      const resource = `scopes/${scope}`;
      const violations = new Violations();
      checkMask(paths, SCOPE_PATHS, violations);
      if (paths.includes("description")) violations.add("scope.description", checkDescription(description));
      refuseViolations(violations.list);
      if (tenant.ctx.policy.scopes.has(scope)) throw managedByConfiguration(resource);
      const { before, after } = await change(tenant.ctx.store.registry.scopes, scope, resource, (current) => ({ ...current, description, updatedAt: tenant.ctx.clock() }));
      const view = scopeView(after, after.source);
      await audit(tenant, actor, "UpdateScope", resource, scopeView(before, before.source), view);
      return view;
    },

    async deleteScope(tenant: AdminTenant, actor: string, scope: string): Promise<void> {
      const resource = `scopes/${scope}`;
      if (tenant.ctx.policy.scopes.has(scope)) throw managedByConfiguration(resource);
      const current = await tenant.ctx.store.registry.scopes.get(scope);
      if (current === undefined) throw notFound(resource);
      // A scope a stored client names stays: deleting it would leave the client unloadable in the file's terms.
      for (let after: string | undefined, page; (page = await tenant.ctx.store.registry.clients.list(after, 500)).length > 0; after = page[page.length - 1]!.id) {
        const user = page.find((e) => e.entry.scopes.includes(scope));
        if (user !== undefined) throw new AdminError("failed_precondition", `${resource} is in use by clients/${user.id}; remove it from that client first`);
      }
      if (!(await tenant.ctx.store.registry.scopes.delete(scope))) throw notFound(resource);
      await audit(tenant, actor, "DeleteScope", resource, scopeView(current, current.source), undefined);
    },

    // ---- users ----

    async createUser(tenant: AdminTenant, actor: string, username: string, subject: string, groups: readonly string[], password: string): Promise<UserView> {
      const violations = new Violations();
      violations.add("user_id", checkUsername(username));
      const sub = subject === "" ? username : subject;
      violations.add("user.subject", checkSubject(sub));
      checkList(groups, "user.groups", violations, 100);
      groups.forEach((group, i) => violations.add(`user.groups[${i}]`, checkGroup(group)));
      if (password !== "") violations.add("password", checkPassword(password));
      refuseViolations(violations.list);
      const resource = `users/${username}`;
      if (tenant.ctx.policy.users.has(username)) throw new AdminError("already_exists", `${resource} already exists (in the configuration file)`);
      if ([...tenant.ctx.policy.users.values()].some((u) => u.subject === sub)) throw new AdminError("already_exists", `a user with subject ${JSON.stringify(sub)} already exists (in the configuration file)`);
      const stored: StoredUser = {
        ...meta(tenant, actor),
        username,
        subject: sub,
        passwordHash: password === "" ? "" : await hashPassword(password),
        groups: [...groups],
        disabled: false,
      };
      if (!(await tenant.ctx.store.registry.users.create(username, stored, sub))) {
        throw new AdminError("already_exists", `${resource} already exists, or another user has the subject ${JSON.stringify(sub)}`);
      }
      const view = await userView(tenant, userOfStored(stored), stored);
      await audit(tenant, actor, "CreateUser", resource, undefined, view);
      return view;
    },

    async getUser(tenant: AdminTenant, username: string): Promise<UserView> {
      const found = await findUser(tenant, username);
      if (found === undefined) throw notFound(`users/${username}`);
      return userView(tenant, found.user, found.stored);
    },

    listUsers(tenant: AdminTenant, pageSize: number, pageToken: string): Promise<Page<UserView>> {
      return mergedPage(tenant, "users", pageSize, pageToken, tenant.ctx.policy.users, tenant.ctx.store.registry.users, (u) => userView(tenant, u), (s) => userView(tenant, userOfStored(s), s));
    },

    async updateUser(tenant: AdminTenant, actor: string, username: string, groups: readonly string[], paths: readonly string[]): Promise<UserView> {
      const resource = `users/${username}`;
      const violations = new Violations();
      checkMask(paths, USER_PATHS, violations);
      checkList(groups, "user.groups", violations, 100);
      groups.forEach((group, i) => violations.add(`user.groups[${i}]`, checkGroup(group)));
      refuseViolations(violations.list);
      if (tenant.ctx.policy.users.has(username)) throw managedByConfiguration(resource);
      const current = await tenant.ctx.store.registry.users.get(username);
      const groupsBefore = current === undefined ? [] : await deps.rights.currentGroups(tenant.ctx, userOfStored(current));
      const { before, after } = await change(tenant.ctx.store.registry.users, username, resource, (entry) => ({ ...entry, groups: [...groups], updatedAt: tenant.ctx.clock() }));
      // Every gateway drops what it cached of the user; a refresh beyond the new rights fails when it comes.
      await deps.rights.rightsChanged(tenant.ctx, after.subject, groupsBefore, await deps.rights.currentGroups(tenant.ctx, userOfStored(after)));
      const view = await userView(tenant, userOfStored(after), after);
      await audit(tenant, actor, "UpdateUser", resource, await userView(tenant, userOfStored(before), before), view);
      return view;
    },

    async setUserPassword(tenant: AdminTenant, actor: string, username: string, password: string): Promise<UserView> {
      const resource = `users/${username}`;
      const violations = new Violations();
      violations.add("password", checkPassword(password));
      refuseViolations(violations.list);
      if (tenant.ctx.policy.users.has(username)) throw managedByConfiguration(resource);
      const passwordHash = await hashPassword(password);
      const { before, after } = await change(tenant.ctx.store.registry.users, username, resource, (current) => ({ ...current, passwordHash, updatedAt: tenant.ctx.clock() }));
      const view = await userView(tenant, userOfStored(after), after);
      // The views hold no hash: the event says that the password changed, and when.
      await audit(tenant, actor, "SetUserPassword", resource, await userView(tenant, userOfStored(before), before), view);
      return view;
    },

    /**
     * Blocks a user (oauth/user-rights.ts blockUser): allowed for the
     * configuration's users too, since a block is an operator's emergency
     * action on the user's state, not a change of what the file declares.
     */
    async disableUser(tenant: AdminTenant, actor: string, username: string): Promise<UserView> {
      const found = await findUser(tenant, username);
      if (found === undefined) throw notFound(`users/${username}`);
      const before = await userView(tenant, found.user, found.stored);
      await deps.rights.block(tenant.ctx, found.user.subject);
      const after = await userView(tenant, found.user, found.stored);
      await audit(tenant, actor, "DisableUser", `users/${username}`, before, after);
      return after;
    },

    async enableUser(tenant: AdminTenant, actor: string, username: string): Promise<UserView> {
      const found = await findUser(tenant, username);
      if (found === undefined) throw notFound(`users/${username}`);
      const before = await userView(tenant, found.user, found.stored);
      await deps.rights.unblock(tenant.ctx, found.user.subject);
      const after = await userView(tenant, found.user, found.stored);
      await audit(tenant, actor, "EnableUser", `users/${username}`, before, after);
      return after;
    },

    /** Removes a stored user after blocking them (their sessions end, their grants are revoked). */
    async deleteUser(tenant: AdminTenant, actor: string, username: string): Promise<void> {
      const resource = `users/${username}`;
      if (tenant.ctx.policy.users.has(username)) throw managedByConfiguration(resource);
      const current = await tenant.ctx.store.registry.users.get(username);
      if (current === undefined) throw notFound(resource);
      const before = await userView(tenant, userOfStored(current), current);
      // Blocking first ends the user's sessions and revokes their grants (with their access tokens) at every replica.
      await deps.rights.block(tenant.ctx, current.subject);
      if (!(await tenant.ctx.store.registry.users.delete(username, current.subject))) throw notFound(resource);
      // The block has done its work; left behind, it would disable a user created later with the same subject.
      await tenant.ctx.store.userStates.delete(current.subject);
      await audit(tenant, actor, "DeleteUser", resource, before, undefined);
    },

    // ---- what a user holds: remembered consents ----

    async listUserConsents(tenant: AdminTenant, username: string, pageSize: number, pageToken: string): Promise<Page<ConsentView>> {
      const user = await requireUser(tenant, username);
      const consents = (await tenant.ctx.store.consents.listOfSubject(user.subject)).map((c) => ({ clientId: c.clientId, scopes: [...c.scopes].sort() }));
      return pageOf(tenant, `users/${username}/consents`, consents, (c) => c.clientId, pageSize, pageToken);
    },

    /** Forgets a remembered consent (the next request asks the user again); grants already issued stay. */
    async revokeUserConsent(tenant: AdminTenant, actor: string, username: string, clientId: string): Promise<void> {
      const user = await requireUser(tenant, username);
      const resource = `users/${username}/consents/${clientId}`;
      const scopes = await tenant.ctx.store.consents.get(user.subject, clientId);
      if (scopes.length === 0) throw notFound(resource);
      await tenant.ctx.store.consents.forget(user.subject, clientId);
      await audit(tenant, actor, "RevokeUserConsent", resource, { clientId, scopes: [...scopes].sort() }, undefined);
    },

    // ---- what a user holds: grants and sessions ----

    async listUserGrants(tenant: AdminTenant, username: string, pageSize: number, pageToken: string): Promise<Page<GrantView>> {
      const user = await requireUser(tenant, username);
      const grants = (await deps.rights.listGrants(tenant.ctx, user.subject)).map((g) => ({
        grantId: g.grantId,
        clientId: g.clientId,
        scopes: [...g.scopes],
        authTime: g.authTime * 1000,
        expireTime: g.familyExpiresAt,
      }));
      return pageOf(tenant, `users/${username}/grants`, grants, (g) => g.grantId, pageSize, pageToken);
    },

    /** Revokes one grant of the user: its refresh token family and every access token of it, announced to every gateway. */
    async revokeUserGrant(tenant: AdminTenant, actor: string, username: string, grantId: string): Promise<void> {
      const user = await requireUser(tenant, username);
      const resource = `users/${username}/grants/${grantId}`;
      const before = (await deps.rights.listGrants(tenant.ctx, user.subject)).find((g) => g.grantId === grantId);
      if (before === undefined || !(await deps.rights.revokeGrant(tenant.ctx, user.subject, grantId))) throw notFound(resource);
      await audit(tenant, actor, "RevokeUserGrant", resource, { grantId, clientId: before.clientId, scopes: [...before.scopes] }, undefined);
    },

    async listUserSessions(tenant: AdminTenant, username: string, pageSize: number, pageToken: string): Promise<Page<SessionView>> {
      const user = await requireUser(tenant, username);
      const sessions = (await deps.rights.listSessions(tenant.ctx, user.subject)).map((session) => ({
        sid: session.sid,
        authTime: session.authTime * 1000,
        // Sessions live lifetimes.session from their login (oauth/login.ts).
        expireTime: (session.authTime + tenant.ctx.policy.lifetimes.session) * 1000,
      }));
      return pageOf(tenant, `users/${username}/sessions`, sessions, (s) => s.sid, pageSize, pageToken);
    },

    /** Ends one login session of the user, as a logout does (its participants' revokeOnLogout, Back-Channel Logout). */
    async endUserSession(tenant: AdminTenant, actor: string, username: string, sid: string): Promise<void> {
      const user = await requireUser(tenant, username);
      const resource = `users/${username}/sessions/${sid}`;
      const before = (await deps.rights.listSessions(tenant.ctx, user.subject)).find((session) => session.sid === sid);
      if (before === undefined || !(await deps.rights.endSession(tenant.ctx, user.subject, sid))) throw notFound(resource);
      await audit(tenant, actor, "EndUserSession", resource, { sid, authTime: before.authTime * 1000 }, undefined);
    },

    // ---- audit trail ----

    async listAuditEvents(tenant: AdminTenant, pageSize: number, pageToken: string, resource: string): Promise<Page<AuditRecord>> {
      const size = pageSizeOf(pageSize);
      const before = decodePageToken(pageToken, "auditEvents", tenant.name, resource);
      const events = await tenant.ctx.store.audit.list(before, size + 1, resource === "" ? undefined : resource);
      const items = events.slice(0, size);
      return { items, nextPageToken: events.length > size ? encodePageToken("auditEvents", tenant.name, resource, items[items.length - 1]!.id) : "" };
    },
  };
}

export type AdminApi = ReturnType<typeof createAdminApi>;

function scopeView(scope: ScopeDefinition | StoredScope, managedBy: ManagedBy): ScopeView {
  return { scope: scope.name, description: scope.description, managedBy, groups: "groups" in scope && scope.groups !== undefined ? [...scope.groups] : [] };
}

function fieldsOfStored(stored: StoredClient): ClientFields {
  return {
    displayName: stored.name,
    type: stored.type,
    redirectUris: [...stored.redirectUris],
    scopes: [...stored.scopes],
    defaultScopes: [...stored.defaultScopes],
    grantTypes: [...stored.grantTypes],
    responseTypes: [...stored.responseTypes],
    pkce: { ...stored.pkce },
    refreshGraceSeconds: stored.refreshGraceSeconds,
    firstParty: stored.firstParty,
    introspectAnyToken: stored.introspectAnyToken,
    postLogoutRedirectUris: [...(stored.postLogoutRedirectUris ?? [])],
  };
}

/** One page of a list held whole in memory (a user's consents, grants, sessions: a handful), by `key` order. */
function pageOf<T>(tenant: AdminTenant, list: string, items: readonly T[], key: (item: T) => string, pageSize: number, pageToken: string): Page<T> {
  const size = pageSizeOf(pageSize);
  const after = decodePageToken(pageToken, list, tenant.name, "");
  const sorted = [...items].sort((a, b) => compareIds(key(a), key(b))).filter((item) => after === undefined || compareIds(key(item), after) > 0);
  const page = sorted.slice(0, size);
  return { items: page, nextPageToken: sorted.length > size ? encodePageToken(list, tenant.name, "", key(page[page.length - 1]!)) : "" };
}

/** AIP-134: a mask is required here, and every path must be one the resource lets change. */
function checkMask(paths: readonly string[], allowed: readonly string[], violations: Violations): void {
  if (paths.length === 0) violations.add("update_mask", `required: name the fields to change (${allowed.join(", ")})`);
  paths.forEach((path, i) => {
    if (!allowed.includes(path)) violations.add(`update_mask.paths[${i}]`, `${JSON.stringify(path)} cannot be updated; the paths are ${allowed.join(", ")}`);
  });
}

/** A view as plain JSON (the audit trail's before/after). */
function toJson(view: object): JsonObject {
  return JSON.parse(JSON.stringify(view)) as JsonObject;
}
