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
        drainTimeoutMs: 5_000,
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

describe("a rolling restart of one of two authz replicas under load", () => {
  it("loses no request: drained replicas finish what they hold, and calls that never reached one go to the other", async () => {
    const client = createAuthzClient({
      endpoints: ports.map((p) => `http://127.0.0.1:${p}`),
      serviceCredential: SECRETS.service,
      clientId: "gatehouse-gateway",
      clientSecret: SECRETS.gateway,
      timeoutMs: 5_000,
      transport: "lean",
    });
    const failures: string[] = [];
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
          try {
            await flow();
            flows++;
          } catch (error) {
            failures.push(String(error));
          }
        }
      }),
    );

    for (const i of [0, 1]) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const before = flows;
      const exit = await replicas[i]!.stop("SIGTERM");
      expect(exit.code).toBe(0);
      await startReplica(i).waitFor(/listening/);
      expect(flows).toBeGreaterThan(before); // the other replica kept serving meanwhile
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    running = false;
    await load;
    expect(failures).toEqual([]);
    expect(flows).toBeGreaterThan(20);
  });
});
