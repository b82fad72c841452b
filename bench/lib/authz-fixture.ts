import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { exportJWK, generateKeyPair } from "jose";
import { stringify } from "yaml";
import {
  AuthorizeRequestSchema,
  AuthorizeResponseSchema,
  DecideRequestSchema,
  DecideResponseSchema,
  ExchangeCodeRequestSchema,
  ExchangeCodeResponseSchema,
  GetMetadataRequestSchema,
  IntrospectRequestSchema,
} from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { runNode, type RunningProcess } from "../../test/support/process.js";
import { BENCH_SUBJECT, benchUser, STRETCHED_OVERLOAD } from "./stack-config.js";
import { freePort } from "../../test/support/redis-server.js";
import { createConnectH2Client, type ConnectH2Client } from "./connect-h2.js";

/** Where the authz replicas keep their state. */
export type BenchRedis = { url: string } | { cluster: Array<{ host: string; port: number }> };

/**
 * Authz replicas for benchmarks: each its own process from the production
 * build (dist/, plain node), sharing one configuration, one signing key and
 * one Redis (a deployment), and lean Connect clients to them (lib/connect-h2.ts).
 */
export interface BenchAuthz {
  readonly replicas: readonly RunningProcess[];
  readonly ports: readonly number[];
  /** Calls a method of AuthorizationService on the replicas in turn. */
  call(method: string, body: Uint8Array, headers?: Record<string, string>): Promise<Buffer>;
  /** Authorize + Decide for the confidential client `web`: a fresh code. */
  mintCode(): Promise<string>;
  /** The ExchangeCode request body for a minted code. */
  exchangeBody(code: string): Uint8Array;
  /** The Introspect request body for a token. */
  introspectBody(token: string): Uint8Array;
  /** Exchanges a code and returns the access and refresh token. */
  issueTokens(): Promise<{ accessToken: string; refreshToken: string }>;
  readonly asWeb: Record<string, string>;
  readonly asResourceServer: Record<string, string>;
  /** The named tenants configured (options.tenants; 0: none). */
  readonly tenants: number;
  /** The same operations in tenant `i` (its client `web` and resource server `rs`, named in every call); undefined: the top level's. */
  inTenant(i: number | undefined): BenchTenant;
  stop(): Promise<void>;
}

/** One tenant's side of BenchAuthz (issue 11). */
export interface BenchTenant {
  mintCode(): Promise<string>;
  issueTokens(): Promise<{ accessToken: string; refreshToken: string }>;
  readonly asWeb: Record<string, string>;
  readonly asResourceServer: Record<string, string>;
}

const REDIRECT_URI = "https://bench.test/cb";

