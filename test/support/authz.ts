import { scaledBudget } from "./scaled-budget.js";
import { createHash, randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair } from "jose";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { pino, type Logger } from "pino";
import { stringify } from "yaml";
import { SERVICE_CREDENTIAL_HEADER } from "../../contract/metadata.js";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { OAuthErrorDetailSchema, type OAuthErrorDetail } from "../../gen/gatehouse/v1/errors_pb.js";
import { SessionService } from "../../gen/gatehouse/v1/session_service_pb.js";
import { startAuthzService, type RunningAuthz } from "../../services/authz/app.js";
import { parseAuthzConfig, type AuthzConfig } from "../../services/authz/config.js";
import type { DepsOverrides } from "../../services/authz/deps.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";

/** Secrets of the test clients; their SHA-256 digests go into the configuration. */
export const SECRETS = {
  web: "web-client-secret-0123456789abcdefghijklmnopqrstu",
  grace: "grace-client-secret-0123456789abcdefghijklmnopqr",
  legacy: "legacy-client-secret-0123456789abcdefghijklmnopq",
  resourceServer: "resource-server-secret-0123456789abcdefghijklm",
  service: "gateway-service-credential-0123456789abcdefghij",
  gateway: "gateway-client-secret-0123456789abcdefghijklmnop",
} as const;

export const ISSUER = "https://auth.test";
export const WEB_REDIRECT = "https://web.test/callback";
export const SPA_REDIRECT = "https://spa.test/callback";

/** The configuration file of the tests, as data; patch it per test file. */
export function baseConfigFile(): Record<string, unknown> {
  const hash = (secret: string) => `sha256:${hashSecret(secret)}`;
  return {
    issuer: ISSUER,
    requireHttps: true,
    authz: {
      host: "127.0.0.1",
      port: 0,
      serviceCredential: { env: "TEST_SERVICE_CREDENTIAL" },
      signingKeys: { source: { env: "TEST_SIGNING_KEYS" } },
      // A call without a deadline of its own (the tests' clients send none) gets this budget: a loaded
      // test machine's, so that a password hash behind 80 other test files is not cut off (overload.test.ts sets its own).
      overload: { defaultBudgetMs: Math.min(scaledBudget(1_800), 120_000) },
    },
    attempts: { windowSeconds: 60, maxFailuresPerUser: 3, maxFailuresPerAddress: 1000, delayPerFailureMs: 0, maxDelayMs: 0 },
    scopes: [
      { name: "read", description: "Read your things" },
      { name: "write", description: "Change your things" },
      { name: "admin", description: "Administer everything" },
    ],
    clients: [
      {
        id: "web",
        name: "Web App",
        type: "confidential",
        secretHashes: [hash(SECRETS.web)],
        redirectUris: [WEB_REDIRECT, "https://web.test/other?keep=1"],
        scopes: ["read", "write"],
        defaultScopes: ["read"],
      },
      { id: "spa", name: "Single Page App", type: "public", redirectUris: [SPA_REDIRECT], scopes: ["read"] },
      {
        id: "grace",
        name: "Tabbed App",
        type: "confidential",
        secretHashes: [hash(SECRETS.grace)],
        redirectUris: ["https://grace.test/cb"],
        scopes: ["read", "write"],
        refreshGraceSeconds: 5,
      },
      {
        id: "legacy",
        name: "Legacy App",
        type: "confidential",
        secretHashes: [hash(SECRETS.legacy)],
        redirectUris: ["https://legacy.test/cb"],
        scopes: ["read"],
        responseTypes: ["code", "token"],
        grantTypes: ["authorization_code"],
        pkce: { required: false, allowPlain: true },
        firstParty: true,
      },
      {
        id: "gatehouse-gateway",
        name: "Gatehouse Gateway",
        type: "confidential",
        secretHashes: [hash(SECRETS.gateway)],
        grantTypes: [],
        responseTypes: [],
        introspectAnyToken: true,
      },
      {
        id: "resource-server",
        name: "Resource Server",
        type: "confidential",
        secretHashes: [hash(SECRETS.resourceServer)],
        grantTypes: [],
        responseTypes: [],
        introspectAnyToken: true,
      },
    ],
    users: [
      // password: correct horse (cost lowered for tests)
      { username: "alice", subject: "user-alice", passwordHash: TEST_PASSWORD_HASH },
    ],
  };
}

/** scrypt (N=1024) of "correct horse": cheap for tests, same format as production. */
export const TEST_PASSWORD_HASH = "scrypt$1024$8$1$6ZAZWxyouK57njlp5QTzHg$DJ-8k49GIhnch2D25F4p1_EydKU7DRNwaNh968bJnes";

let signingKeys: Promise<string> | undefined;
/** One ES256 key set per test process, passed as production passes it: through the environment. */
export function testSigningKeys(): Promise<string> {
  signingKeys ??= (async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    return JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: "test-1", alg: "ES256" }] });
  })();
  return signingKeys;
}

