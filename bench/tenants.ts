/**
 * npx tsx bench/tenants.ts — what 1,000 tenants with 10 clients each cost to
 * load (issue 11, "Bad input and limits"): the YAML parse and validation in
 * each process, building every tenant's server (key ring included) in the
 * authz service, and the gateway's heap with and without them.
 *
 *   BENCH_TENANTS (default 1000)   tenants
 *   BENCH_CLIENTS (default 10)     clients per tenant
 */
import { exportJWK, generateKeyPair } from "jose";
import { pino } from "pino";
import { stringify } from "yaml";
import { buildApp } from "../gateway/app.js";
import { parseGatewayConfig } from "../gateway/config.js";
import { createGatewayDeps } from "../gateway/deps.js";
import { parseAuthzConfig } from "../services/authz/config.js";
import { createAuthzDeps } from "../services/authz/deps.js";
import { hashSecret } from "../services/authz/oauth/secrets.js";

const tenantCount = Number(process.env.BENCH_TENANTS ?? 1_000);
const clientCount = Number(process.env.BENCH_CLIENTS ?? 10);
const log = pino({ level: "error" });
const hash = `sha256:${hashSecret("bench-secret")}`;
const { privateKey } = await generateKeyPair("ES256", { extractable: true });
const env = {
  GW_SECRET: "gateway-secret",
  SERVICE: "service-credential",
  KEYS: JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: "k1", alg: "ES256" }] }),
};

function file(tenants: number): string {
  return stringify({
    issuer: "https://id.example",
    authz: { serviceCredential: { env: "SERVICE" }, signingKeys: { source: { env: "KEYS" } } },
    gateway: { port: 0, authz: { serviceCredential: { env: "SERVICE" }, clientId: "gateway", clientSecret: { env: "GW_SECRET" } } },
    tenants: Array.from({ length: tenants }, (_, i) => ({
      name: `tenant-${i}`,
      signingKeys: { source: { env: "KEYS" } },
      scopes: [{ name: "read", description: "Read" }],
      clients: Array.from({ length: clientCount }, (_, j) => ({
        id: `client-${j}`,
        name: `Client ${j}`,
        type: "confidential",
        secretHashes: [hash],
        redirectUris: [`https://app-${j}.tenant-${i}.example/cb`],
        scopes: ["read"],
      })),
    })),
  });
}

const ms = (start: number) => `${(performance.now() - start).toFixed(0)} ms`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

const text = file(tenantCount);
process.stdout.write(`${tenantCount} tenants × ${clientCount} clients: ${mib(Buffer.byteLength(text))} of YAML\n`);

let start = performance.now();
const authzConfig = parseAuthzConfig(text, env);
process.stdout.write(`authz: configuration parsed and validated in ${ms(start)}\n`);
start = performance.now();
const authz = await createAuthzDeps(authzConfig, log);
process.stdout.write(`authz: ${authzConfig.tenants.size + 1} servers built (key rings included) in ${ms(start)}\n`);
await authz.close();

async function gatewayHeap(source: string): Promise<number> {
  const config = parseGatewayConfig(source, env);
  const deps = createGatewayDeps(config, log);
  const app = await buildApp(deps);
  await app.ready();
  global.gc?.();
  const used = process.memoryUsage().heapUsed;
  await app.close();
  return used;
}
start = performance.now();
parseGatewayConfig(text, env);
process.stdout.write(`gateway: configuration parsed and validated in ${ms(start)}\n`);
const without = await gatewayHeap(file(0));
const withTenants = await gatewayHeap(text);
process.stdout.write(`gateway heap after start: ${mib(without)} without tenants, ${mib(withTenants)} with them${global.gc === undefined ? " (run with node --expose-gc for steadier figures)" : ""}\n`);
