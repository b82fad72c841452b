import { GROUP_NAME_RULE } from "../../startup/group-name.js";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ClientType, ManagedBy } from "../../gen/gatehouse/v1/admin_service_pb.js";
import { ADMIN_SECRETS, adminClient, adminFailure, withAdminCredentials, type AdminClient } from "../support/admin.js";
import { basic, failureOf, issueTokens, obtainCode, pkcePair, SECRETS, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { pino } from "pino";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SERVICE_CREDENTIAL_HEADER } from "../../contract/metadata.js";

/**
 * Issue 12, Administration: AdminService against a real authz service on a
 * random port, on the memory store and on a real Redis; two replicas over
 * one Redis see each other's changes at once.
 */

const tenantSection = (name: string) => ({
  name,
  scopes: [{ name: "read", description: "Read" }],
  clients: [{ id: "yaml-client", name: "YAML", type: "public", redirectUris: ["https://t.test/cb"], scopes: ["read"] }],
  users: [],
});

const patch = (file: Record<string, unknown>) => {
  withAdminCredentials(file);
  (file.scopes as Array<Record<string, unknown>>).find((scope) => scope.name === "admin")!.groups = ["admins"];
  file.tenants = [tenantSection("acme")];
};

const CODE_CLIENT = (redirect: string) => ({
  displayName: "Created App",
  type: ClientType.CONFIDENTIAL,
  redirectUris: [redirect],
  scopes: ["read"],
});

/** Messages as JSON text (timestamps hold bigints). */
const json = (value: unknown) => JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

/** A code flow of a client created through the API, at the authz service (Authorize + Decide as the gateway, ExchangeCode as the client). */
async function codeFlow(t: TestAuthz, clientId: string, secret: string, redirectUri: string) {
  const pkce = pkcePair();
  const { code } = await obtainCode(t, { clientId, redirectUri, scope: "read", codeChallenge: pkce.challenge });
  return t.authz.exchangeCode({ code, redirectUri, codeVerifier: pkce.verifier }, basic(clientId, secret));
}

