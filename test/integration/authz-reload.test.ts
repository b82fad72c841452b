import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { decodeProtectedHeader, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { SECRETS, basic, failureOf, pkcePair } from "../support/authz.js";
import { runTs, type RunningProcess } from "../support/process.js";
import { freePort } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-reload-"));
const configFile = join(dir, "config.yaml");
const keysFile = join(dir, "jwks.json");
const credentialFile = join(dir, "service-credential");
let port: number;
let service: RunningProcess;
const keyPrefix = `reload-${Date.now()}:`;

async function signingKey(kid: string) {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: "ES256" };
}

/** Writes a file the way Kubernetes updates a mounted one: a new file renamed over the old. */
function replaceFile(path: string, content: string) {
  writeFileSync(`${path}.next`, content);
  renameSync(`${path}.next`, path);
}

function configText(clients: object[], activeKid?: string) {
  return stringify({
    issuer: "https://auth.test",
    authz: {
      port,
      keyPrefix,
      serviceCredential: { file: credentialFile },
      signingKeys: { source: { file: keysFile }, ...(activeKid ? { activeKid } : {}) },
    },
    scopes: [{ name: "read", description: "Read" }],
    clients,
  });
}

const web = { id: "web", name: "Web", type: "confidential", secretHashes: [`sha256:${hashSecret(SECRETS.web)}`], redirectUris: ["https://web.test/cb"], scopes: ["read"] };
const newApp = { id: "new-app", name: "New App", type: "public", redirectUris: ["https://new.test/cb"], scopes: ["read"] };

const client = () => createClient(AuthorizationService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "2" }));
const asGateway = { headers: { "gatehouse-service-credential": SECRETS.service } };
const authorizeNewApp = (authz: ReturnType<typeof client>) =>
  authz.authorize({ responseType: "code", clientId: "new-app", scope: "read", codeChallenge: pkcePair().challenge, codeChallengeMethod: "S256" }, asGateway);

beforeAll(async () => {
  port = await freePort();
  writeFileSync(credentialFile, SECRETS.service);
  writeFileSync(keysFile, JSON.stringify({ keys: [await signingKey("k1")] }));
  writeFileSync(configFile, configText([web]));
  service = runTs("services/authz/main.ts", { env: { GATEHOUSE_CONFIG: configFile, REDIS_URL: inject("redisUrl"), GATEHOUSE_AUTHZ_PORT: undefined } });
  await service.waitFor(/listening/);
});
afterAll(async () => {
  await service.stop();
});

describe("configuration reload without dropping connections", () => {
  it("a changed file adds a client; a broken one is refused and the running one stays; open streams survive", async () => {
    const authz = client();
    const stream = authz.watchRevocations({}, asGateway)[Symbol.asyncIterator]();
    expect((await stream.next()).value?.event.case).toBe("subscribed");
    expect((await failureOf(authorizeNewApp(authz))).oauth?.error).toBe("invalid_request");

    replaceFile(configFile, configText([web, newApp]));
    await expect.poll(async () => (await authorizeNewApp(authz).then(() => "ok", () => "refused")), { timeout: scaledBudget(10_000) }).toBe("ok");
    // The log line travels through a pipe, and may arrive after the answer that shows the reload.
    await service.waitFor(/"reason":"file change".*configuration reloaded/);

    replaceFile(configFile, "issuer: [this is not: valid");
    service.child.kill("SIGHUP");
    await service.waitFor(/configuration not reloaded/);
    await authorizeNewApp(authz);

    // The stream opened before both reloads still delivers.
    const pkce = pkcePair();
    const pending = await authz.authorize(
      { responseType: "code", clientId: "web", scope: "read", codeChallenge: pkce.challenge, codeChallengeMethod: "S256" },
      asGateway,
    );
    const { redirectUrl } = await authz.decide({ requestId: pending.requestId, subject: "u", authTime: 1n, approved: true }, asGateway);
    const code = new URL(redirectUrl).searchParams.get("code")!;
    const { token } = await authz.exchangeCode({ code, codeVerifier: pkce.verifier }, basic("web", SECRETS.web));
    await authz.revoke({ token: token!.accessToken }, basic("web", SECRETS.web));
    expect((await stream.next()).value?.event.case).toBe("revocation");
    await stream.return?.();
  });

  it("signing keys rotate without downtime: publish the new key, switch activeKid, old tokens still verify", async () => {
    replaceFile(configFile, configText([web, newApp]));
    const authz = client();
    const issue = async () => {
      const pkce = pkcePair();
      const pending = await authz.authorize(
        { responseType: "code", clientId: "web", scope: "read", codeChallenge: pkce.challenge, codeChallengeMethod: "S256" },
        asGateway,
      );
      const { redirectUrl } = await authz.decide({ requestId: pending.requestId, subject: "u", authTime: 1n, approved: true }, asGateway);
      const { token } = await authz.exchangeCode(
        { code: new URL(redirectUrl).searchParams.get("code")!, codeVerifier: pkce.verifier },
        basic("web", SECRETS.web),
      );
      return token!.accessToken;
    };
    const before = await issue();
    expect(decodeProtectedHeader(before).kid).toBe("k1");

    const k1 = (JSON.parse((await import("node:fs")).readFileSync(keysFile, "utf8")) as { keys: object[] }).keys[0]!;
    replaceFile(keysFile, JSON.stringify({ keys: [k1, await signingKey("k2")] }));
    replaceFile(configFile, configText([web, newApp], "k2"));
    service.child.kill("SIGHUP");
    await expect.poll(async () => decodeProtectedHeader(await issue()).kid, { timeout: scaledBudget(10_000) }).toBe("k2");

    const jwks = JSON.parse((await authz.getJwks({})).jwksJson) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual(["k1", "k2"]);
    expect((await authz.introspect({ token: before }, basic("web", SECRETS.web))).active).toBe(true);
  });
});