export async function startBenchAuthz(options: {
  replicas: number;
  redis: BenchRedis;
  profileDir?: string;
  /** Named tenants t0 … t{n-1} (BENCH_TENANTS). */
  tenants?: number;
  /** A command that runs each replica's node (callgrind, lib/callgrind.ts): it starts many times slower. */
  wrapper?: readonly string[];
}): Promise<BenchAuthz> {
  const tenantCount = options.tenants ?? 0;
  const secrets = { web: randomBytes(32).toString("base64url"), rs: randomBytes(32).toString("base64url"), service: randomBytes(32).toString("base64url") };
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: "bench", alg: "ES256" }] });
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-"));
  const configFile = join(dir, "config.yaml");
  writeFileSync(
    configFile,
    stringify({
      issuer: "https://auth.bench.test",
      authz: {
        keyPrefix: `bench-${Date.now()}:`,
        ...("cluster" in options.redis ? { redis: { cluster: options.redis.cluster } } : {}),
        serviceCredential: { env: "BENCH_SERVICE_CREDENTIAL" },
        signingKeys: { source: { env: "BENCH_SIGNING_KEYS" } },
        // Under a wrapper (callgrind) every step takes tens of times longer: the deadlines stretch with it.
        ...(options.wrapper === undefined ? {} : { overload: STRETCHED_OVERLOAD }),
      },
      lifetimes: { code: 600 },
      scopes: [{ name: "read", description: "Read" }],
      users: [benchUser()],
      clients: [
        { id: "web", name: "Web", type: "confidential", secretHashes: [`sha256:${hashSecret(secrets.web)}`], redirectUris: [REDIRECT_URI], scopes: ["read"] },
        { id: "rs", name: "Resource server", type: "confidential", secretHashes: [`sha256:${hashSecret(secrets.rs)}`], grantTypes: [], responseTypes: [], introspectAnyToken: true },
      ],
      ...(tenantCount === 0
        ? {}
        : {
            tenants: Array.from({ length: tenantCount }, (_, i) => ({
              name: `t${i}`,
              signingKeys: { source: { env: "BENCH_SIGNING_KEYS" } },
              scopes: [{ name: "read", description: "Read" }],
              clients: [
                { id: "web", name: "Web", type: "confidential", secretHashes: [`sha256:${hashSecret(secrets.web)}`], redirectUris: [REDIRECT_URI], scopes: ["read"] },
                { id: "rs", name: "Resource server", type: "confidential", secretHashes: [`sha256:${hashSecret(secrets.rs)}`], grantTypes: [], responseTypes: [], introspectAnyToken: true },
              ],
            })),
          }),
    }),
  );
  const ports: number[] = [];
  while (ports.length < options.replicas) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const replicas = ports.map((port) =>
    runNode("dist/services/authz/main.js", {
      nodeArgs: options.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.profileDir}`],
      ...(options.wrapper === undefined ? {} : { wrapper: options.wrapper }),
      env: {
        GATEHOUSE_CONFIG: configFile,
        GATEHOUSE_AUTHZ_PORT: String(port),
        REDIS_URL: "url" in options.redis ? options.redis.url : undefined,
        LOG_LEVEL: "warn",
        BENCH_SERVICE_CREDENTIAL: secrets.service,
        BENCH_SIGNING_KEYS: jwks,
      },
    }),
  );
  await Promise.all(ports.map((port) => waitForReady(port, options.wrapper === undefined ? 30 : 600)));

  const clients: ConnectH2Client[] = ports.map((port) => createConnectH2Client(`http://127.0.0.1:${port}`, { sessions: 4 }));
  let turn = 0;
  const call = (method: string, body: Uint8Array, headers: Record<string, string> = {}) =>
    clients[turn++ % clients.length]!.call(`/gatehouse.v1.AuthorizationService/${method}`, body, headers);
  const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}` });
  const asGateway = { "gatehouse-service-credential": secrets.service };
  const asWeb = basic("web", secrets.web);
  const verifier = randomBytes(32).toString("base64url");
  const authorizeBody = toBinary(
    AuthorizeRequestSchema,
    create(AuthorizeRequestSchema, {
      responseType: "code",
      clientId: "web",
      redirectUri: REDIRECT_URI,
      scope: "read",
      codeChallenge: createHash("sha256").update(verifier).digest("base64url"),
      codeChallengeMethod: "S256",
    }),
  );
  const exchangeBody = (code: string) => toBinary(ExchangeCodeRequestSchema, create(ExchangeCodeRequestSchema, { code, redirectUri: REDIRECT_URI, codeVerifier: verifier }));
  const inTenant = (i: number | undefined): BenchTenant => {
    const named = (headers: Record<string, string>) => (i === undefined ? headers : { ...headers, "gatehouse-tenant": `t${i}` });
    const web = named(asWeb);
    const mint = async () => {
      const { requestId } = fromBinary(AuthorizeResponseSchema, await call("Authorize", authorizeBody, named(asGateway)));
      const decision = toBinary(DecideRequestSchema, create(DecideRequestSchema, { requestId, subject: BENCH_SUBJECT, authTime: 1n, approved: true }));
      const { redirectUrl } = fromBinary(DecideResponseSchema, await call("Decide", decision, named(asGateway)));
      return new URL(redirectUrl).searchParams.get("code")!;
    };
    return {
      mintCode: mint,
      async issueTokens() {
        const { token } = fromBinary(ExchangeCodeResponseSchema, await call("ExchangeCode", exchangeBody(await mint()), web));
        return { accessToken: token!.accessToken, refreshToken: token!.refreshToken };
      },
      asWeb: web,
      asResourceServer: named(basic("rs", secrets.rs)),
    };
  };
  const topLevel = inTenant(undefined);
  const mintCode = topLevel.mintCode;

  return {
    replicas,
    ports,
    call,
    mintCode,
    exchangeBody,
    introspectBody: (token) => toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token })),
    issueTokens: topLevel.issueTokens,
    asWeb,
    asResourceServer: basic("rs", secrets.rs),
    tenants: tenantCount,
    inTenant,
    async stop() {
      for (const client of clients) client.close();
      await Promise.all(replicas.map((replica) => replica.stop()));
    },
  };
}

async function waitForReady(port: number, seconds: number): Promise<void> {
  const client = createConnectH2Client(`http://127.0.0.1:${port}`, { sessions: 1 });
  try {
    for (let i = 0; i < seconds * 10; i++) {
      try {
        await client.call("/gatehouse.v1.AuthorizationService/GetMetadata", toBinary(GetMetadataRequestSchema, create(GetMetadataRequestSchema)));
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    throw new Error(`the authz replica on :${port} did not start`);
  } finally {
    client.close();
  }
}
