import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ADMIN_SECRETS, adminClient, adminFailure, withAdminCredentials, type AdminClient } from "../support/admin.js";
import { basic, failureOf, obtainCode, pkcePair, SECRETS, startTestAuthz, WEB_REDIRECT, type TestAuthz } from "../support/authz.js";

/**
 * Issue 12: what a user holds, through AdminService, on Redis: their login
 * sessions and grants are listed, one ended or revoked at a time; disabling
 * blocks them (sessions end, grants are revoked, logins refused) and enabling
 * restores logins, not grants. Each change is an audit event. Here for users
 * created through the API (the store's registry); admin-api.test.ts does the
 * same for a user of the configuration, and user-rights.test.ts the core's side.
 */
describe("a user's sessions and grants through AdminService", () => {
  let t: TestAuthz;
  let ops: AdminClient;
  beforeAll(async () => {
    t = await startTestAuthz({ patch: withAdminCredentials, redisUrl: inject("redisUrl") });
    ops = adminClient(t.running.url, ADMIN_SECRETS.ops);
  });
  afterAll(() => t.close());

  const login = (username: string, password: string) => t.sessions.login({ username, password, clientAddress: "192.0.2.20" }, t.asGateway);
  const tokensFor = async (subject: string) => {
    const pkce = pkcePair();
    const { code } = await obtainCode(t, { clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: pkce.challenge, subject });
    return (await t.authz.exchangeCode({ code, redirectUri: WEB_REDIRECT, codeVerifier: pkce.verifier }, basic("web", SECRETS.web))).token!;
  };
  const refresh = (refreshToken: string) => t.authz.refresh({ refreshToken }, basic("web", SECRETS.web));

  it("lists sessions and grants; ends one session and revokes one grant; each is audited", async () => {
    await ops.createUser({ userId: "dave", password: "dave's long password" });
    const [first, second] = [await login("dave", "dave's long password"), await login("dave", "dave's long password")];
    const [tokensA, tokensB] = [await tokensFor("dave"), await tokensFor("dave")];

    const { sessions } = await ops.listUserSessions({ parent: "users/dave" });
    expect(sessions.map((s) => s.name).sort()).toEqual([`users/dave/sessions/${first.sid}`, `users/dave/sessions/${second.sid}`].sort());
    const { grants } = await ops.listUserGrants({ parent: "users/dave" });
    expect(grants).toHaveLength(2);
    expect(grants.every((g) => g.clientId === "web" && g.scopes.join(" ") === "read")).toBe(true);
    const page = await ops.listUserGrants({ parent: "users/dave", pageSize: 1 });
    expect(page.grants).toHaveLength(1);
    expect((await ops.listUserGrants({ parent: "users/dave", pageSize: 1, pageToken: page.nextPageToken })).grants[0]!.name).not.toBe(page.grants[0]!.name);

    await ops.endUserSession({ name: `users/dave/sessions/${first.sid}` });
    expect((await t.sessions.getSession({ sessionToken: first.sessionToken }, t.asGateway)).active).toBe(false);
    expect((await t.sessions.getSession({ sessionToken: second.sessionToken }, t.asGateway)).active).toBe(true);
    expect((await adminFailure(ops.endUserSession({ name: `users/dave/sessions/${first.sid}` }))).code).toBe(Code.NotFound);

    // A refresh token names its grant (grantId.secret).
    const grantA = `users/dave/grants/${tokensA.refreshToken.split(".")[0]}`;
    expect(grants.map((g) => g.name)).toContain(grantA);
    await ops.revokeUserGrant({ name: grantA });
    expect((await failureOf(refresh(tokensA.refreshToken))).oauth?.error).toBe("invalid_grant");
    await refresh(tokensB.refreshToken);
    expect((await adminFailure(ops.revokeUserGrant({ name: grantA }))).code).toBe(Code.NotFound);
    // Another user's grant is not found under dave.
    const alices = await tokensFor("user-alice");
    expect((await adminFailure(ops.revokeUserGrant({ name: `users/dave/grants/${alices.refreshToken.split(".")[0]}` }))).code).toBe(Code.NotFound);

    const actions = (await ops.listAuditEvents({ resource: "users/dave" })).auditEvents.map((e) => `${e.actor} ${e.action} ${e.resource}`);
    expect(actions).toEqual([`ops RevokeUserGrant ${grantA}`, `ops EndUserSession users/dave/sessions/${first.sid}`, "ops CreateUser users/dave"]);
  });

  it("DisableUser blocks (sessions end, grants revoked, login refused); EnableUser restores logins, not grants", async () => {
    await ops.createUser({ userId: "erin", password: "erin's long password" });
    const session = await login("erin", "erin's long password");
    const tokens = await tokensFor("erin");

    const { user } = await ops.disableUser({ name: "users/erin" });
    expect(user!.disabled).toBe(true);
    expect((await ops.getUser({ name: "users/erin" })).user!.disabled).toBe(true);
    expect((await t.sessions.getSession({ sessionToken: session.sessionToken }, t.asGateway)).active).toBe(false);
    expect((await failureOf(refresh(tokens.refreshToken))).oauth?.error).toBe("invalid_grant");
    expect((await failureOf(login("erin", "erin's long password"))).oauth?.error).toBe("account_disabled");
    expect((await ops.listUserSessions({ parent: "users/erin" })).sessions).toEqual([]);
    expect((await ops.listUserGrants({ parent: "users/erin" })).grants).toEqual([]);

    expect((await ops.enableUser({ name: "users/erin" })).user!.disabled).toBe(false);
    await login("erin", "erin's long password");
    expect((await failureOf(refresh(tokens.refreshToken))).oauth?.error).toBe("invalid_grant");

    const [enabled, disabled] = (await ops.listAuditEvents({ resource: "users/erin", pageSize: 2 })).auditEvents;
    expect(enabled).toMatchObject({ action: "EnableUser", before: { disabled: true }, after: { disabled: false } });
    expect(disabled).toMatchObject({ action: "DisableUser", before: { disabled: false }, after: { disabled: true } });
  });
});
