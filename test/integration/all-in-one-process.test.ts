import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { stringify } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { baseConfigFile, testEnvironment } from "../support/authz.js";
import { runTs } from "../support/process.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { gatewaySection } from "../support/stack.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-all-in-one-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One start of the process under tsx, to its first error or to serving: 20 s quiet, scaled (as authz-process.test.ts). */
describe("the all-in-one process (all-in-one/main.ts)", { timeout: scaledBudget(20_000) }, () => {
  it("a wrong file stops the start, listing the problems of both sides and of its own section at once", async () => {
    const file = baseConfigFile() as Record<string, any>;
    file.lifetimes = { code: 3600 };
    file.gateway = { host: "127.0.0.1", port: 0 };
    file.allInOne = { serveRpc: "yes" };
    writeFileSync(join(dir, "bad.yaml"), stringify(file));
    const run = runTs("all-in-one/main.ts", { env: { GATEHOUSE_CONFIG: join(dir, "bad.yaml"), ...(await testEnvironment()) } });
    expect((await run.exited).code).toBe(1);
    const output = run.output();
    expect(output).toContain("gatehouse all-in-one: invalid all-in-one configuration");
    for (const problem of ["lifetimes.code:", "gateway.authz:", "allInOne.serveRpc:"]) expect(output).toContain(problem);
  });

  it("serves the gateway and, as configured, the RPC port; SIGTERM drains and exits 0", async () => {
    const ports = { gateway: await freePort(), rpc: await freePort() };
    const file = baseConfigFile() as Record<string, any>;
    file.issuer = `http://127.0.0.1:${ports.gateway}`;
    file.requireHttps = false;
    file.authz.port = ports.rpc;
    file.gateway = gatewaySection("http://127.0.0.1:1", ports.gateway);
    writeFileSync(join(dir, "good.yaml"), stringify(file));
    const run = runTs("all-in-one/main.ts", { env: { GATEHOUSE_CONFIG: join(dir, "good.yaml"), REDIS_URL: undefined, ...(await testEnvironment()) } });
    try {
      await run.waitFor(/gatehouse all-in-one listening/);
      // Ready means the gateway reaches the service (the in-process Health check).
      expect((await fetch(`http://127.0.0.1:${ports.gateway}/readyz`)).status).toBe(200);
      // An internal service on the RPC port (HTTP/2, as the gateway's and resource servers' clients speak it).
      const rpc = createClient(AuthorizationService, createConnectTransport({ baseUrl: `http://127.0.0.1:${ports.rpc}`, httpVersion: "2" }));
      expect((await rpc.getMetadata({})).issuer).toBe(file.issuer);
    } finally {
      expect(await run.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    }
  });
});
