import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs, type FieldMask } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  AdminService,
  ClientType,
  ManagedBy,
  AuditEventSchema,
  ClientSchema,
  ScopeSchema,
  UserSchema,
  type Client as ClientMessage,
} from "../../../gen/gatehouse/v1/admin_service_pb.js";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { AdminError, type AdminErrorKind } from "../admin/admin-error.js";
import type { AdminApi, AdminTenant, ClientFields, ClientView, ManagedBy as DomainManagedBy, ScopeView, UserView } from "../admin/admin-api.js";
import type { OAuthContext } from "../oauth/context.js";
import type { AuditRecord } from "../oauth/registry.js";
import { matchCredential, type NamedSecret } from "./caller.js";
import { tenantOf } from "./tenant.js";

/** What the admin service needs from the process. */
export interface AdminServiceOptions {
  /** The admin credentials in force (a reload may change them); empty: the API is off. */
  credentials: () => readonly NamedSecret[];
  /** The tenant's protocol context as configured now; undefined: no such tenant. */
  tenantContext: (name: string) => OAuthContext | undefined;
  /** The configuration's requireHttps (redirect URIs). */
  requireHttps: () => boolean;
  api: AdminApi;
}

const KIND_CODES: Readonly<Record<AdminErrorKind, Code>> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  aborted: Code.Aborted,
};

/**
 * AdminService (proto/gatehouse/v1/admin_service.proto): authenticates the
 * admin credential, picks the tenant, translates messages to the admin core
 * (admin/admin-api.ts) and its AdminErrors to ConnectErrors: the one place
 * that does (InvalidArgument carries a google.rpc.BadRequest with one
 * FieldViolation per bad field, AIP-193).
 */
