/**
 * `gatehouse admin …`: the command line over AdminService (issue 12; README,
 * "Administration"). It calls the API with the generated Connect client and
 * nothing else: whatever it can do, a script calling the API can do too.
 *
 * Endpoint and credential: --url / GATEHOUSE_ADMIN_URL (default
 * http://127.0.0.1:50051, the authz service's port), --credential /
 * GATEHOUSE_ADMIN_CREDENTIAL (an admin credential's secret; the flag is
 * visible to other users of the machine in `ps`, so prefer the variable),
 * --tenant / GATEHOUSE_ADMIN_TENANT (absent: the default tenant).
 *
 * Output: human tables by default; --json prints the API's response message
 * as proto JSON. Exit codes: 0 done; 1 the API refused or could not be
 * reached (its status and message on stderr, one line per bad field);
 * 2 a usage error (nothing was sent).
 *
 * main.ts is the entry point; this module only runs a command line it is given.
 */
import { toJson, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { parseArgs } from "node:util";
import {
  AdminService,
  ClientType,
  ListAuditEventsResponseSchema,
  ListClientsResponseSchema,
  ListScopesResponseSchema,
  ListUsersResponseSchema,
  ManagedBy,
  CreateClientResponseSchema,
  ClientSchema,
  RotateClientSecretResponseSchema,
  ScopeSchema,
  UserSchema,
  type AuditEvent,
  type Client as ClientMessage,
  type Scope,
  type User,
  ListUserGrantsResponseSchema,
  ListUserConsentsResponseSchema,
  ListUserSessionsResponseSchema,
} from "../../gen/gatehouse/v1/admin_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { TENANT_HEADER } from "../../contract/metadata.js";
import { renderRecord, renderTable } from "./table.js";

/** Exit codes (README, "Administration"). */
export const EXIT = { ok: 0, apiError: 1, usage: 2 } as const;

const USAGE = `usage: gatehouse admin [--url URL] [--credential SECRET] [--tenant NAME] [--json] <resource> <action> [arguments]

  clients  list | get ID | create [ID] --name N --type confidential|public [--redirect-uri U]... [--scope S]...
           [--default-scope S]... [--grant-type G]... [--response-type R]... [--first-party] [--pkce-optional] [--allow-plain]
         | update ID [--name N] [--redirect-uri U]... [--scope S]... [--default-scope S]... [--grant-type G]... [--first-party true|false]
         | delete ID | rotate-secret ID [--keep-previous]
  scopes   list | get NAME | create NAME --description D | update NAME --description D | delete NAME
  users    list | get NAME | create NAME [--subject S] [--group G]... [--password-stdin] | set-password NAME --password-stdin
         | disable NAME | enable NAME | delete NAME
  groups   list NAME | add NAME GROUP... | remove NAME GROUP... | set NAME [GROUP...]
  grants   list NAME | revoke NAME GRANT_ID
  consents list NAME | revoke NAME CLIENT_ID
  sessions list NAME | end NAME SID
  audit    list [--resource R]

  Lists take --page-size N and --page-token T (or --all for every page).
  Environment: GATEHOUSE_ADMIN_URL, GATEHOUSE_ADMIN_CREDENTIAL, GATEHOUSE_ADMIN_TENANT.
  Exit codes: 0 done, 1 the API refused (message on stderr), 2 usage error.
`;

class UsageError extends Error {}

const OPTIONS = {
  url: { type: "string" },
  credential: { type: "string" },
  tenant: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  "page-size": { type: "string" },
  "page-token": { type: "string" },
  all: { type: "boolean" },
  name: { type: "string" },
  type: { type: "string" },
  "redirect-uri": { type: "string", multiple: true },
  "post-logout-redirect-uri": { type: "string", multiple: true },
  scope: { type: "string", multiple: true },
  "default-scope": { type: "string", multiple: true },
  "grant-type": { type: "string", multiple: true },
  "response-type": { type: "string", multiple: true },
  "first-party": { type: "string" },
  "pkce-optional": { type: "boolean" },
  "allow-plain": { type: "boolean" },
  "keep-previous": { type: "boolean" },
  description: { type: "string" },
  subject: { type: "string" },
  group: { type: "string", multiple: true },
  "password-stdin": { type: "boolean" },
  resource: { type: "string" },
} as const;
type Options = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

/** What a command may be given besides the global options. */
const LIST = ["page-size", "page-token", "all"];
const CLIENT_FIELDS = ["name", "redirect-uri", "post-logout-redirect-uri", "scope", "default-scope", "grant-type", "response-type", "first-party"];
const ALLOWED: Record<string, readonly string[]> = {
  "clients list": LIST,
  "clients create": [...CLIENT_FIELDS, "type", "pkce-optional", "allow-plain"],
  "clients update": [...CLIENT_FIELDS, "pkce-optional"],
  "clients rotate-secret": ["keep-previous"],
  "scopes list": LIST,
  "scopes create": ["description"],
  "scopes update": ["description"],
  "users list": LIST,
  "users create": ["subject", "group", "password-stdin"],
  "users set-password": ["password-stdin"],
  "grants list": LIST,
  "consents list": LIST,
  "sessions list": LIST,
  "audit list": [...LIST, "resource"],
};
const GLOBAL = ["url", "credential", "tenant", "json", "help"];

/** What the command needs from its surroundings; tests run it in a child process with these from the environment. */
export interface CliIo {
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
  readStdin: () => Promise<string>;
}

export async function runAdminCli(argv: readonly string[], io: CliIo): Promise<number> {
  let values: Options;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (error) {
    io.err(`gatehouse admin: ${(error as Error).message}\n${USAGE}`);
    return EXIT.usage;
  }
  if (values.help === true) {
    io.out(USAGE);
    return EXIT.ok;
  }
  try {
    const [resource, action, ...args] = positionals;
    if (resource === undefined || action === undefined) throw new UsageError("name a resource and an action");
    const command = `${resource} ${action}`;
    const allowed = new Set([...GLOBAL, ...(ALLOWED[command] ?? [])]);
    const extra = Object.keys(values).filter((key) => !allowed.has(key));
    if (extra.length > 0) throw new UsageError(`${command} does not take --${extra.join(", --")}`);
    const credential = values.credential ?? io.env.GATEHOUSE_ADMIN_CREDENTIAL;
    if (credential === undefined || credential === "") throw new UsageError("no admin credential: set GATEHOUSE_ADMIN_CREDENTIAL or pass --credential");
    const url = values.url ?? io.env.GATEHOUSE_ADMIN_URL ?? "http://127.0.0.1:50051";
    if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
    const tenant = values.tenant ?? io.env.GATEHOUSE_ADMIN_TENANT;
    const client = createClient(
      AdminService,
      createConnectTransport({
        baseUrl: url,
        httpVersion: url.startsWith("https:") ? "2" : "1.1",
        interceptors: [
          (next) => (request) => {
            request.header.set("authorization", `Bearer ${credential}`);
            if (tenant !== undefined && tenant !== "") request.header.set(TENANT_HEADER, tenant);
            return next(request);
          },
        ],
      }),
    );
    await runCommand(command, args, values, { client, io, json: values.json === true });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`gatehouse admin: ${error.message}\n${USAGE}`);
      return EXIT.usage;
    }
    const connectError = ConnectError.from(error);
    io.err(`gatehouse admin: ${Code[connectError.code]}: ${connectError.rawMessage}\n`);
    for (const detail of connectError.findDetails(BadRequestSchema)) {
      for (const violation of detail.fieldViolations) io.err(`  ${violation.field}: ${violation.description}\n`);
    }
    return EXIT.apiError;
  }
}

