import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { freePort } from "../support/redis-server.js";
import { runTs } from "../support/process.js";
import { scaledBudget } from "../support/scaled-budget.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-config-"));

/**
 * Each test's budget: one start of the authz service under tsx, to its first
 * error or to serving (1 to 2 s on a quiet machine, ten times that at a load
 * average of 15: starting processes suffers most from a busy machine); 20 s
 * quiet, scaled by TEST_TIME_SCALE.
 */
const PROCESS_TEST_BUDGET_MS = scaledBudget(20_000);

describe("the authz service process", { timeout: PROCESS_TEST_BUDGET_MS }, () => {
  it("a wrong configuration file stops the start, listing every problem at its path", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      [
        "issuer: http://auth.example.com",
        "lifetimes: { code: 3600, accessToken: -1 }",
        "scopes: [{ name: read, description: Read }]",
        "clients:",
        "  - id: app",
        "    name: App",
        "    type: public",
        "    redirectUris: [http://app.example.com/cb, 'relative/path']",
        "    scopes: [read, missing]",
        "    colour: blue",
      ].join("\n"),
    );
    const run = runTs("services/authz/main.ts", { env: { GATEHOUSE_CONFIG: file } });
    const { code } = await run.exited;
    expect(code).toBe(1);
    const output = run.output();
    for (const problem of [
      "lifetimes.code:",
      "lifetimes.accessToken:",
      "clients[0]: Unrecognized key",
    ]) {
      expect(output).toContain(problem);
    }
  });

  it("cross-field problems are all listed too", async () => {
    const file = join(dir, "bad2.yaml");
    writeFileSync(
      file,
      [
        "issuer: http://auth.example.com",
        "scopes: [{ name: read, description: Read }]",
        "clients:",
        "  - { id: app, name: App, type: public, redirectUris: [http://app.example.com/cb, 'relative/path'], scopes: [read, missing] }",
      ].join("\n"),
    );
    const run = runTs("services/authz/main.ts", { env: { GATEHOUSE_CONFIG: file } });
    expect((await run.exited).code).toBe(1);
    const output = run.output();
    expect(output).toContain("issuer: must use https");
    expect(output).toContain("clients[0].redirectUris[0]: must use https");
    expect(output).toContain("clients[0].redirectUris[1]: must be an absolute URI");
    expect(output).toContain('clients[0].scopes[1]: unknown scope "missing"');
  });

  it("an unreadable file is reported", async () => {
    const run = runTs("services/authz/main.ts", { env: { GATEHOUSE_CONFIG: join(dir, "nope.yaml") } });
    expect((await run.exited).code).toBe(1);
    expect(run.output()).toContain("cannot read the configuration file (ENOENT)");
  });

  it("starts on the development configuration, serves, and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const run = runTs("services/authz/main.ts", {
      env: {
        GATEHOUSE_CONFIG: undefined,
        REDIS_URL: undefined,
        GATEHOUSE_AUTHZ_PORT: String(port),
        GATEHOUSE_SERVICE_CREDENTIAL: "dev-credential",
        GATEHOUSE_ADMIN_CREDENTIAL: "dev-admin-credential-0123456789abcdef",
        GATEHOUSE_GATEWAY_CLIENT_SECRET_HASH: "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      },
    });
    await run.waitFor(/listening/);
    const client = createClient(AuthorizationService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }));
    expect((await client.getMetadata({})).issuer).toBe("http://localhost:8080");
    expect(await run.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});
