import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { parseGatewayConfig } from "../../gateway/config.js";
import { SECRETS, basic, baseConfigFile, issueTokens, startTestAuthz, testEnvironment, type TestAuthz } from "../support/authz.js";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { runTs, type RunningProcess } from "../support/process.js";
import { freePort } from "../support/redis-server.js";
import { gatewaySection } from "../support/stack.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { waitFor } from "../support/wait-for.js";
import { startGuardGateway, type GuardGateway } from "./guard-fixtures.js";

/** The drain deadline: far above what the slow requests need (0.8 s), scaled so a busy machine does not reach it. */
const DRAIN_TIMEOUT_MS = Math.min(scaledBudget(5_000), 120_000);

let authz: TestAuthz;
let upstream: EchoUpstream;
beforeAll(async () => {
  upstream = await startEchoUpstream();
  authz = await startTestAuthz({ redisUrl: inject("redisUrl") });
});
afterAll(async () => {
  await authz.close();
  await upstream.close();
});

const readRoute = (path: string, scopes = ["read"]) => ({ name: path, methods: ["GET"], path, scopes, upstream: upstream.url });

describe("a guard-only gateway (a sidecar without the service credential)", () => {
  let gateway: GuardGateway;
  beforeAll(async () => {
    gateway = await startGuardGateway({
      authzUrl: authz.running.url,
      redisUrl: inject("redisUrl"),
      patch: (file) => {
        file.routes = [readRoute("/api/**")];
        file.gateway = { authz: { ...(gatewaySection(authz.running.url, 0).authz as object), serviceCredential: undefined } };
      },
    });
  });
  afterAll(() => gateway.close());

  it("serves no browser endpoint: it cannot assert who a resource owner is", async () => {
    expect(gateway.config.authz.serviceCredential).toBeUndefined();
    for (const path of ["/oauth2/authorize?client_id=web", "/login", "/.well-known/oauth-authorization-server"]) {
      expect((await fetch(`${gateway.url}${path}`)).status, path).toBe(404);
    }
    expect((await fetch(`${gateway.url}/oauth2/token`, { method: "POST", body: "grant_type=x", headers: { "content-type": "application/x-www-form-urlencoded" } })).status).toBe(404);
  });

  it("guards with its own client credentials, and hears revocations through them", async () => {
    const tokens = await issueTokens(authz, { scope: "read" });
    const call = () => fetch(`${gateway.url}/api/notes`, { headers: { authorization: `Bearer ${tokens.accessToken}` } });
    expect((await call()).status).toBe(200);
    expect((await call()).status).toBe(200); // now from the cache
    await authz.authz.revoke({ token: tokens.refreshToken }, basic("web", SECRETS.web));
    await waitFor(async () => (await call()).status === 401, { budgetMs: 5_000, what: "the revocation to reach the sidecar's cache (401)" });
  });
});

describe("the route table reloads in place", () => {
  it("a reloaded table takes effect on the next request; a table that does not compile is refused whole", async () => {
    const gateway = await startGuardGateway({ authzUrl: authz.running.url, redisUrl: inject("redisUrl"), patch: (file) => void (file.routes = [readRoute("/old/**")]) });
    try {
      const token = (await issueTokens(authz, { scope: "read" })).accessToken;
      const get = (path: string) => fetch(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
      expect([await get("/old/a"), await get("/new/a")]).toEqual([200, 404]);

      const reconfigure = async (routes: object[]) => {
        const file = baseConfigFile();
        file.issuer = gateway.config.issuer;
        file.requireHttps = false;
        file.gateway = { ...gatewaySection(authz.running.url, 0), port: gateway.config.listen.port };
        file.routes = routes;
        return parseGatewayConfig(stringify(file), await testEnvironment());
      };
      expect(gateway.deps.reload(await reconfigure([readRoute("/new/**")])).needsRestart).toEqual([]);
      expect([await get("/old/a"), await get("/new/a")]).toEqual([404, 200]);

      expect(() => gateway.deps.reload({ ...gateway.config, routes: [{ ...readRoute("/x/**/y"), name: "bad" } as never] })).toThrow();
      expect(await get("/new/a")).toBe(200);
    } finally {
      await gateway.close();
    }
  });
});

describe("the gateway process under load", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-gateway-"));
  const configFile = join(dir, "config.yaml");
  let port: number;
  let gateway: RunningProcess;

  const writeConfig = (routes: object[]) => {
    const file = baseConfigFile();
    file.issuer = `http://127.0.0.1:${port}`;
    file.requireHttps = false;
    file.gateway = { ...gatewaySection(authz.running.url, port), drainTimeoutMs: DRAIN_TIMEOUT_MS };
    file.routes = routes;
    // As Kubernetes updates a mounted file: a new file renamed over the old.
    writeFileSync(`${configFile}.next`, stringify(file));
    renameSync(`${configFile}.next`, configFile);
  };

  beforeAll(async () => {
    port = await freePort();
    writeConfig([readRoute("/api/**")]);
    gateway = runTs("gateway/main.ts", { env: { ...(await testEnvironment()), GATEHOUSE_CONFIG: configFile, GATEHOUSE_GATEWAY_PORT: undefined } });
    await gateway.waitFor(/gateway listening/);
  });
  afterAll(() => gateway.stop());

  it("reloads its route table on a file change without failing a request in flight or around it", async () => {
    const token = (await issueTokens(authz, { scope: "read" })).accessToken;
    const failures: string[] = [];
    let done = 0;
    let running = true;
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (running) {
          const response = await fetch(`http://127.0.0.1:${port}/api/notes`, { headers: { authorization: `Bearer ${token}` } }).catch((e: unknown) => e);
          if (!(response instanceof Response) || response.status !== 200) failures.push(String(response instanceof Response ? response.status : response));
          else done++;
          if (response instanceof Response) await response.arrayBuffer();
        }
      }),
    );
    await waitFor(() => done > 20 || failures.length > 0, { budgetMs: 5_000, what: "20 requests answered before the reload" });
    writeConfig([readRoute("/api/**"), readRoute("/reports/**")]);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/reports/1`, { headers: { authorization: `Bearer ${token}` } })).status === 200, {
      budgetMs: 5_000,
      what: "the route added to the file to serve (200 on /reports/1)",
    });
    gateway.child.kill("SIGHUP");
    await gateway.waitFor(/"reason":"SIGHUP".*configuration reloaded/);
    const before = done;
    await waitFor(() => done > before + 20 || failures.length > 0, { budgetMs: 5_000, what: "20 requests answered after SIGHUP" });
    running = false;
    await load;
    expect(failures).toEqual([]);
  });

  it("on SIGTERM turns unready, finishes the requests it holds, and exits 0", async () => {
    const token = (await issueTokens(authz, { scope: "read" })).accessToken;
    // Requests the upstream holds for 800 ms: in flight when the signal comes.
    const slow = Array.from({ length: 3 }, () =>
      fetch(`http://127.0.0.1:${port}/api/slow?echo-delay=800`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status),
    );
    await waitFor(() => upstream.received.filter((r) => r.path === "/api/slow").length === 3, { budgetMs: 5_000, what: "the three slow requests to reach the upstream" });
    const exited = gateway.stop("SIGTERM");
    expect(await Promise.all(slow)).toEqual([200, 200, 200]);
    const { code } = await exited;
    expect(code).toBe(0);
    // It exited once its work was done, not at the drain deadline.
    expect(gateway.output()).not.toMatch(/drain timeout/);
    expect(gateway.output()).toMatch(/draining/);
  });
});