for (const backend of ["memory", "redis"] as const) {
  describe(`AdminService on the ${backend} store`, () => {
    let t: TestAuthz;
    let ops: AdminClient;
    let ci: AdminClient;
    beforeAll(async () => {
      t = await startTestAuthz({ patch, ...(backend === "redis" ? { redisUrl: inject("redisUrl") } : {}) });
      ops = adminClient(t.running.url, ADMIN_SECRETS.ops);
      ci = adminClient(t.running.url, ADMIN_SECRETS.ci);
    });
    afterAll(() => t.close());

    describe("authentication", () => {
      it("a missing, wrong or non-Bearer credential is Unauthenticated, with nothing else said", async () => {
        const wrong = [
          adminClient(t.running.url, undefined),
          adminClient(t.running.url, "not-the-credential"),
          adminClient(t.running.url, `${ADMIN_SECRETS.ops}x`),
          adminClient(t.running.url, SECRETS.service),
        ];
        for (const client of wrong) {
          const failure = await adminFailure(client.listClients({}));
          expect(failure).toEqual({ code: Code.Unauthenticated, message: "unauthenticated", violations: [] });
        }
        // Before the tenant, before validation: an unknown tenant or a bad request learns nothing either.
        expect((await adminFailure(adminClient(t.running.url, "x", "nope").createClient({}))).code).toBe(Code.Unauthenticated);
      });
      it("each of the named credentials works (rotation without a window), and the audit trail names which", async () => {
        const scope = `s-${randomBytes(4).toString("hex")}`;
        await ops.createScope({ scopeId: scope, scope: { description: "by ops" } });
        await ci.updateScope({ scope: { name: `scopes/${scope}`, description: "by ci" }, updateMask: { paths: ["description"] } });
        const { auditEvents } = await ops.listAuditEvents({ resource: `scopes/${scope}` });
        expect(auditEvents.map((e) => [e.actor, e.action])).toEqual([
          ["ci", "UpdateScope"],
          ["ops", "CreateScope"],
        ]);
        expect(auditEvents[0]!.before).toMatchObject({ description: "by ops" });
        expect(auditEvents[0]!.after).toMatchObject({ description: "by ci" });
      });
    });

    describe("clients", () => {
      it("CreateClient returns the secret once; Get and List never show it, and the created client completes the code flow", async () => {
        const { client, clientSecret } = await ops.createClient({ clientId: `app-${backend}`, client: CODE_CLIENT("https://app.test/cb") });
        expect(clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(client).toMatchObject({
          name: `clients/app-${backend}`,
          clientId: `app-${backend}`,
          managedBy: ManagedBy.ADMIN,
          secretCount: 1,
          grantTypes: ["authorization_code", "refresh_token"],
          responseTypes: ["code"],
          pkce: { required: true, allowPlain: false },
          createdBy: "ops",
        });
        const got = await ops.getClient({ name: `clients/app-${backend}` });
        expect(json(got)).not.toContain(clientSecret);
        const { token } = await codeFlow(t, `app-${backend}`, clientSecret, "https://app.test/cb");
        expect(token?.accessToken).toBeTruthy();
      });

      it("a client id left empty is generated", async () => {
        const { client } = await ops.createClient({ client: { ...CODE_CLIENT("https://gen.test/cb"), type: ClientType.PUBLIC } });
        expect(client!.clientId).toMatch(/^[A-Za-z0-9_-]{22}$/);
        expect(client!.secretCount).toBe(0);
      });

      it("AlreadyExists for a taken id, the configuration's ids included; NotFound for an unknown one", async () => {
        await ops.createClient({ clientId: "twice", client: CODE_CLIENT("https://twice.test/cb") });
        expect((await adminFailure(ops.createClient({ clientId: "twice", client: CODE_CLIENT("https://twice.test/cb") }))).code).toBe(Code.AlreadyExists);
        const yaml = await adminFailure(ops.createClient({ clientId: "web", client: CODE_CLIENT("https://twice.test/cb") }));
        expect(yaml).toMatchObject({ code: Code.AlreadyExists, message: expect.stringContaining("configuration") });
        expect((await adminFailure(ops.getClient({ name: "clients/nobody" }))).code).toBe(Code.NotFound);
        expect((await adminFailure(ops.deleteClient({ name: "clients/nobody" }))).code).toBe(Code.NotFound);
        expect(await adminFailure(ops.getClient({ name: "nobody" }))).toMatchObject({ code: Code.InvalidArgument, violations: [{ field: "name", description: "must be a resource name clients/{id}" }] });
      });

      it("a client declared in the configuration is shown, and is FailedPrecondition (managed by configuration) to change, rotate or delete", async () => {
        const { client } = await ops.getClient({ name: "clients/web" });
        expect(client).toMatchObject({ managedBy: ManagedBy.CONFIGURATION, secretCount: 1, displayName: "Web App" });
        const attempts = [
          ops.updateClient({ client: { name: "clients/web", displayName: "Hijacked" }, updateMask: { paths: ["display_name"] } }),
          ops.rotateClientSecret({ name: "clients/web" }),
          ops.deleteClient({ name: "clients/web" }),
        ];
        for (const attempt of attempts) {
          const failure = await adminFailure(attempt);
          expect(failure.code).toBe(Code.FailedPrecondition);
          expect(failure.message).toBe("clients/web is managed by configuration: it is declared in the configuration file, so change it there");
        }
        expect((await ops.getClient({ name: "clients/web" })).client!.displayName).toBe("Web App");
      });

      it("every bad field is named with its own message (one FieldViolation each)", async () => {
        const failure = await adminFailure(
          ops.createClient({
            clientId: "bad id!",
            client: {
              displayName: "",
              type: ClientType.PUBLIC,
              redirectUris: ["/relative", "https://x.test/cb#frag", "http://x.test/cb", "https://ok.test/cb", "https://ok.test/cb"],
              scopes: ["read", "no-such-scope", "bad scope"],
              defaultScopes: ["write"],
              grantTypes: ["authorization_code", "password", "client_credentials"],
              responseTypes: ["code", "id_token"],
              pkce: { required: false },
              refreshGraceSeconds: 301,
              introspectAnyToken: true,
            },
          }),
        );
        expect(failure.code).toBe(Code.InvalidArgument);
        expect(failure.violations).toEqual([
          { field: "client_id", description: "must be 1-128 of A-Z a-z 0-9 . _ ~ -" },
          { field: "client.display_name", description: "required: the name the consent page shows" },
          { field: "client.redirect_uris[4]", description: "duplicate of client.redirect_uris[3]" },
          { field: "client.redirect_uris[0]", description: "must be an absolute URI (RFC 6749 §3.1.2)" },
          { field: "client.redirect_uris[1]", description: "must not include a fragment (RFC 6749 §3.1.2)" },
          { field: "client.redirect_uris[2]", description: "must use https (requireHttps is on); http is allowed only for loopback hosts (RFC 8252 §7.3)" },
          { field: "client.scopes[1]", description: 'unknown scope "no-such-scope": create it first (CreateScope) or declare it in the configuration' },
          { field: "client.scopes[2]", description: "must be a scope-token (RFC 6749 §3.3): 1-128 printable ASCII characters, no space, quote or backslash" },
          { field: "client.default_scopes[0]", description: '"write" is not in this client\'s scopes' },
          { field: "client.grant_types[1]", description: 'unknown grant type "password"; known: authorization_code, refresh_token, client_credentials' },
          { field: "client.response_types[1]", description: 'unknown response type "id_token"; known: code, token' },
          { field: "client.grant_types", description: "client_credentials needs a confidential client (RFC 6749 §4.4)" },
          { field: "client.refresh_grace_seconds", description: "must be 0..300" },
          { field: "client.pkce.required", description: "public clients must use PKCE (RFC 9700 §2.1.1)" },
          { field: "client.introspect_any_token", description: "a public client cannot authenticate to introspect" },
        ]);
      });

      it("AIP-134: UpdateClient changes the masked fields only; an unknown path or no mask is InvalidArgument; the result is validated whole", async () => {
        const id = `upd-${backend}`;
        await ops.createClient({ clientId: id, client: { ...CODE_CLIENT("https://upd.test/cb"), firstParty: false } });
        const { client } = await ops.updateClient({
          client: { name: `clients/${id}`, displayName: "Renamed", redirectUris: ["https://ignored.test/cb"], firstParty: true },
          updateMask: { paths: ["display_name", "first_party"] },
        });
        expect(client).toMatchObject({ displayName: "Renamed", firstParty: true, redirectUris: ["https://upd.test/cb"] });
        expect(await adminFailure(ops.updateClient({ client: { name: `clients/${id}` }, updateMask: { paths: ["display_name", "secret_hashes"] } }))).toMatchObject({
          code: Code.InvalidArgument,
          violations: [{ field: "update_mask.paths[1]", description: expect.stringContaining('"secret_hashes" cannot be updated') }],
        });
        expect((await adminFailure(ops.updateClient({ client: { name: `clients/${id}` } }))).violations).toEqual([
          { field: "update_mask", description: expect.stringContaining("required") },
        ]);
        expect((await adminFailure(ops.updateClient({ client: { name: `clients/${id}`, redirectUris: [] }, updateMask: { paths: ["redirect_uris"] } }))).violations).toEqual([
          { field: "client.redirect_uris", description: "a client that uses the authorization endpoint needs at least one redirect URI" },
        ]);
        expect((await adminFailure(ops.updateClient({ client: { name: "clients/nobody" }, updateMask: { paths: ["first_party"] } }))).code).toBe(Code.NotFound);
      });

      it("a rotated secret is shown once and the old one stops working at once; keep_previous_secret overlaps the two until the next rotation", async () => {
        const id = `rot-${backend}`;
        const redirect = "https://rot.test/cb";
        const { clientSecret: first } = await ops.createClient({ clientId: id, client: CODE_CLIENT(redirect) });
        const { clientSecret: second, client } = await ops.rotateClientSecret({ name: `clients/${id}` });
        expect(second).not.toBe(first);
        expect(client!.secretCount).toBe(1);
        expect((await failureOf(codeFlow(t, id, first, redirect))).oauth?.error).toBe("invalid_client");
        await codeFlow(t, id, second, redirect);

        const { clientSecret: third, client: overlapping } = await ops.rotateClientSecret({ name: `clients/${id}`, keepPreviousSecret: true });
        expect(overlapping!.secretCount).toBe(2);
        await codeFlow(t, id, second, redirect);
        await codeFlow(t, id, third, redirect);
        const { clientSecret: fourth } = await ops.rotateClientSecret({ name: `clients/${id}` });
        expect((await failureOf(codeFlow(t, id, third, redirect))).oauth?.error).toBe("invalid_client");
        await codeFlow(t, id, fourth, redirect);

        const events = (await ops.listAuditEvents({ resource: `clients/${id}` })).auditEvents;
        expect(events.map((e) => e.action)).toEqual(["RotateClientSecret", "RotateClientSecret", "RotateClientSecret", "CreateClient"]);
        const trail = json(events);
        for (const secret of [first, second, third, fourth]) expect(trail).not.toContain(secret);
        expect(trail).not.toMatch(/secretHashes|passwordHash/);
        expect(events[1]!.before).toMatchObject({ secretCount: 1 });
        expect(events[1]!.after).toMatchObject({ secretCount: 2 });
      });

      it("a deleted client is refused at once", async () => {
        const id = `del-${backend}`;
        const { clientSecret } = await ops.createClient({ clientId: id, client: CODE_CLIENT("https://del.test/cb") });
        await ops.deleteClient({ name: `clients/${id}` });
        expect((await adminFailure(ops.getClient({ name: `clients/${id}` }))).code).toBe(Code.NotFound);
        expect((await failureOf(codeFlow(t, id, clientSecret, "https://del.test/cb"))).oauth?.error).toBe("invalid_request");
        const [event] = (await ops.listAuditEvents({ resource: `clients/${id}`, pageSize: 1 })).auditEvents;
        expect(event).toMatchObject({ action: "DeleteClient", actor: "ops", before: expect.objectContaining({ clientId: id }) });
        expect(event!.after).toBeUndefined();
      });
    });

    describe("scopes", () => {
      it("a scope the configuration limits to groups shows them; groups are output only (only the configuration limits a scope)", async () => {
        expect((await ops.getScope({ name: "scopes/admin" })).scope).toMatchObject({ scope: "admin", groups: ["admins"], managedBy: ManagedBy.CONFIGURATION });
        expect((await adminFailure(ops.createScope({ scopeId: `g-${backend}`, scope: { description: "d", groups: ["admins"] } }))).violations).toEqual([
          { field: "scope.groups", description: "output only: a scope limited to groups is declared in the configuration (scopes[].groups)" },
        ]);
        const { scope } = await ops.createScope({ scopeId: `open-${backend}`, scope: { description: "Open to all" } });
        expect(scope).toMatchObject({ groups: [], managedBy: ManagedBy.ADMIN });
        expect((await adminFailure(ops.updateScope({ scope: { name: "scopes/read", description: "x" }, updateMask: { paths: ["description"] } }))).code).toBe(Code.FailedPrecondition);
        expect((await adminFailure(ops.createScope({ scopeId: "read", scope: { description: "again" } }))).code).toBe(Code.AlreadyExists);
        // A scope a stored client names cannot be deleted; once the client is gone it can.
        await ops.createClient({ clientId: `uses-open-${backend}`, client: { ...CODE_CLIENT("https://o.test/cb"), scopes: [`open-${backend}`] } });
        expect(await adminFailure(ops.deleteScope({ name: `scopes/open-${backend}` }))).toMatchObject({ code: Code.FailedPrecondition, message: `scopes/open-${backend} is in use by clients/uses-open-${backend}; remove it from that client first` });
        await ops.deleteClient({ name: `clients/uses-open-${backend}` });
        await ops.deleteScope({ name: `scopes/open-${backend}` });
        expect((await adminFailure(ops.getScope({ name: `scopes/open-${backend}` }))).code).toBe(Code.NotFound);
      });
    });

    describe("pagination (AIP-158)", () => {
      it("pages through the configuration's and the store's scopes together, in order, each once", async () => {
        const prefix = `p${randomBytes(3).toString("hex")}`;
        for (let i = 0; i < 7; i++) await ops.createScope({ scopeId: `${prefix}-${i}`, scope: { description: `scope ${i}` } });
        const names: string[] = [];
        const managed = new Map<string, ManagedBy>();
        let pageToken = "";
        let pages = 0;
        do {
          const page = await ops.listScopes({ pageSize: 3, pageToken });
          expect(page.scopes.length).toBeLessThanOrEqual(3);
          for (const scope of page.scopes) managed.set(scope.scope, scope.managedBy);
          names.push(...page.scopes.map((s) => s.scope));
          pageToken = page.nextPageToken;
          pages++;
        } while (pageToken !== "");
        expect(names).toEqual([...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
        expect(new Set(names).size).toBe(names.length);
        for (let i = 0; i < 7; i++) expect(managed.get(`${prefix}-${i}`)).toBe(ManagedBy.ADMIN);
        for (const name of ["read", "write", "admin"]) expect(managed.get(name)).toBe(ManagedBy.CONFIGURATION);
        expect(pages).toBe(Math.ceil(names.length / 3));
      });

      it("a page token of another list, a changed filter, garbage, or a negative page size is InvalidArgument naming the field", async () => {
        const { nextPageToken } = await ops.listClients({ pageSize: 1 });
        expect(nextPageToken).not.toBe("");
        expect((await adminFailure(ops.listScopes({ pageToken: nextPageToken }))).violations).toEqual([{ field: "page_token", description: expect.stringContaining("another list") }]);
        expect((await adminFailure(ops.listClients({ pageToken: "garbage!" }))).violations).toEqual([{ field: "page_token", description: expect.stringContaining("not a page token") }]);
        const audit = await ops.listAuditEvents({ pageSize: 1, resource: "clients" });
        expect((await adminFailure(ops.listAuditEvents({ pageSize: 1, pageToken: audit.nextPageToken, resource: "scopes" }))).violations).toEqual([
          { field: "page_token", description: expect.stringContaining("the filter changed") },
        ]);
        expect((await adminFailure(ops.listClients({ pageSize: -1 }))).violations).toEqual([{ field: "page_size", description: "must not be negative" }]);
        // Above the maximum is coerced (AIP-158), not refused.
        expect((await ops.listClients({ pageSize: 1_000_000 })).nextPageToken).toBe("");
      });
    });

    describe("users", () => {
      it("CreateUser, SetUserPassword and UpdateUser (groups) on a stored user; the user logs in with the password; nothing shows the hash", async () => {
        const username = `bob-${backend}`;
        const { user } = await ops.createUser({ userId: username, user: { groups: ["staff"] }, password: "first password 1" });
        expect(user).toMatchObject({ name: `users/${username}`, subject: username, groups: ["staff"], disabled: false, managedBy: ManagedBy.ADMIN });
        const login = await t.sessions.login({ username, password: "first password 1", clientAddress: "192.0.2.1" }, t.asGateway);
        expect(login.subject).toBe(username);
        await ops.setUserPassword({ name: `users/${username}`, password: "second password 2" });
        expect((await failureOf(t.sessions.login({ username, password: "first password 1", clientAddress: "192.0.2.1" }, t.asGateway))).code).toBe(Code.Unauthenticated);
        await t.sessions.login({ username, password: "second password 2", clientAddress: "192.0.2.1" }, t.asGateway);
        const { user: updated } = await ops.updateUser({ user: { name: `users/${username}`, groups: ["staff", "ops"] }, updateMask: { paths: ["groups"] } });
        expect(updated!.groups).toEqual(["staff", "ops"]);
        const trail = json((await ops.listAuditEvents({ resource: `users/${username}` })).auditEvents);
        expect(trail).not.toMatch(/scrypt|password \d/);
      });

      it("DeleteUser ends the user's sessions and refuses their login; the name is free again, and a user created with it starts enabled", async () => {
        const username = `carol-${backend}`;
        await ops.createUser({ userId: username, password: "carol's password 1" });
        const login = () => t.sessions.login({ username, password: "carol's password 1", clientAddress: "192.0.2.3" }, t.asGateway);
        const session = await login();
        await ops.deleteUser({ name: `users/${username}` });
        expect((await t.sessions.getSession({ sessionToken: session.sessionToken }, t.asGateway)).active).toBe(false);
        expect((await failureOf(login())).code).toBe(Code.Unauthenticated);
        expect((await adminFailure(ops.getUser({ name: `users/${username}` }))).code).toBe(Code.NotFound);
        expect((await adminFailure(ops.deleteUser({ name: `users/${username}` }))).code).toBe(Code.NotFound);
        const { user } = await ops.createUser({ userId: username, password: "carol's password 1" });
        expect(user?.disabled).toBe(false);
        expect((await login()).subject).toBe(username);
        const actions = (await ops.listAuditEvents({ resource: `users/${username}` })).auditEvents.map((e) => e.action);
        expect(actions).toEqual(expect.arrayContaining(["CreateUser", "DeleteUser"]));
      });

      it("bad usernames, subjects, groups and passwords are named; the configuration's users are read-only", async () => {
        const failure = await adminFailure(ops.createUser({ userId: "has space", user: { subject: "s p", groups: ["Staff", "ok", "ok"] }, password: "short" }));
        expect(failure.violations).toEqual([
          { field: "user_id", description: "must be 1-256 characters without spaces, slashes or control characters" },
          { field: "user.subject", description: "must be 1-256 printable ASCII characters without spaces" },
          { field: "user.groups[2]", description: "duplicate of user.groups[1]" },
          { field: "user.groups[0]", description: GROUP_NAME_RULE },
          { field: "password", description: "must be at least 12 characters" },
        ]);
        expect((await adminFailure(ops.createUser({ userId: "alice" }))).code).toBe(Code.AlreadyExists);
        expect((await adminFailure(ops.createUser({ userId: "alias-of-alice", user: { subject: "user-alice" } }))).code).toBe(Code.AlreadyExists);
        expect((await adminFailure(ops.updateUser({ user: { name: "users/alice", groups: [] }, updateMask: { paths: ["groups"] } }))).code).toBe(Code.FailedPrecondition);
        expect((await adminFailure(ops.setUserPassword({ name: "users/alice", password: "a long new password" }))).code).toBe(Code.FailedPrecondition);
        expect((await adminFailure(ops.deleteUser({ name: "users/alice" }))).code).toBe(Code.FailedPrecondition);
        expect((await ops.getUser({ name: "users/alice" })).user).toMatchObject({ managedBy: ManagedBy.CONFIGURATION, subject: "user-alice" });
      });
    });

    describe("issue 12: a user's sessions and grants, and blocking, through the rights core", () => {
      it("sessions and grants are listed, one ended or revoked; DisableUser ends the rest, refuses login and refresh; EnableUser restores login, not grants; each audited", async () => {
        const login = () => t.sessions.login({ username: "alice", password: "correct horse", clientAddress: "192.0.2.7" }, t.asGateway);
        const [first, second] = [await login(), await login()];
        const { sessions } = await ops.listUserSessions({ parent: "users/alice" });
        expect(sessions.map((x) => x.name)).toEqual(expect.arrayContaining([`users/alice/sessions/${first.sid}`, `users/alice/sessions/${second.sid}`]));
        await ops.endUserSession({ name: `users/alice/sessions/${first.sid}` });
        expect((await t.sessions.getSession({ sessionToken: first.sessionToken }, t.asGateway)).active).toBe(false);
        expect((await t.sessions.getSession({ sessionToken: second.sessionToken }, t.asGateway)).active).toBe(true);
        expect((await adminFailure(ops.endUserSession({ name: `users/alice/sessions/${first.sid}` }))).code).toBe(Code.NotFound);

        const [kept, revoked] = [await issueTokens(t, { scope: "read" }), await issueTokens(t, { scope: "read" })];
        const grantOf = (refreshToken: string) => refreshToken.split(".")[0]!;
        const { grants } = await ops.listUserGrants({ parent: "users/alice" });
        expect(grants.map((g) => g.name)).toEqual(expect.arrayContaining([grantOf(kept.refreshToken), grantOf(revoked.refreshToken)].map((id) => `users/alice/grants/${id}`)));
        expect(json(grants)).not.toContain(kept.refreshToken);
        await ops.revokeUserGrant({ name: `users/alice/grants/${grantOf(revoked.refreshToken)}` });
        expect((await failureOf(t.authz.refresh({ refreshToken: revoked.refreshToken }, basic("web", SECRETS.web)))).oauth?.error).toBe("invalid_grant");
        expect((await t.authz.refresh({ refreshToken: kept.refreshToken }, basic("web", SECRETS.web))).token).toBeDefined();

        const disabled = await ops.disableUser({ name: "users/alice" });
        expect(disabled.user?.disabled).toBe(true);
        expect((await t.sessions.getSession({ sessionToken: second.sessionToken }, t.asGateway)).active).toBe(false);
        expect((await ops.listUserSessions({ parent: "users/alice" })).sessions).toEqual([]);
        expect((await ops.listUserGrants({ parent: "users/alice" })).grants).toEqual([]);
        expect((await failureOf(login())).oauth?.error).toBe("account_disabled");
        expect((await ops.getUser({ name: "users/alice" })).user?.disabled).toBe(true);

        const enabled = await ops.enableUser({ name: "users/alice" });
        expect(enabled.user?.disabled).toBe(false);
        expect((await login()).sid).not.toBe("");
        const actions = (await ops.listAuditEvents({ resource: "users/alice" })).auditEvents.map((e) => e.action);
        expect(actions).toEqual(expect.arrayContaining(["DisableUser", "EnableUser"]));
      });
    });

    describe("a user's remembered consents", () => {
      it("are listed by client and revoked one by one: the next request asks again; every revocation is audited", async () => {
        const decide = async (clientId: string, redirectUri: string, scope: string) => {
          const pending = await t.authz.authorize({ responseType: "code", clientId, redirectUri, scope, state: "s", codeChallenge: pkcePair().challenge, codeChallengeMethod: "S256" }, t.asGateway);
          await t.authz.decide({ requestId: pending.requestId, subject: "user-alice", authTime: 1_700_000_000n, approved: true, rememberConsent: true }, t.asGateway);
        };
        await decide("web", "https://web.test/callback", "read write");
        await decide("spa", "https://spa.test/callback", "read");
        const { consents } = await ops.listUserConsents({ parent: "users/alice" });
        expect(consents.map((c) => [c.name, c.clientId, c.scopes])).toEqual([
          ["users/alice/consents/spa", "spa", ["read"]],
          ["users/alice/consents/web", "web", ["read", "write"]],
        ]);
        const firstPage = await ops.listUserConsents({ parent: "users/alice", pageSize: 1 });
        expect(firstPage.consents.map((c) => c.clientId)).toEqual(["spa"]);
        expect((await ops.listUserConsents({ parent: "users/alice", pageSize: 1, pageToken: firstPage.nextPageToken })).consents.map((c) => c.clientId)).toEqual(["web"]);

        const askWeb = () =>
          t.authz.authorize(
            { responseType: "code", clientId: "web", redirectUri: "https://web.test/callback", scope: "read", state: "s", codeChallenge: pkcePair().challenge, codeChallengeMethod: "S256", subject: "user-alice", authTime: BigInt(Math.floor(Date.now() / 1000)) },
            t.asGateway,
          );
        expect((await askWeb()).consentRemembered).toBe(true);
        await ops.revokeUserConsent({ name: "users/alice/consents/web" });
        expect((await ops.listUserConsents({ parent: "users/alice" })).consents.map((c) => c.clientId)).toEqual(["spa"]);
        expect((await askWeb()).consentRemembered).toBe(false);
        expect((await adminFailure(ops.revokeUserConsent({ name: "users/alice/consents/web" }))).code).toBe(Code.NotFound);
        expect((await adminFailure(ops.revokeUserConsent({ name: "users/alice/grants/web" }))).violations[0]!.field).toBe("name");
        expect((await adminFailure(ops.listUserConsents({ parent: "users/nobody" }))).code).toBe(Code.NotFound);
        const [event] = (await ops.listAuditEvents({ resource: "users/alice/consents/web" })).auditEvents;
        expect(event).toMatchObject({ actor: "ops", action: "RevokeUserConsent", before: { clientId: "web", scopes: ["read", "write"] } });
      });
    });

    describe("tenants (the gatehouse-tenant header)", () => {
      it("a tenant's entries are its own; an unknown tenant is NotFound", async () => {
        const acme = adminClient(t.running.url, ADMIN_SECRETS.ops, "acme");
        await acme.createClient({ clientId: "acme-only", client: CODE_CLIENT("https://acme.test/cb") });
        expect((await adminFailure(ops.getClient({ name: "clients/acme-only" }))).code).toBe(Code.NotFound);
        expect((await acme.getClient({ name: "clients/yaml-client" })).client!.managedBy).toBe(ManagedBy.CONFIGURATION);
        expect((await adminFailure(acme.getClient({ name: "clients/web" }))).code).toBe(Code.NotFound);
        // The tenant's scopes: "write" is the default tenant's only.
        expect((await adminFailure(acme.createClient({ clientId: "acme-2", client: { ...CODE_CLIENT("https://acme.test/cb"), scopes: ["write"] } }))).violations[0]!.field).toBe("client.scopes[0]");
        expect((await acme.listAuditEvents({})).auditEvents.map((e) => e.resource)).toEqual(["clients/acme-only"]);
        expect((await adminFailure(adminClient(t.running.url, ADMIN_SECRETS.ops, "nope").listClients({}))).code).toBe(Code.NotFound);
      });
    });
  });
}

describe("AdminService is off unless a credential is configured", () => {
  let t: TestAuthz;
  beforeAll(async () => {
    t = await startTestAuthz();
  });
  afterAll(() => t.close());

  it("every call is Unauthenticated, whatever it presents", async () => {
    for (const credential of [undefined, ADMIN_SECRETS.ops, SECRETS.service, ""]) {
      expect(await adminFailure(adminClient(t.running.url, credential).listClients({}))).toEqual({ code: Code.Unauthenticated, message: "unauthenticated", violations: [] });
    }
  });
});

describe("two authz replicas over one Redis", () => {
  let a: TestAuthz;
  let b: TestAuthz;
  beforeAll(async () => {
    const keyPrefix = `admin-replicas-${randomBytes(4).toString("hex")}:`;
    [a, b] = await Promise.all([startTestAuthz({ patch, redisUrl: inject("redisUrl"), keyPrefix }), startTestAuthz({ patch, redisUrl: inject("redisUrl"), keyPrefix })]);
  });
  afterAll(() => Promise.all([a.close(), b.close()]));

  it("a client created at one is served by the other from the next request on; a deletion likewise", async () => {
    const atA = adminClient(a.running.url, ADMIN_SECRETS.ops);
    const { clientSecret } = await atA.createClient({ clientId: "shared", client: CODE_CLIENT("https://shared.test/cb") });
    expect((await adminClient(b.running.url, ADMIN_SECRETS.ci).getClient({ name: "clients/shared" })).client!.createdBy).toBe("ops");
    const { token } = await codeFlow(b, "shared", clientSecret, "https://shared.test/cb");
    expect(token?.accessToken).toBeTruthy();
    await atA.deleteClient({ name: "clients/shared" });
    expect((await failureOf(codeFlow(b, "shared", clientSecret, "https://shared.test/cb"))).oauth?.error).toBe("invalid_request");
  });
});

describe("the gateway's service credential as a list of named credentials (rotation without a window)", () => {
  let t: TestAuthz;
  const NEXT = "gateway-service-credential-next-0123456789abcdef";
  beforeAll(async () => {
    t = await startTestAuthz({
      patch: (file) => {
        (file.authz as Record<string, unknown>).serviceCredential = [
          { name: "gateway", secret: { env: "TEST_SERVICE_CREDENTIAL" } },
          { name: "gateway-next", secret: { file: writeSecretFile(NEXT) } },
        ];
      },
    });
  });
  afterAll(() => t.close());

  it("either credential may call the gateway-only RPCs; any other is Unauthenticated", async () => {
    for (const credential of [SECRETS.service, NEXT]) {
      const session = await t.sessions.login({ username: "alice", password: "correct horse", clientAddress: "192.0.2.9" }, { headers: { [SERVICE_CREDENTIAL_HEADER]: credential } });
      expect(session.subject).toBe("user-alice");
    }
    const failure = await failureOf(t.sessions.login({ username: "alice", password: "correct horse" }, { headers: { [SERVICE_CREDENTIAL_HEADER]: `${NEXT}x` } }));
    expect(failure.code).toBe(Code.Unauthenticated);
  });
});

/** A mounted-secret file, as Kubernetes provides one. */
function writeSecretFile(value: string): string {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-secret-"));
  const path = join(dir, "credential");
  writeFileSync(path, `${value}\n`);
  return path;
}

describe("audit events are logged as JSON by the authz service's logger", () => {
  let t: TestAuthz;
  const lines: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString("utf8").split("\n")) if (line.trim() !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    t = await startTestAuthz({ patch, log: pino({ level: "info" }, stream) });
  });
  afterAll(() => t.close());

  it("one line per change: who, what, before and after, when; never the secret or its digest", async () => {
    const ops = adminClient(t.running.url, ADMIN_SECRETS.ops);
    const { clientSecret } = await ops.createClient({ clientId: "logged", client: CODE_CLIENT("https://logged.test/cb") });
    await ops.rotateClientSecret({ name: "clients/logged" });
    const audit = lines.filter((line) => line.audit !== undefined).map((line) => line.audit as Record<string, unknown>);
    expect(audit).toEqual([
      expect.objectContaining({ actor: "ops", action: "CreateClient", resource: "clients/logged", tenant: "default", time: expect.any(Number), after: expect.objectContaining({ clientId: "logged", secretCount: 1 }) }),
      expect.objectContaining({ actor: "ops", action: "RotateClientSecret", resource: "clients/logged", before: expect.objectContaining({ secretCount: 1 }) }),
    ]);
    expect(audit[0]!.before).toBeUndefined();
    const text = JSON.stringify(lines);
    expect(text).not.toContain(clientSecret);
    expect(text).not.toMatch(/secretHashes/);
  });
});