interface Run {
  client: Client<typeof AdminService>;
  io: CliIo;
  json: boolean;
}

function arg(args: readonly string[], index: number, what: string): string {
  const value = args[index];
  if (value === undefined || value === "") throw new UsageError(`missing ${what}`);
  return value;
}

function noMoreArgs(args: readonly string[], count: number): void {
  if (args.length > count) throw new UsageError(`unexpected argument ${JSON.stringify(args[count])}`);
}

function pageSizeOf(values: Options): number {
  if (values["page-size"] === undefined) return 0;
  if (!/^\d{1,7}$/.test(values["page-size"])) throw new UsageError("--page-size must be a whole number");
  return Number(values["page-size"]);
}

function boolean(value: string | undefined, flag: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === "true") return true;
  if (value === "false") return false;
  throw new UsageError(`--${flag} must be true or false`);
}

/** Pages through a list (all pages with --all, else the one asked for). */
async function collect<T, R extends { nextPageToken: string }>(values: Options, fetch: (pageSize: number, pageToken: string) => Promise<R>, items: (response: R) => T[]): Promise<{ items: T[]; nextPageToken: string; last: R }> {
  const pageSize = pageSizeOf(values);
  let pageToken = values["page-token"] ?? "";
  const all: T[] = [];
  for (;;) {
    const response = await fetch(pageSize, pageToken);
    all.push(...items(response));
    pageToken = response.nextPageToken;
    if (values.all !== true || pageToken === "") return { items: all, nextPageToken: pageToken, last: response };
  }
}

