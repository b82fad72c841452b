import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { createAuthzClient } from "../../gateway/rpc/authz-client.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { SECRETS, basic, pkcePair } from "../support/authz.js";
import { runTs, type RunningProcess } from "../support/process.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { waitFor } from "../support/wait-for.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-rolling-"));
const configFile = join(dir, "config.yaml");
const ports: number[] = [];
const replicas: RunningProcess[] = [];

function startReplica(i: number): RunningProcess {
  replicas[i] = runTs("services/authz/main.ts", {
    env: { GATEHOUSE_CONFIG: configFile, REDIS_URL: inject("redisUrl"), GATEHOUSE_AUTHZ_PORT: String(ports[i]) },
  });
  return replicas[i]!;
}

beforeAll(async () => {
  ports.push(await freePort(), await freePort());
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  writeFileSync(join(dir, "jwks.json"), JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: "k1", alg: "ES256" }] }));
  writeFileSync(join(dir, "credential"), SECRETS.service);
  writeFileSync(
    configFile,
    stringify({
      issuer: "https://auth.test",
      authz: {
        keyPrefix: `rolling-${Date.now()}:`,
        serviceCredential: { file: join(dir, "credential") },
        signingKeys: { source: { file: join(dir, "jwks.json") } },
        // Far above what a drain needs (the flows in flight, well under a second), scaled so a busy machine does not reach it.
        drainTimeoutMs: Math.min(scaledBudget(5_000), 120_000),
      },
      scopes: [{ name: "read", description: "Read" }],
      clients: [
        { id: "web", name: "Web", type: "confidential", secretHashes: [`sha256:${hashSecret(SECRETS.web)}`], redirectUris: ["https://web.test/cb"], scopes: ["read"] },
        { id: "gatehouse-gateway", name: "Gateway", type: "confidential", secretHashes: [`sha256:${hashSecret(SECRETS.gateway)}`], grantTypes: [], responseTypes: [], introspectAnyToken: true },
      ],
    }),
  );
  await Promise.all([startReplica(0).waitFor(/listening/), startReplica(1).waitFor(/listening/)]);
});
afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
});

/** GET /readyz on a replica's port answers 200: it serves, and Redis is reachable from it. */
async function ready(port: number): Promise<boolean> {
  return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
}

/**
 * The test's budget: each replica is stopped (drained: it finishes what it
 * holds, well under a second) and started again
 * as a process under tsx (about 2 s on a quiet two-core machine), with flows
 * run before, between and after. About 8 s on a quiet machine, 50 s at a
 * load average of 13; 60 s quiet, scaled by TEST_TIME_SCALE. It bounds a
 * hang; a passing run never waits for it.
 */
const ROLLING_RESTART_BUDGET_MS = scaledBudget(60_000);

describe("a rolling restart of one of two authz replicas under load", () => {
  it("loses no request: drained replicas finish what they hold, and calls that never reached one go to the other", { timeout: ROLLING_RESTART_BUDGET_MS }, async () => {
    const client = createAuthzClient({
      endpoints: ports.map((p) => `http://127.0.0.1:${p}`),
      serviceCredential: SECRETS.service,
      clientId: "gatehouse-gateway",
      clientSecret: SECRETS.gateway,
      // Each call's deadline: a call on a loaded machine may be slow, and must not fail for that.
      timeoutMs: scaledBudget(5_000),
      transport: "lean",
    });
    const failures: string[] = [];
    let started = 0;
    let flows = 0;
    let running = true;
    const flow = async () => {
      const pkce = pkcePair();
      const pending = await client.authz.authorize({ responseType: "code", clientId: "web", scope: "read", codeChallenge: pkce.challenge, codeChallengeMethod: "S256" });
      const { redirectUrl } = await client.authz.decide({ requestId: pending.requestId, subject: "u", authTime: 1n, approved: true });
      const code = new URL(redirectUrl).searchParams.get("code")!;
      const { token } = await client.authz.exchangeCode({ code, codeVerifier: pkce.verifier }, basic("web", SECRETS.web));
      const introspection = await client.authz.introspect({ token: token!.accessToken }, client.asGatewayClient);
      if (!introspection.active) throw new Error("a fresh token was inactive");
    };
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running) {
          started++;
          try {
            await flow();
            flows++;
          } catch (error) {
            failures.push(String(error));
          }
        }
      }),
    );
    // Progress is awaited as a condition, never as an amount within a time.
    const moreFlows = (what: string, count = 10) => {
      const target = flows + count;
      return waitFor(() => flows >= target || failures.length > 0, { budgetMs: 10_000, what: `${count} more flows ${what}` });
    };

    await moreFlows("through both replicas before the restart");
    for (const i of [0, 1]) {
      const exit = await replicas[i]!.stop("SIGTERM");
      expect(exit.code).toBe(0);
      // With replica i gone, the other serves every call on its own.
      await moreFlows(`while replica ${i} is down`);
      await startReplica(i).waitFor(/listening/);
      await waitFor(() => ready(ports[i]!), { budgetMs: 10_000, what: `replica ${i}'s readiness after its restart` });
      await moreFlows(`with replica ${i} back`);
    }
    running = false;
    await load;
    expect(failures).toEqual([]);
    // Every flow begun was completed: none was lost between the replicas.
    expect(flows).toBe(started);
  });
});