/** The environment the test configuration's secret references resolve from. */
export async function testEnvironment(redisUrl?: string): Promise<Record<string, string>> {
  return {
    TEST_SERVICE_CREDENTIAL: SECRETS.service,
    TEST_GATEWAY_CLIENT_SECRET: SECRETS.gateway,
    TEST_SIGNING_KEYS: await testSigningKeys(),
    // The admin API's credentials (test/support/admin.ts); used only by tests that configure authz.admin.
    TEST_ADMIN_OPS: "admin-ops-credential-0123456789abcdefghijklmnop",
    TEST_ADMIN_CI: "admin-ci-credential-0123456789abcdefghijklmnopq",
    ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl }),
  };
}

export async function testConfig(
  options: { redisUrl?: string; keyPrefix?: string; patch?: (file: Record<string, unknown>) => void } = {},
): Promise<AuthzConfig> {
  const file = baseConfigFile();
  options.patch?.(file);
  const config = parseAuthzConfig(stringify(file), await testEnvironment(options.redisUrl));
  // Isolate every test run's keys in a shared Redis.
  return { ...config, keyPrefix: options.keyPrefix ?? `test-${randomBytes(6).toString("hex")}:` };
}

export interface TestAuthz {
  readonly running: RunningAuthz;
  readonly transport: Transport;
  readonly authz: Client<typeof AuthorizationService>;
  readonly sessions: Client<typeof SessionService>;
  /** Metadata of the gateway: its service credential. */
  readonly asGateway: { headers: Record<string, string> };
  close(): Promise<void>;
}

/** A real authz service on a random port, and Connect clients over HTTP/2 to it. */
export async function startTestAuthz(
  options: { redisUrl?: string; keyPrefix?: string; patch?: (file: Record<string, unknown>) => void; overrides?: DepsOverrides; log?: Logger } = {},
): Promise<TestAuthz> {
  const config = await testConfig(options);
  const log = options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const running = await startAuthzService(config, log, options.overrides);
  const transport = createConnectTransport({ baseUrl: running.url, httpVersion: "2" });
  return {
    running,
    transport,
    authz: createClient(AuthorizationService, transport),
    sessions: createClient(SessionService, transport),
    asGateway: { headers: { [SERVICE_CREDENTIAL_HEADER]: SECRETS.service } },
    close: () => running.close(1_000),
  };
}

export function basic(clientId: string, secret: string): { headers: Record<string, string> } {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, "+");
  return { headers: { authorization: `Basic ${Buffer.from(`${encode(clientId)}:${encode(secret)}`).toString("base64")}` } };
}

/** A PKCE verifier (RFC 7636 §4.1) and its S256 challenge (§4.2). */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** Runs Authorize and an approving Decide; returns the code and the redirect it came in. */
export async function obtainCode(
  t: Pick<TestAuthz, "authz" | "asGateway">,
  request: { clientId: string; redirectUri?: string; scope?: string; state?: string; codeChallenge?: string; codeChallengeMethod?: string; subject?: string; resource?: string[] },
): Promise<{ code: string; redirect: URL }> {
  const pending = await t.authz.authorize(
    {
      responseType: "code",
      clientId: request.clientId,
      redirectUri: request.redirectUri ?? "",
      scope: request.scope ?? "",
      state: request.state ?? "state-1",
      codeChallenge: request.codeChallenge ?? "",
      codeChallengeMethod: request.codeChallengeMethod ?? (request.codeChallenge ? "S256" : ""),
      resource: request.resource ?? [],
    },
    t.asGateway,
  );
  const { redirectUrl } = await t.authz.decide(
    { requestId: pending.requestId, subject: request.subject ?? "user-alice", authTime: 1_700_000_000n, approved: true },
    t.asGateway,
  );
  const redirect = new URL(redirectUrl);
  const code = redirect.searchParams.get("code");
  if (code === null) throw new Error(`no code in ${redirectUrl}`);
  return { code, redirect };
}

/** A confidential web client's full code flow with PKCE, ending in a token set. */
export async function issueTokens(t: Pick<TestAuthz, "authz" | "asGateway">, options: { clientId?: "web" | "grace"; scope?: string; resource?: string[] } = {}) {
  const clientId = options.clientId ?? "web";
  const secret = clientId === "web" ? SECRETS.web : SECRETS.grace;
  const pkce = pkcePair();
  const redirectUri = clientId === "web" ? WEB_REDIRECT : "https://grace.test/cb";
  const { code } = await obtainCode(t, { clientId, redirectUri, scope: options.scope ?? "read write", codeChallenge: pkce.challenge, ...(options.resource === undefined ? {} : { resource: options.resource }) });
  const { token } = await t.authz.exchangeCode({ code, redirectUri, codeVerifier: pkce.verifier }, basic(clientId, secret));
  return token!;
}

/** The RPC status and OAuth error of a failed call. */
export async function failureOf(call: Promise<unknown>): Promise<{ code: Code; oauth: OAuthErrorDetail | undefined; metadata: Headers }> {
  try {
    await call;
  } catch (error) {
    const connectError = ConnectError.from(error);
    const [oauth] = connectError.findDetails(OAuthErrorDetailSchema);
    return { code: connectError.code, oauth, metadata: connectError.metadata };
  }
  throw new Error("expected the call to fail, and it succeeded");
}