const time = (timestamp: Timestamp | undefined) => (timestamp === undefined ? "" : timestampDate(timestamp).toISOString());
const managed = (by: ManagedBy) => ({ [ManagedBy.CONFIGURATION]: "configuration", [ManagedBy.ADMIN]: "admin", [ManagedBy.REGISTRATION]: "registration", [ManagedBy.UNSPECIFIED]: "" })[by];
const clientType = (type: ClientType) => (type === ClientType.CONFIDENTIAL ? "confidential" : type === ClientType.PUBLIC ? "public" : "");

function printJson(run: Run, value: unknown): void {
  run.io.out(`${JSON.stringify(value, null, 2)}\n`);
}

function clientRecord(client: ClientMessage): Array<[string, string]> {
  return [
    ["client id", client.clientId],
    ["name", client.displayName],
    ["type", clientType(client.type)],
    ["redirect uris", client.redirectUris.join(" ")],
    ["scopes", client.scopes.join(" ")],
    ["default scopes", client.defaultScopes.join(" ")],
    ["grant types", client.grantTypes.join(" ")],
    ["response types", client.responseTypes.join(" ")],
    ["pkce", `${client.pkce?.required ? "required" : "optional"}${client.pkce?.allowPlain ? ", plain allowed" : ""}`],
    ["first party", String(client.firstParty)],
    ["secrets", String(client.secretCount)],
    ["managed by", managed(client.managedBy)],
    ["created", `${time(client.createTime)}${client.createdBy === "" ? "" : ` by ${client.createdBy}`}`],
    ["updated", time(client.updateTime)],
  ];
}

function userRow(user: User): string[] {
  return [user.username, user.subject, user.groups.join(","), user.disabled ? "yes" : "no", managed(user.managedBy)];
}
const USER_HEADERS = ["USERNAME", "SUBJECT", "GROUPS", "DISABLED", "MANAGED BY"];

function printUser(run: Run, user: User | undefined): void {
  if (run.json) return printJson(run, toJson(UserSchema, user!));
  run.io.out(renderTable(USER_HEADERS, [userRow(user!)]));
}

function printScope(run: Run, scope: Scope | undefined): void {
  if (run.json) return printJson(run, toJson(ScopeSchema, scope!));
  run.io.out(renderTable(["SCOPE", "DESCRIPTION", "GROUPS", "MANAGED BY"], [[scope!.scope, scope!.description, scope!.groups.join(","), managed(scope!.managedBy)]]));
}

async function readPassword(run: Run, values: Options, required: boolean): Promise<string> {
  if (values["password-stdin"] !== true) {
    if (required) throw new UsageError("give the password on stdin with --password-stdin (never as an argument)");
    return "";
  }
  const password = await run.io.readStdin();
  if (password === "") throw new UsageError("--password-stdin: stdin was empty");
  return password;
}

