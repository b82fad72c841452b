/**
 * npm run bench:tenants — what 1,000 tenants with 10 clients each cost to
 * load (issue 11, "Bad input and limits": under a second, and the gateway's
 * memory reported). Each measurement runs in a fresh process of its own, as
 * a start-up does (cold: nothing compiled yet), on a file written once:
 *
 * - authz: reading and validating the file, then building every tenant's
 *   authorization server with its key ring; with operator keys (each tenant's
 *   `signingKeys`) and with keys that rotate themselves (the memory store).
 * - gateway: reading and validating the file, then building the app; its
 *   heap and RSS after start, with the tenants and without them.
 * - for comparison, the `yaml` package's parseDocument on the same text (what
 *   both processes used before startup/plain-yaml.ts).
 *
 * Times are wall clock and CPU (user + system) of the step; print the machine's
 * load beside them (it is printed first), as the host is shared.
 *
 *   BENCH_TENANTS (default 1000)   tenants
 *   BENCH_CLIENTS (default 10)     clients per tenant
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exportJWK, generateKeyPair } from "jose";
import { pino } from "pino";
import { parseDocument, stringify } from "yaml";
import { buildApp } from "../gateway/app.js";
import { parseGatewayConfig } from "../gateway/config.js";
import { createGatewayDeps } from "../gateway/deps.js";
import { parseAuthzConfig } from "../services/authz/config.js";
import { createAuthzDeps } from "../services/authz/deps.js";
import { hashSecret } from "../services/authz/oauth/secrets.js";

const tenantCount = Number(process.env.BENCH_TENANTS ?? 1_000);
const clientCount = Number(process.env.BENCH_CLIENTS ?? 10);
const log = pino({ level: "error" });

/** The configuration: every tenant with `clientCount` confidential clients, a scope, and (for "operator") its own signingKeys. */
function file(tenants: number, keys: "operator" | "rotating"): string {
  const hash = `sha256:${hashSecret("bench-secret")}`;
  // A new object each time: yaml.stringify writes an object met twice as an anchor and aliases.
  const signingKeys = () => (keys === "operator" ? { signingKeys: { source: { env: "KEYS" } } } : {});
  return stringify({
    issuer: "https://id.example",
    authz: { serviceCredential: { env: "SERVICE" }, ...signingKeys() },
    gateway: { port: 0, authz: { serviceCredential: { env: "SERVICE" }, clientId: "gateway", clientSecret: { env: "GW_SECRET" } } },
    tenants: Array.from({ length: tenants }, (_, i) => ({
      name: `tenant-${i}`,
      ...signingKeys(),
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

/** One step's wall time and CPU (user + system, every thread of the process), in ms. */
async function measure<T>(step: () => T | Promise<T>): Promise<{ value: T; wallMs: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const value = await step();
  const used = process.cpuUsage(cpu);
  return { value, wallMs: performance.now() - start, cpuMs: (used.user + used.system) / 1000 };
}

/** What a child process measures; it prints one JSON line. */
async function child(mode: string, path: string, env: Record<string, string>): Promise<Record<string, number>> {
  const text = readFileSync(path, "utf8");
  if (mode === "authz") {
    const parsed = await measure(() => parseAuthzConfig(text, env, path));
    const built = await measure(() => createAuthzDeps(parsed.value, log));
    await built.value.close();
    return { parseMs: parsed.wallMs, parseCpuMs: parsed.cpuMs, buildMs: built.wallMs, buildCpuMs: built.cpuMs, servers: parsed.value.tenants.size + 1 };
  }
  if (mode === "gateway") {
    const parsed = await measure(() => parseGatewayConfig(text, env, path));
    const built = await measure(async () => {
      const app = await buildApp(createGatewayDeps(parsed.value, log));
      await app.ready();
      return app;
    });
    global.gc?.();
    const memory = process.memoryUsage();
    await built.value.close();
    return { parseMs: parsed.wallMs, parseCpuMs: parsed.cpuMs, buildMs: built.wallMs, buildCpuMs: built.cpuMs, heapUsed: memory.heapUsed, rss: memory.rss };
  }
  const parsed = await measure(() => parseDocument(text, { prettyErrors: true, uniqueKeys: true }).toJS());
  return { parseMs: parsed.wallMs, parseCpuMs: parsed.cpuMs };
}

const [, , mode, path, envJson] = process.argv;
if (mode !== undefined) {
  process.stdout.write(`${JSON.stringify(await child(mode, path!, JSON.parse(envJson!) as Record<string, string>))}\n`);
  process.exit(0);
}

const { privateKey } = await generateKeyPair("ES256", { extractable: true });
const env = {
  GW_SECRET: "gateway-secret",
  SERVICE: "service-credential",
  KEYS: JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: "k1", alg: "ES256" }] }),
};
const dir = mkdtempSync(join(tmpdir(), "bench-tenants-"));
const files = { operator: join(dir, "operator.yaml"), rotating: join(dir, "rotating.yaml"), none: join(dir, "none.yaml") };
writeFileSync(files.operator, file(tenantCount, "operator"));
writeFileSync(files.rotating, file(tenantCount, "rotating"));
writeFileSync(files.none, file(0, "operator"));

function run(which: string, path: string): Record<string, number> {
  const result = spawnSync(process.execPath, [...process.execArgv, "--expose-gc", fileURLToPath(import.meta.url), which, path, JSON.stringify(env)], { encoding: "utf8" });
  const line = result.stdout.trim().split("\n").pop() ?? "";
  if (result.status !== 0 || !line.startsWith("{")) throw new Error(`bench:tenants ${which} failed:\n${result.stderr}`);
  return JSON.parse(line) as Record<string, number>;
}
const ms = (wall: number | undefined, cpu: number | undefined) => `${wall!.toFixed(0)} ms (CPU ${cpu!.toFixed(0)} ms)`;
const mib = (bytes: number | undefined) => `${(bytes! / 1024 / 1024).toFixed(1)} MiB`;
const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");

try {
  const size = Buffer.byteLength(readFileSync(files.operator));
  process.stdout.write(`${tenantCount} tenants × ${clientCount} clients: ${mib(size)} of YAML; load average ${load()}\n`);
  const yaml = run("yaml", files.operator);
  process.stdout.write(`yaml package's parseDocument alone (before the fast path): ${ms(yaml.parseMs, yaml.parseCpuMs)}\n`);
  for (const keys of ["operator", "rotating"] as const) {
    const authz = run("authz", files[keys]);
    const what = keys === "operator" ? "operator keys (each tenant's signingKeys)" : "self-rotating keys (memory store: one generated per tenant)";
    process.stdout.write(
      `authz, ${what}: configuration ${ms(authz.parseMs, authz.parseCpuMs)} + ${authz.servers} servers ${ms(authz.buildMs, authz.buildCpuMs)} = ${(authz.parseMs! + authz.buildMs!).toFixed(0)} ms; load average ${load()}\n`,
    );
  }
  const gateway = run("gateway", files.operator);
  const bare = run("gateway", files.none);
  process.stdout.write(
    `gateway: configuration ${ms(gateway.parseMs, gateway.parseCpuMs)} + app ${ms(gateway.buildMs, gateway.buildCpuMs)} = ${(gateway.parseMs! + gateway.buildMs!).toFixed(0)} ms; load average ${load()}\n`,
  );
  process.stdout.write(`gateway after start: heap ${mib(bare.heapUsed)} / RSS ${mib(bare.rss)} without tenants, heap ${mib(gateway.heapUsed)} / RSS ${mib(gateway.rss)} with them\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
