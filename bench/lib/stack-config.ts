import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { stringify } from "yaml";
import { hashSecret } from "../../services/authz/oauth/secrets.js";

/** What the benchmarks' authz service and gateways share: fresh secrets and a signing key. */
export interface BenchSecrets {
  /** The confidential client `web`'s secret. */
  readonly web: string;
  /** The gateway's own client (`gatehouse-gateway`, introspectAnyToken). */
  readonly gateway: string;
  /** The gateway's service credential. */
  readonly service: string;
  /** The client-credentials client `svc`'s secret (client_secret_basic). */
  readonly svc: string;
  /** The private_key_jwt client `svc-jwt`'s signing key (ES256) and its public JWK (kid `svc-jwt-1`). */
  readonly svcJwt: { privateKey: CryptoKey; publicJwk: JWK };
  /** Environment the configuration's secret references resolve from. */
  readonly env: Record<string, string>;
}

export const BENCH_REDIRECT_URI = "https://bench.test/cb";
/**
 * The resource owner of every benchmark's tokens: a user of the
 * configuration, as a token's subject is once a user signed in (the peer's
 * accountId is the same name, its findAccount a function that reads
 * nothing). Before 2026-12-03 it named no user at all, and every code
 * exchange, refresh and introspection also asked the registry in Redis for a
 * user of that subject and found none (README, Speed, "Third session").
 */
export const BENCH_SUBJECT = "bench-user";

/** The configuration's entry for BENCH_SUBJECT: nobody signs in as it (its password hash matches no known password). */
export function benchUser(): Record<string, unknown> {
  return { username: BENCH_SUBJECT, subject: BENCH_SUBJECT, passwordHash: `scrypt$16384$8$1$${randomBytes(16).toString("base64url")}$${randomBytes(32).toString("base64url")}` };
}
/** The audience of the service tokens bench:token issues (client credentials, token exchange). */
export const BENCH_DOWNSTREAM = "https://downstream.bench.test";

export async function createBenchSecrets(): Promise<BenchSecrets> {
  const secret = () => randomBytes(32).toString("base64url");
  const [web, gateway, service, svc] = [secret(), secret(), secret(), secret()];
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const assertionKey = await generateKeyPair("ES256");
  return {
    web,
    gateway,
    service,
    svc,
    svcJwt: { privateKey: assertionKey.privateKey, publicJwk: { ...(await exportJWK(assertionKey.publicKey)), kid: "svc-jwt-1", alg: "ES256" } },
    env: {
      BENCH_SERVICE_CREDENTIAL: service,
      BENCH_GATEWAY_CLIENT_SECRET: gateway,
      BENCH_SIGNING_KEYS: JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: "bench", alg: "ES256" }] }),
    },
  };
}

/**
 * Writes the one configuration file an authz service and a gateway of a
 * benchmark both start from (issuer = the gateway; the client `web`; the
 * gateway's own client), with what a benchmark adds: the guard's section and
 * routes, lifetimes. Returns its path.
 */