/** The client fields the flags set, and their update_mask paths. */
function clientFlags(values: Options): { client: MessageInitShape<typeof ClientSchema>; paths: string[] } {
  const client: Record<string, unknown> = {};
  const paths: string[] = [];
  const set = (path: string, field: string, value: unknown) => {
    if (value === undefined) return;
    client[field] = value;
    paths.push(path);
  };
  set("display_name", "displayName", values.name);
  set("redirect_uris", "redirectUris", values["redirect-uri"]);
  set("post_logout_redirect_uris", "postLogoutRedirectUris", values["post-logout-redirect-uri"]);
  set("scopes", "scopes", values.scope);
  set("default_scopes", "defaultScopes", values["default-scope"]);
  set("grant_types", "grantTypes", values["grant-type"]);
  set("response_types", "responseTypes", values["response-type"]);
  set("first_party", "firstParty", boolean(values["first-party"], "first-party"));
  if (values["pkce-optional"] === true || values["allow-plain"] === true) {
    client.pkce = { required: values["pkce-optional"] !== true, allowPlain: values["allow-plain"] === true };
    paths.push("pkce");
  }
  return { client: client as MessageInitShape<typeof ClientSchema>, paths };
}

async function runCommand(command: string, args: readonly string[], values: Options, run: Run): Promise<void> {
  const { client, io } = run;
  const userName = (i = 0) => `users/${arg(args, i, "a username")}`;
  switch (command) {
    case "clients list": {
      noMoreArgs(args, 0);
      const { items, nextPageToken, last } = await collect(values, (pageSize, pageToken) => client.listClients({ pageSize, pageToken }), (r) => r.clients);
      if (run.json) return printJson(run, toJson(ListClientsResponseSchema, { ...last, clients: items, nextPageToken }));
      io.out(renderTable(["CLIENT ID", "NAME", "TYPE", "SCOPES", "MANAGED BY"], items.map((c) => [c.clientId, c.displayName, clientType(c.type), c.scopes.join(" "), managed(c.managedBy)])));
      if (nextPageToken !== "") io.out(`next page: --page-token ${nextPageToken}\n`);
      return;
    }
    case "clients get": {
      noMoreArgs(args, 1);
      const response = await client.getClient({ name: `clients/${arg(args, 0, "a client id")}` });
      if (run.json) return printJson(run, toJson(ClientSchema, response.client!));
      io.out(renderRecord(clientRecord(response.client!)));
      return;
    }
    case "clients create": {
      noMoreArgs(args, 1);
      const type = values.type === "confidential" ? ClientType.CONFIDENTIAL : values.type === "public" ? ClientType.PUBLIC : undefined;
      if (type === undefined) throw new UsageError("--type must be confidential or public");
      const { client: fields } = clientFlags(values);
      const response = await client.createClient({ clientId: args[0] ?? "", client: { ...fields, type } });
      if (run.json) return printJson(run, toJson(CreateClientResponseSchema, response));
      io.out(renderRecord(clientRecord(response.client!)));
      if (response.clientSecret !== "") io.out(`\nclient secret (shown once, store it now): ${response.clientSecret}\n`);
      return;
    }
    case "clients update": {
      noMoreArgs(args, 1);
      const { client: fields, paths } = clientFlags(values);
      if (paths.length === 0) throw new UsageError("clients update: give at least one field to change");
      const response = await client.updateClient({ client: { ...fields, name: `clients/${arg(args, 0, "a client id")}` }, updateMask: { paths } });
      if (run.json) return printJson(run, toJson(ClientSchema, response.client!));
      io.out(renderRecord(clientRecord(response.client!)));
      return;
    }
    case "clients delete": {
      noMoreArgs(args, 1);
      await client.deleteClient({ name: `clients/${arg(args, 0, "a client id")}` });
      if (run.json) return printJson(run, {});
      io.out(`deleted clients/${args[0]}\n`);
      return;
    }
    case "clients rotate-secret": {
      noMoreArgs(args, 1);
      const response = await client.rotateClientSecret({ name: `clients/${arg(args, 0, "a client id")}`, keepPreviousSecret: values["keep-previous"] === true });
      if (run.json) return printJson(run, toJson(RotateClientSecretResponseSchema, response));
      io.out(`client secret (shown once, store it now): ${response.clientSecret}\n`);
      io.out(values["keep-previous"] === true ? "the previous secret keeps working until the next rotation\n" : "the previous secrets no longer work\n");
      return;
    }

    case "scopes list": {
      noMoreArgs(args, 0);
      const { items, nextPageToken, last } = await collect(values, (pageSize, pageToken) => client.listScopes({ pageSize, pageToken }), (r) => r.scopes);
      if (run.json) return printJson(run, toJson(ListScopesResponseSchema, { ...last, scopes: items, nextPageToken }));
      io.out(renderTable(["SCOPE", "DESCRIPTION", "GROUPS", "MANAGED BY"], items.map((s) => [s.scope, s.description, s.groups.join(","), managed(s.managedBy)])));
      if (nextPageToken !== "") io.out(`next page: --page-token ${nextPageToken}\n`);
      return;
    }
    case "scopes get":
      noMoreArgs(args, 1);
      return printScope(run, (await client.getScope({ name: `scopes/${arg(args, 0, "a scope")}` })).scope);
    case "scopes create":
      noMoreArgs(args, 1);
      return printScope(run, (await client.createScope({ scopeId: arg(args, 0, "a scope"), scope: { description: values.description ?? "" } })).scope);
    case "scopes update":
      noMoreArgs(args, 1);
      if (values.description === undefined) throw new UsageError("scopes update: give --description");
      return printScope(run, (await client.updateScope({ scope: { name: `scopes/${arg(args, 0, "a scope")}`, description: values.description }, updateMask: { paths: ["description"] } })).scope);
    case "scopes delete":
      noMoreArgs(args, 1);
      await client.deleteScope({ name: `scopes/${arg(args, 0, "a scope")}` });
      if (run.json) return printJson(run, {});
      io.out(`deleted scopes/${args[0]}\n`);
      return;

    case "users list": {
      noMoreArgs(args, 0);
      const { items, nextPageToken, last } = await collect(values, (pageSize, pageToken) => client.listUsers({ pageSize, pageToken }), (r) => r.users);
      if (run.json) return printJson(run, toJson(ListUsersResponseSchema, { ...last, users: items, nextPageToken }));
      io.out(renderTable(USER_HEADERS, items.map(userRow)));
      if (nextPageToken !== "") io.out(`next page: --page-token ${nextPageToken}\n`);
      return;
    }
    case "users get":
      noMoreArgs(args, 1);
      return printUser(run, (await client.getUser({ name: userName() })).user);
    case "users create": {
      noMoreArgs(args, 1);
      const username = arg(args, 0, "a username");
      const password = await readPassword(run, values, false);
      return printUser(run, (await client.createUser({ userId: username, user: { subject: values.subject ?? "", groups: values.group ?? [] }, password })).user);
    }
    case "users set-password": {
      noMoreArgs(args, 1);
      const name = userName();
      return printUser(run, (await client.setUserPassword({ name, password: await readPassword(run, values, true) })).user);
    }
    case "users disable":
      noMoreArgs(args, 1);
      return printUser(run, (await client.disableUser({ name: userName() })).user);
    case "users enable":
      noMoreArgs(args, 1);
      return printUser(run, (await client.enableUser({ name: userName() })).user);
    case "users delete":
      noMoreArgs(args, 1);
      await client.deleteUser({ name: userName() });
      if (run.json) return printJson(run, {});
      io.out(`deleted ${userName()}\n`);
      return;

    case "groups list": {
      noMoreArgs(args, 1);
      const { user } = await client.getUser({ name: userName() });
      if (run.json) return printJson(run, { groups: user!.groups });
      io.out(renderTable(["GROUP"], user!.groups.map((group) => [group])));
      return;
    }
    case "groups add":
    case "groups remove":
    case "groups set": {
      const name = userName();
      const named = args.slice(1);
      if (command !== "groups set" && named.length === 0) throw new UsageError(`${command}: name at least one group`);
      // Read, change, write with the mask: a concurrent change between the two is not lost silently (the server compares revisions).
      const { user } = await client.getUser({ name });
      const groups =
        command === "groups add" ? [...new Set([...user!.groups, ...named])] : command === "groups remove" ? user!.groups.filter((g) => !named.includes(g)) : [...new Set(named)];
      return printUser(run, (await client.updateUser({ user: { name, groups }, updateMask: { paths: ["groups"] } })).user);
    }

    case "grants list": {
      noMoreArgs(args, 1);
      const parent = userName();
      const { items, nextPageToken, last } = await collect(values, (pageSize, pageToken) => client.listUserGrants({ parent, pageSize, pageToken }), (r) => r.grants);
      if (run.json) return printJson(run, toJson(ListUserGrantsResponseSchema, { ...last, grants: items, nextPageToken }));
      io.out(renderTable(["GRANT", "CLIENT", "SCOPES", "AUTH TIME", "EXPIRES"], items.map((g) => [g.name.split("/").pop()!, g.clientId, g.scopes.join(" "), time(g.authTime), time(g.expireTime)])));
      return;
    }
    case "grants revoke":
      noMoreArgs(args, 2);
      await client.revokeUserGrant({ name: `${userName()}/grants/${arg(args, 1, "a grant id")}` });
      if (run.json) return printJson(run, {});
      io.out(`revoked ${userName()}/grants/${args[1]}\n`);
      return;
    case "consents list": {
      noMoreArgs(args, 1);
      const parent = userName();
      const { items, nextPageToken, last } = await collect(values, (pageSize, pageToken) => client.listUserConsents({ parent, pageSize, pageToken }), (r) => r.consents);
      if (run.json) return printJson(run, toJson(ListUserConsentsResponseSchema, { ...last, consents: items, nextPageToken }));
      io.out(renderTable(["CLIENT", "SCOPES"], items.map((c) => [c.clientId, c.scopes.join(" ")])));
      return;
    }
    case "consents revoke":
      noMoreArgs(args, 2);
      await client.revokeUserConsent({ name: `${userName()}/consents/${arg(args, 1, "a client id")}` });
      if (run.json) return printJson(run, {});
      io.out(`revoked ${userName()}/consents/${args[1]}\n`);
      return;
    case "sessions list": {
      noMoreArgs(args, 1);
      const parent = userName();
      const { items, nextPageToken, last } = await collect(values, (pageSize, pageToken) => client.listUserSessions({ parent, pageSize, pageToken }), (r) => r.sessions);
      if (run.json) return printJson(run, toJson(ListUserSessionsResponseSchema, { ...last, sessions: items, nextPageToken }));
      io.out(renderTable(["SESSION", "AUTH TIME", "EXPIRES"], items.map((s) => [s.name.split("/").pop()!, time(s.authTime), time(s.expireTime)])));
      return;
    }
    case "sessions end":
      noMoreArgs(args, 2);
      await client.endUserSession({ name: `${userName()}/sessions/${arg(args, 1, "a session id")}` });
      if (run.json) return printJson(run, {});
      io.out(`ended ${userName()}/sessions/${args[1]}\n`);
      return;

    case "audit list": {
      noMoreArgs(args, 0);
      const { items, nextPageToken, last } = await collect(
        values,
        (pageSize, pageToken) => client.listAuditEvents({ pageSize, pageToken, resource: values.resource ?? "" }),
        (r) => r.auditEvents,
      );
      if (run.json) return printJson(run, toJson(ListAuditEventsResponseSchema, { ...last, auditEvents: items, nextPageToken }));
      io.out(renderTable(["TIME", "ACTOR", "ACTION", "RESOURCE"], items.map((e: AuditEvent) => [time(e.time), e.actor, e.action, e.resource])));
      if (nextPageToken !== "") io.out(`next page: --page-token ${nextPageToken}\n`);
      return;
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}