export function createAdminService(options: AdminServiceOptions): ServiceImpl<typeof AdminService> {
  /** The admin credential's name; Unauthenticated, saying nothing more, for a wrong or missing one or with the API off. */
  const authenticate = (context: HandlerContext): string => {
    const header = context.requestHeader.get("authorization");
    const presented = header !== null && /^Bearer [^\s]+$/i.test(header) ? header.slice(7) : null;
    const credential = matchCredential(presented, options.credentials());
    if (credential === undefined) throw new ConnectError("unauthenticated", Code.Unauthenticated);
    return credential.name;
  };

  const tenantFor = (context: HandlerContext): AdminTenant => {
    const name = tenantOf(context);
    const ctx = options.tenantContext(name);
    if (ctx === undefined) throw new ConnectError(`no tenant ${JSON.stringify(name.slice(0, 64))} is configured`, Code.NotFound);
    return { name, ctx, requireHttps: options.requireHttps() };
  };

  /** Every method: authenticate first, then run with AdminErrors mapped. */
  const call = async <T>(context: HandlerContext, run: (tenant: AdminTenant, actor: string) => Promise<T>): Promise<T> => {
    const actor = authenticate(context);
    const tenant = tenantFor(context);
    try {
      return await run(tenant, actor);
    } catch (error) {
      if (error instanceof AdminError) throw connectErrorOfAdmin(error);
      throw error;
    }
  };

  const api = options.api;
  return {
    createClient: (request, context) =>
      call(context, async (tenant, actor) => {
        const { client, secret } = await api.createClient(tenant, actor, request.clientId, clientFields(request.client));
        return { client: clientMessage(client), clientSecret: secret };
      }),
    getClient: (request, context) =>
      call(context, async (tenant) => ({ client: clientMessage(await api.getClient(tenant, idOf(request.name, "clients", "name"))) })),
    listClients: (request, context) =>
      call(context, async (tenant) => {
        const page = await api.listClients(tenant, request.pageSize, request.pageToken);
        return { clients: page.items.map(clientMessage), nextPageToken: page.nextPageToken };
      }),
    updateClient: (request, context) =>
      call(context, async (tenant, actor) => {
        const id = idOf(request.client?.name ?? "", "clients", "client.name");
        return { client: clientMessage(await api.updateClient(tenant, actor, id, clientFields(request.client), maskPaths(request.updateMask))) };
      }),
    deleteClient: (request, context) =>
      call(context, async (tenant, actor) => {
        await api.deleteClient(tenant, actor, idOf(request.name, "clients", "name"));
        return {};
      }),
    rotateClientSecret: (request, context) =>
      call(context, async (tenant, actor) => {
        const { client, secret } = await api.rotateClientSecret(tenant, actor, idOf(request.name, "clients", "name"), request.keepPreviousSecret);
        return { client: clientMessage(client), clientSecret: secret };
      }),

    createScope: (request, context) =>
      call(context, async (tenant, actor) => ({ scope: scopeMessage(await api.createScope(tenant, actor, request.scopeId, request.scope?.description ?? "", request.scope?.groups ?? [])) })),
    getScope: (request, context) => call(context, async (tenant) => ({ scope: scopeMessage(await api.getScope(tenant, idOf(request.name, "scopes", "name"))) })),
    listScopes: (request, context) =>
      call(context, async (tenant) => {
        const page = await api.listScopes(tenant, request.pageSize, request.pageToken);
        return { scopes: page.items.map(scopeMessage), nextPageToken: page.nextPageToken };
      }),
    updateScope: (request, context) =>
      call(context, async (tenant, actor) => {
        const scope = idOf(request.scope?.name ?? "", "scopes", "scope.name");
        return { scope: scopeMessage(await api.updateScope(tenant, actor, scope, request.scope?.description ?? "", maskPaths(request.updateMask))) };
      }),
    deleteScope: (request, context) =>
      call(context, async (tenant, actor) => {
        await api.deleteScope(tenant, actor, idOf(request.name, "scopes", "name"));
        return {};
      }),

    createUser: (request, context) =>
      call(context, async (tenant, actor) => ({
        user: userMessage(await api.createUser(tenant, actor, request.userId, request.user?.subject ?? "", request.user?.groups ?? [], request.password)),
      })),
    getUser: (request, context) => call(context, async (tenant) => ({ user: userMessage(await api.getUser(tenant, idOf(request.name, "users", "name"))) })),
    listUsers: (request, context) =>
      call(context, async (tenant) => {
        const page = await api.listUsers(tenant, request.pageSize, request.pageToken);
        return { users: page.items.map(userMessage), nextPageToken: page.nextPageToken };
      }),
    updateUser: (request, context) =>
      call(context, async (tenant, actor) => {
        const username = idOf(request.user?.name ?? "", "users", "user.name");
        return { user: userMessage(await api.updateUser(tenant, actor, username, request.user?.groups ?? [], maskPaths(request.updateMask))) };
      }),
    deleteUser: (request, context) =>
      call(context, async (tenant, actor) => {
        await api.deleteUser(tenant, actor, idOf(request.name, "users", "name"));
        return {};
      }),
    setUserPassword: (request, context) =>
      call(context, async (tenant, actor) => ({ user: userMessage(await api.setUserPassword(tenant, actor, idOf(request.name, "users", "name"), request.password)) })),
    disableUser: (request, context) =>
      call(context, async (tenant, actor) => ({ user: userMessage(await api.disableUser(tenant, actor, idOf(request.name, "users", "name"))) })),
    enableUser: (request, context) =>
      call(context, async (tenant, actor) => ({ user: userMessage(await api.enableUser(tenant, actor, idOf(request.name, "users", "name"))) })),

    listUserGrants: (request, context) =>
      call(context, async (tenant) => {
        const username = idOf(request.parent, "users", "parent");
        const page = await api.listUserGrants(tenant, username, request.pageSize, request.pageToken);
        return {
          grants: page.items.map((g) => ({
            name: `users/${username}/grants/${g.grantId}`,
            clientId: g.clientId,
            scopes: g.scopes,
            authTime: timestampFromMs(g.authTime),
            expireTime: timestampFromMs(g.expireTime),
          })),
          nextPageToken: page.nextPageToken,
        };
      }),
    revokeUserGrant: (request, context) =>
      call(context, async (tenant, actor) => {
        const [username, grantId] = childOf(request.name, "grants");
        await api.revokeUserGrant(tenant, actor, username, grantId);
        return {};
      }),
    listUserConsents: (request, context) =>
      call(context, async (tenant) => {
        const username = idOf(request.parent, "users", "parent");
        const page = await api.listUserConsents(tenant, username, request.pageSize, request.pageToken);
        return { consents: page.items.map((c) => ({ name: `users/${username}/consents/${c.clientId}`, clientId: c.clientId, scopes: c.scopes })), nextPageToken: page.nextPageToken };
      }),
    revokeUserConsent: (request, context) =>
      call(context, async (tenant, actor) => {
        const [username, clientId] = childOf(request.name, "consents");
        await api.revokeUserConsent(tenant, actor, username, clientId);
        return {};
      }),
    listUserSessions: (request, context) =>
      call(context, async (tenant) => {
        const username = idOf(request.parent, "users", "parent");
        const page = await api.listUserSessions(tenant, username, request.pageSize, request.pageToken);
        return {
          sessions: page.items.map((session) => ({
            name: `users/${username}/sessions/${session.sid}`,
            authTime: timestampFromMs(session.authTime),
            expireTime: timestampFromMs(session.expireTime),
          })),
          nextPageToken: page.nextPageToken,
        };
      }),
    endUserSession: (request, context) =>
      call(context, async (tenant, actor) => {
        const [username, sid] = childOf(request.name, "sessions");
        await api.endUserSession(tenant, actor, username, sid);
        return {};
      }),

    listAuditEvents: (request, context) =>
      call(context, async (tenant) => {
        const page = await api.listAuditEvents(tenant, request.pageSize, request.pageToken, request.resource);
        return { auditEvents: page.items.map(auditMessage), nextPageToken: page.nextPageToken };
      }),
  };
}

/** The one mapping of AdminErrors to ConnectErrors (AIP-193). */
export function connectErrorOfAdmin(error: AdminError): ConnectError {
  const details =
    error.violations.length === 0
      ? []
      : [{ desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: error.violations.map((v) => ({ field: v.field, description: v.description })) }) }];
  return new ConnectError(error.message, KIND_CODES[error.kind], undefined, details);
}