export function writeBenchStackConfig(options: {
  dir: string;
  name: string;
  secrets: BenchSecrets;
  authzPort: number;
  gatewayPort: number;
  guard?: Record<string, unknown>;
  routes?: unknown[];
  lifetimes?: Record<string, unknown>;
  /** Named tenants t0 … t{n-1} besides the top level's (issue 11), each with the client `web` and the same signing key. */
  tenants?: number;
  /** More of the gateway section (a variant measured beside the default: `leanEndpoints: false`, `authz.httpVersion`). */
  gateway?: { authz?: Record<string, unknown> } & Record<string, unknown>;
  /** The processes run under a wrapper (callgrind) and take tens of times longer per step: the deadlines stretch with them. */
  stretchDeadlines?: boolean;
}): string {
  const file = join(options.dir, `${options.name}.yaml`);
  writeFileSync(
    file,
    stringify({
      issuer: `http://127.0.0.1:${options.gatewayPort}`,
      requireHttps: false,
      authz: {
        host: "127.0.0.1",
        port: options.authzPort,
        keyPrefix: `bench-${options.name}-${Date.now()}:`,
        serviceCredential: { env: "BENCH_SERVICE_CREDENTIAL" },
        signingKeys: { source: { env: "BENCH_SIGNING_KEYS" } },
        ...(options.stretchDeadlines === true ? { overload: STRETCHED_OVERLOAD } : {}),
      },
      ...(options.lifetimes === undefined ? {} : { lifetimes: options.lifetimes }),
      // openid: bench:token's OpenID Connect code exchange (an ID Token signed beside the access token).
      scopes: [{ name: "read", description: "Read" }, { name: "openid", description: "Sign in" }],
      users: [benchUser()],
      clients: [
        {
          id: "web",
          name: "Web",
          type: "confidential",
          secretHashes: [`sha256:${hashSecret(options.secrets.web)}`],
          redirectUris: [BENCH_REDIRECT_URI],
          scopes: ["read", "openid"],
          // RFC 8693: web exchanges its users' tokens for the downstream service (bench:token).
          grantTypes: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"],
          service: { tokenExchange: { audiences: [BENCH_DOWNSTREAM], scopes: ["read"] } },
        },
        // RFC 6749 §4.4 clients (bench:token): one with a secret, one with private_key_jwt (RFC 7523).
        {
          id: "svc",
          name: "Service",
          type: "confidential",
          secretHashes: [`sha256:${hashSecret(options.secrets.svc)}`],
          grantTypes: ["client_credentials"],
          responseTypes: [],
          scopes: ["read"],
          service: { defaultAudience: BENCH_DOWNSTREAM },
        },
        {
          id: "svc-jwt",
          name: "Service (private_key_jwt)",
          type: "confidential",
          grantTypes: ["client_credentials"],
          responseTypes: [],
          scopes: ["read"],
          service: { jwks: { keys: [options.secrets.svcJwt.publicJwk] }, defaultAudience: BENCH_DOWNSTREAM },
        },
        {
          id: "gatehouse-gateway",
          name: "Gateway",
          type: "confidential",
          secretHashes: [`sha256:${hashSecret(options.secrets.gateway)}`],
          grantTypes: [],
          responseTypes: [],
          introspectAnyToken: true,
        },
      ],
      gateway: {
        host: "127.0.0.1",
        port: options.gatewayPort,
        authz: {
          endpoints: [`http://127.0.0.1:${options.authzPort}`],
          serviceCredential: { env: "BENCH_SERVICE_CREDENTIAL" },
          clientId: "gatehouse-gateway",
          clientSecret: { env: "BENCH_GATEWAY_CLIENT_SECRET" },
          ...(options.stretchDeadlines === true ? { timeoutMs: 30_000 } : {}),
          ...options.gateway?.authz,
        },
        ...(options.guard === undefined ? {} : { guard: options.guard }),
        ...Object.fromEntries(Object.entries(options.gateway ?? {}).filter(([key]) => key !== "authz")),
      },
      ...(options.routes === undefined ? {} : { routes: options.routes }),
      ...(options.tenants === undefined || options.tenants === 0
        ? {}
        : {
            tenants: Array.from({ length: options.tenants }, (_, i) => ({
              name: benchTenant(i),
              signingKeys: { source: { env: "BENCH_SIGNING_KEYS" } },
              scopes: [{ name: "read", description: "Read" }],
              clients: [{ id: "web", name: "Web", type: "confidential", secretHashes: [`sha256:${hashSecret(options.secrets.web)}`], redirectUris: [BENCH_REDIRECT_URI], scopes: ["read"] }],
              // The top level's user too: a subject no tenant configures is looked up in the store on every
              // code exchange, refresh and introspection, which the single tenant's run does not do.
              users: [benchUser()],
            })),
          }),
    }),
  );
  return file;
}

/** The name of a benchmark's i-th tenant. */
export function benchTenant(i: number): string {
  return `t${i}`;
}

/** BENCH_TENANTS: how many tenants the tenants' run configures (0: no such run). */
export function benchTenantCount(): number {
  const count = Number(process.env.BENCH_TENANTS ?? 0);
  if (!Number.isInteger(count) || count < 0 || count > 10_000) throw new Error("BENCH_TENANTS must be an integer from 0 to 10000");
  return count;
}

/**
 * authz.overload for a service under callgrind (BENCH_INSTRUCTIONS): a Redis
 * reply read 500 ms after it arrived is not a Redis timeout there.
 */
export const STRETCHED_OVERLOAD = { queueTimeoutMs: 30_000, defaultBudgetMs: 100_000, redisCommandTimeoutMs: 50_000 } as const;
