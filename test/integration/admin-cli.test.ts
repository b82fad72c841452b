import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_SECRETS, withAdminCredentials } from "../support/admin.js";
import { runAdminCli } from "../support/admin-cli.js";
import { startTestAuthz, type TestAuthz } from "../support/authz.js";
import { scaledBudget } from "../support/scaled-budget.js";

/** Each run starts a process under tsx (seconds each on a busy machine); a test makes up to eight. */
const CLI_TEST = { timeout: scaledBudget(30_000) };

/**
 * Issue 12: `gatehouse admin …` run as a child process against a real authz
 * service: human tables and --json, endpoint and credential from the
 * environment or flags, and the exit codes (0 done, 1 the API refused,
 * 2 usage error).
 */
describe("gatehouse admin (the command line)", () => {
  let t: TestAuthz;
  let env: Record<string, string>;
  beforeAll(async () => {
    t = await startTestAuthz({ patch: withAdminCredentials });
    env = { GATEHOUSE_ADMIN_URL: t.running.url, GATEHOUSE_ADMIN_CREDENTIAL: ADMIN_SECRETS.ops };
  });
  afterAll(() => t.close());

  it("creates a client (--json: the API's message, the secret once), lists it in a table, and the audit trail names the credential", CLI_TEST, async () => {
    const created = await runAdminCli(["clients", "create", "cli-app", "--name", "CLI App", "--type", "confidential", "--redirect-uri", "https://cli.test/cb", "--scope", "read", "--json"], env);
    expect(created).toMatchObject({ code: 0, stderr: "" });
    const json = JSON.parse(created.stdout) as { client: Record<string, unknown>; clientSecret: string };
    expect(json.client).toMatchObject({ name: "clients/cli-app", clientId: "cli-app", displayName: "CLI App", type: "CLIENT_TYPE_CONFIDENTIAL", managedBy: "MANAGED_BY_ADMIN", secretCount: 1 });
    expect(json.clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const listed = await runAdminCli(["clients", "list"], env);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^CLIENT ID\s+NAME\s+TYPE\s+SCOPES\s+MANAGED BY$/);
    expect(lines.find((line) => line.startsWith("cli-app "))).toMatch(/^cli-app\s+CLI App\s+confidential\s+read\s+admin$/);
    expect(lines.find((line) => line.startsWith("web "))).toMatch(/configuration$/);
    expect(listed.stdout).not.toContain(json.clientSecret);

    // Flags win over the environment: the second credential, named "ci".
    const audit = await runAdminCli(["audit", "list", "--resource", "clients/cli-app", "--json", "--credential", ADMIN_SECRETS.ci], { GATEHOUSE_ADMIN_URL: t.running.url, GATEHOUSE_ADMIN_CREDENTIAL: "wrong" });
    expect(audit.code).toBe(0);
    expect((JSON.parse(audit.stdout) as { auditEvents: Array<{ actor: string; action: string }> }).auditEvents).toEqual([
      expect.objectContaining({ actor: "ops", action: "CreateClient", resource: "clients/cli-app" }),
    ]);
  });

  it("users and groups: a password from stdin, groups added and removed", CLI_TEST, async () => {
    const created = await runAdminCli(["users", "create", "carol", "--group", "staff", "--password-stdin"], env, "a good long password\n");
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(created.stdout).toMatch(/^USERNAME\s+SUBJECT\s+GROUPS\s+DISABLED\s+MANAGED BY\ncarol\s+carol\s+staff\s+no\s+admin\n$/);
    const session = await t.sessions.login({ username: "carol", password: "a good long password", clientAddress: "192.0.2.7" }, t.asGateway);
    expect(session.subject).toBe("carol");
    expect((await runAdminCli(["groups", "add", "carol", "ops", "audit"], env)).code).toBe(0);
    expect((await runAdminCli(["groups", "remove", "carol", "staff"], env)).code).toBe(0);
    const groups = await runAdminCli(["groups", "list", "carol", "--json"], env);
    expect(JSON.parse(groups.stdout)).toEqual({ groups: ["ops", "audit"] });
  });

  it("exit 1 with the API's status and message, one line per bad field", CLI_TEST, async () => {
    const bad = await runAdminCli(["clients", "create", "bad-app", "--name", "Bad", "--type", "public", "--redirect-uri", "https://x.test/cb#f", "--scope", "nope"], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe("");
    expect(bad.stderr.split("\n")).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^gatehouse admin: InvalidArgument: /),
        "  client.redirect_uris[0]: must not include a fragment (RFC 6749 §3.1.2)",
        '  client.scopes[0]: unknown scope "nope": create it first (CreateScope) or declare it in the configuration',
      ]),
    );
    const managed = await runAdminCli(["clients", "delete", "web"], env);
    expect(managed).toMatchObject({ code: 1, stderr: "gatehouse admin: FailedPrecondition: clients/web is managed by configuration: it is declared in the configuration file, so change it there\n" });
    const wrong = await runAdminCli(["clients", "list"], { ...env, GATEHOUSE_ADMIN_CREDENTIAL: "not-it" });
    expect(wrong).toMatchObject({ code: 1, stdout: "", stderr: "gatehouse admin: Unauthenticated: unauthenticated\n" });
    const missing = await runAdminCli(["clients", "get", "nobody"], env);
    expect(missing).toMatchObject({ code: 1, stderr: "gatehouse admin: NotFound: clients/nobody does not exist\n" });
  });

  it("exit 2 for a usage error, before anything is sent", CLI_TEST, async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [["clients"], env, /name a resource and an action/],
      [["clients", "fly"], env, /unknown command "clients fly"/],
      [["clients", "list", "--bogus"], env, /Unknown option '--bogus'/],
      [["clients", "get", "web", "--description", "x"], env, /clients get does not take --description/],
      [["clients", "list"], { GATEHOUSE_ADMIN_URL: t.running.url }, /no admin credential/],
      [["users", "set-password", "carol"], env, /--password-stdin/],
      [["clients", "create", "x", "--type", "other"], env, /--type must be confidential or public/],
    ];
    for (const [args, environment, message] of cases) {
      const run = await runAdminCli(args, environment);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toContain("usage: gatehouse admin");
    }
    expect((await runAdminCli(["--help"], {})).code).toBe(0);
  });
});