/** The id of a resource name `{collection}/{id}` (AIP-122); InvalidArgument naming `field` otherwise. */
function idOf(name: string, collection: string, field: string): string {
  const prefix = `${collection}/`;
  if (!name.startsWith(prefix) || name.length === prefix.length) {
    const description = `must be a resource name ${prefix}{id}`;
    throw connectErrorOfAdmin(new AdminError("invalid_argument", `${field}: ${description}`, [{ field, description }]));
  }
  return name.slice(prefix.length);
}

/** `users/{user}/{collection}/{id}` (AIP-122): the username and the id; InvalidArgument on `name` otherwise. */
function childOf(name: string, collection: string): [string, string] {
  const match = /^users\/([^/]+)\/([^/]+)\/(.+)$/.exec(name);
  if (match === null || match[2] !== collection) {
    const description = `must be a resource name users/{user}/${collection}/{id}`;
    throw connectErrorOfAdmin(new AdminError("invalid_argument", `name: ${description}`, [{ field: "name", description }]));
  }
  return [match[1]!, match[3]!];
}

function maskPaths(mask: FieldMask | undefined): string[] {
  return mask?.paths ?? [];
}

const CLIENT_TYPES: Readonly<Record<ClientType, ClientFields["type"]>> = {
  [ClientType.UNSPECIFIED]: undefined,
  [ClientType.CONFIDENTIAL]: "confidential",
  [ClientType.PUBLIC]: "public",
};

function clientFields(client: ClientMessage | undefined): ClientFields {
  return {
    displayName: client?.displayName ?? "",
    type: CLIENT_TYPES[client?.type ?? ClientType.UNSPECIFIED],
    redirectUris: [...(client?.redirectUris ?? [])],
    scopes: [...(client?.scopes ?? [])],
    defaultScopes: [...(client?.defaultScopes ?? [])],
    grantTypes: [...(client?.grantTypes ?? [])],
    responseTypes: [...(client?.responseTypes ?? [])],
    pkce: client?.pkce === undefined ? undefined : { required: client.pkce.required, allowPlain: client.pkce.allowPlain },
    refreshGraceSeconds: client?.refreshGraceSeconds ?? 0,
    firstParty: client?.firstParty ?? false,
    introspectAnyToken: client?.introspectAnyToken ?? false,
    postLogoutRedirectUris: [...(client?.postLogoutRedirectUris ?? [])],
  };
}

const MANAGED_BY: Readonly<Record<DomainManagedBy, ManagedBy>> = {
  configuration: ManagedBy.CONFIGURATION,
  admin: ManagedBy.ADMIN,
  registration: ManagedBy.REGISTRATION,
};

const times = (view: { createTime?: number | undefined; updateTime?: number | undefined; createdBy?: string | undefined }) => ({
  ...(view.createTime === undefined ? {} : { createTime: timestampFromMs(view.createTime) }),
  ...(view.updateTime === undefined ? {} : { updateTime: timestampFromMs(view.updateTime) }),
  createdBy: view.createdBy ?? "",
});

function clientMessage(view: ClientView): MessageInitShape<typeof ClientSchema> {
  return {
    name: `clients/${view.clientId}`,
    clientId: view.clientId,
    displayName: view.displayName,
    type: view.type === "confidential" ? ClientType.CONFIDENTIAL : ClientType.PUBLIC,
    redirectUris: view.redirectUris,
    scopes: view.scopes,
    defaultScopes: view.defaultScopes,
    grantTypes: view.grantTypes,
    responseTypes: view.responseTypes,
    pkce: view.pkce,
    refreshGraceSeconds: view.refreshGraceSeconds,
    firstParty: view.firstParty,
    introspectAnyToken: view.introspectAnyToken,
    postLogoutRedirectUris: view.postLogoutRedirectUris,
    managedBy: MANAGED_BY[view.managedBy],
    secretCount: view.secretCount,
    ...times(view),
  };
}

function scopeMessage(view: ScopeView): MessageInitShape<typeof ScopeSchema> {
  return { name: `scopes/${view.scope}`, scope: view.scope, description: view.description, managedBy: MANAGED_BY[view.managedBy], groups: view.groups };
}

function userMessage(view: UserView): MessageInitShape<typeof UserSchema> {
  return {
    name: `users/${view.username}`,
    username: view.username,
    subject: view.subject,
    groups: view.groups,
    disabled: view.disabled,
    managedBy: MANAGED_BY[view.managedBy],
    ...times(view),
  };
}

function auditMessage(record: AuditRecord): MessageInitShape<typeof AuditEventSchema> {
  return {
    name: `auditEvents/${record.id}`,
    time: timestampFromMs(record.time),
    actor: record.actor,
    action: record.action,
    resource: record.resource,
    ...(record.before === undefined ? {} : { before: record.before }),
    ...(record.after === undefined ? {} : { after: record.after }),
  };
}
