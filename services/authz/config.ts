import { z } from "zod";
import type { AttemptPolicy, Client, Lifetimes, ProtectedResource, ScopeDefinition, ServerPolicy, User } from "./oauth/model.js";
import { resourceUriProblem } from "../../startup/resource-uri.js";
import { checkRegisteredRedirectUri } from "./oauth/redirect-uri.js";
import { SUPPORTED_ALGORITHMS, type SigningAlgorithm } from "./oauth/key-ring.js";
import { loadConfigFile } from "../../startup/config-file.js";
import { deepFreeze } from "../../startup/deep-freeze.js";
import type { Environment } from "../../startup/environment.js";
import { checkIssuer } from "../../startup/issuer.js";
import { logLevel } from "../../startup/log-level.js";
import { tracingConfig, type TracingConfig } from "../../startup/tracing-config.js";
import { portOverride } from "../../startup/port-override.js";
import { salvageList } from "../../startup/salvage-list.js";
import { salvageSection } from "../../startup/salvage-section.js";
import { secretReference as secretRef, type SecretReference as SecretRef } from "../../startup/secret-reference.js";
import { createSecretResolver } from "../../startup/secret-resolver.js";
import { validateConfig } from "../../startup/validate-config.js";
import { GROUP_NAME, GROUP_NAME_MAX_LENGTH, GROUP_NAME_RULE } from "../../startup/group-name.js";
import { DEFAULT_TENANT, TENANT_NAME, TENANT_NAME_MAX_LENGTH, TENANT_NAME_RULE, tenantIssuer } from "../../startup/tenant-name.js";
import {
  buildOpenIdClient,
  buildOpenIdPolicy,
  openIdClientFields,
  openIdSectionSchema,
  standardClaimsSchema,
} from "./openid-config.js";
import {
  authenticatesWithoutSecret,
  buildClientAssertionPolicy,
  buildServiceAccountIssuers,
  buildServiceClient,
  clientAssertionsSchema,
  fetchSchema,
  FETCH_DEFAULTS,
  serviceAccountIssuerSchema,
  serviceClientSchema,
  type FetchConfig,
} from "./service-clients-config.js";
import { buildRegistrationPolicy, registrationSchema } from "./registration-config.js";

export { ConfigError } from "../../startup/config-error.js";
export type { Environment } from "../../startup/environment.js";

/**
 * The authz service's configuration: one YAML file (GATEHOUSE_CONFIG), parsed
 * and validated once at start-up. This module is the only reader of
 * process.env (passed in as `env`). A wrong file is reported with every
 * problem at its path in the file, and the service does not start.
 *
 * The same file also holds the gateway's sections (`gateway`, `routes`);
 * they are the gateway's to validate. Scope `routes` likewise.
 */
export interface AuthzConfig extends ServerPolicy {
  issuer: string;
  requireHttps: boolean;
  listen: { host: string; port: number };
  /** Undefined: the in-memory store (one process only). */
  redis: RedisConfig | undefined;
  keyPrefix: string;
  /** JWK Set JSON with private keys; undefined: generate one at start (development only). */
  signingKeys: { jwks: string; activeKid: string | undefined; source: string } | undefined;
  /**
   * Self-rotating signing keys (authz.keyRotation); undefined: not configured.
   * Operator keys (signingKeys) win over it. With neither, the memory store
   * rotates with KEY_ROTATION_DEFAULTS and an ephemeral KEK (deps.ts).
   */
  keyRotation: KeyRotationConfig | undefined;
  /**
   * The gateway's service credential: the first of serviceCredentials (what
   * the all-in-one process hands its in-process gateway); undefined: none.
   */
  serviceCredential: string | undefined;
  /**
   * Every service credential that the gateway-only RPCs accept
   * (authz.serviceCredential: one secret reference, or a list of named ones,
   * so that a credential rotates without a window); empty: nobody may call them.
   */
  serviceCredentials: readonly NamedCredential[];
  /**
   * The admin API (AdminService, issue 12): the named credentials it accepts
   * (authz.admin.credentials); empty: the API is off and every call is
   * Unauthenticated.
   */
  admin: { credentials: readonly NamedCredential[] };
  audience: string;
  lifetimes: Lifetimes;
  attempts: AttemptPolicy;
  scopes: ReadonlyMap<string, ScopeDefinition>;
  clients: ReadonlyMap<string, Client>;
  users: ReadonlyMap<string, User>;
  /** How long SIGTERM waits for in-flight calls and streams. */
  drainTimeoutMs: number;
  /**
   * fastPath: the hand-written Connect unary path (transport/connect-unary.ts, measured faster)
   * takes the calls it can; false: connect-node's adapter serves every call. Clients cannot tell.
   */
  rpc: { fastPath: boolean };
  /** Shedding and deadlines beyond saturation (interceptors/overload.ts; README, "Overload"). */
  overload: AuthzOverload;
  /** Seconds between WatchRevocations heartbeats; a subscriber that hears nothing for two stops trusting its cache. */
  revocationHeartbeatSeconds: number;
  /** pino level, from LOG_LEVEL. */
  logLevel: string;
  /** OpenTelemetry trace export (OTLP/HTTP), from the OTEL_* variables; undefined: tracing off. */
  tracing: TracingConfig | undefined;
  /** Limits of fetching clients' jwks_uri and clusters' key sets (services/authz/fetch/). */
  fetch: FetchConfig;
  /** The files this configuration was read from (the YAML and referenced secrets): a change to one reloads it. */
  sources: readonly string[];
  /**
   * The named tenants (issue 11; README, "Tenants"), by name, in file order.
   * The top level is the default tenant, at the issuer itself; each of these
   * is a whole authorization server of its own at `{issuer}/{name}`.
   */
  tenants: ReadonlyMap<string, TenantConfig>;
}

/** A credential with a name that logs and audit events can show (never the secret). */
export interface NamedCredential {
  name: string;
  secret: string;
}

/** One named tenant: its own policy (issuer, audience, clients, scopes, users, lifetimes, limits) and signing keys. */
export interface TenantConfig extends ServerPolicy {
  name: string;
  /** As AuthzConfig.signingKeys, for this tenant; undefined: generated (development only). */
  signingKeys: AuthzConfig["signingKeys"];
}

/**
 * The authz service's limits. Defaults from bench:rpc on one core: about
 * 3,700 ExchangeCode calls/s at p50 of a few ms, so 64 calls in flight
 * already saturate it (Little's law: 3,700/s × 15 ms ≈ 55); more in flight only
 * lengthens the queue inside the event loop. 128 more may wait up to 250 ms.
 * The deadline chain (innermost gives up first): Redis command 500 ms < this
 * service's budget (the caller's deadline less 200 ms; 1,800 ms without one) <
 * the gateway's RPC deadline (gateway.authz.timeoutMs, 2,000 ms).
 */
export interface AuthzOverload {
  maxConcurrent: number;
  maxQueue: number;
  queueTimeoutMs: number;
  deadlineMarginMs: number;
  defaultBudgetMs: number;
  redisCommandTimeoutMs: number;
}

/** authz.keyRotation: when and how self-rotating signing keys rotate (README, "Signing keys"). Durations in seconds. */
export interface KeyRotationConfig {
  /** The key-encryption key, 32 bytes as base64url; undefined: none configured (allowed on the memory store only: an ephemeral one). */
  keyEncryptionKey: string | undefined;
  /** Where the KEK came from ("env NAME" / "file PATH"), for the log. */
  keyEncryptionKeySource: string | undefined;
  algorithm: SigningAlgorithm;
  rotateEverySeconds: number;
  publishAheadSeconds: number;
  retireMarginSeconds: number;
  heartbeatSeconds: number;
}

/** authz.keyRotation's defaults: a new key every 30 days, published a day ahead, read every 10 s. */
export const KEY_ROTATION_DEFAULTS = {
  algorithm: "ES256",
  rotateEverySeconds: 30 * 86_400,
  publishAheadSeconds: 86_400,
  retireMarginSeconds: 600,
  heartbeatSeconds: 10,
} as const satisfies Partial<KeyRotationConfig>;

export type RedisConfig = (
  | { kind: "url"; url: string }
  | { kind: "sentinel"; name: string; sentinels: Array<{ host: string; port: number }>; password: string | undefined; sentinelPassword: string | undefined }
  | { kind: "cluster"; nodes: Array<{ host: string; port: number }>; password: string | undefined }
) & {
  /**
   * How long a single-use write waits for a replica's acknowledgement, so that
   * a failover cannot undo it (store/redis-store.ts, `durable`); undefined:
   * no waiting. Default 500 ms for Sentinel and Cluster, off for a URL.
   */
  replicaAckTimeoutMs?: number | undefined;
};

const seconds = z.number().int().positive();
const hostPort = z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });
const SECRET_HASH = /^sha256:[A-Za-z0-9_-]{43}$/;

/** The gateway's JWKS cache (gateway/plugins/oauth-routes.ts) is 30 s; a key published for less could meet a verifier that has not seen it. */
const MIN_PUBLISH_AHEAD_SECONDS = 60;

const keyRotationSchema = z.strictObject({
  keyEncryptionKey: secretRef.optional(),
  algorithm: z.enum(SUPPORTED_ALGORITHMS).default(KEY_ROTATION_DEFAULTS.algorithm),
  rotateEverySeconds: seconds.default(KEY_ROTATION_DEFAULTS.rotateEverySeconds),
  publishAheadSeconds: z
    .number()
    .int()
    .min(MIN_PUBLISH_AHEAD_SECONDS, `must be at least ${MIN_PUBLISH_AHEAD_SECONDS}: longer than any cache of the JWKS should live (the gateway's is 30 s)`)
    .default(KEY_ROTATION_DEFAULTS.publishAheadSeconds),
  retireMarginSeconds: z.number().int().min(0).default(KEY_ROTATION_DEFAULTS.retireMarginSeconds),
  heartbeatSeconds: z.number().int().min(1).max(3_600).default(KEY_ROTATION_DEFAULTS.heartbeatSeconds),
});

/** How a credential is named in logs and the audit trail. */
const CREDENTIAL_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const namedCredentialSchema = z.strictObject({
  name: z.string().regex(CREDENTIAL_NAME, "must be 1-64 of A-Z a-z 0-9 . _ -"),
  secret: secretRef,
});
/** Admin secrets open every tenant's directory: at least this long (openssl rand -base64 32 gives 44). */
const ADMIN_SECRET_MIN_LENGTH = 32;
/** Issue 12: a list of group slugs, each at most once. */
const groupList = z
  .array(z.string().max(GROUP_NAME_MAX_LENGTH).regex(GROUP_NAME, GROUP_NAME_RULE))
  .refine((groups) => new Set(groups).size === groups.length, "a group is listed twice");

const scopeSchema = z.strictObject({
  name: z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, "must be a scope-token (RFC 6749 §3.3): printable ASCII, no space, quote or backslash"),
  description: z.string().min(1),
  routes: z.array(z.unknown()).optional(),
  /** Only members of one of these groups may be granted the scope; absent: everyone. */
  groups: groupList.min(1, "list at least one group, or leave groups out for a scope open to every user").optional(),
});

const clientSchema = z.strictObject({
  id: z.string().min(1).regex(/^[\x20-\x7E]+$/, "must be printable ASCII (RFC 6749 Appendix A.1)"),
  name: z.string().min(1),
  type: z.enum(["confidential", "public"]),
  secretHashes: z
    .array(z.union([z.string().regex(SECRET_HASH, "must be sha256:<43 base64url characters>; make one with `npm run hash-secret`"), secretRef]))
    .default([]),
  redirectUris: z.array(z.string()).default([]),
  scopes: z.array(z.string()).default([]),
  defaultScopes: z.array(z.string()).default([]),
  grantTypes: z
    .array(z.enum(["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"]))
    .default(["authorization_code", "refresh_token"]),
  responseTypes: z.array(z.enum(["code", "token"])).default(["code"]),
  pkce: z.strictObject({ required: z.boolean().default(true), allowPlain: z.boolean().default(false) }).default({ required: true, allowPlain: false }),
  refreshGraceSeconds: z.number().int().min(0).max(300).default(0),
  firstParty: z.boolean().default(false),
  introspectAnyToken: z.boolean().default(false),
  // OpenID Connect (services/authz/openid-config.ts).
  ...openIdClientFields,
  service: serviceClientSchema.optional(),
});

const userSchema = z.strictObject({
  username: z.string().min(1).max(256),
  subject: z.string().min(1).optional(),
  passwordHash: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/, "must be scrypt$N$r$p$salt$hash; make one with `npm run hash-password`"),
  claims: standardClaimsSchema.optional(),
  groups: groupList.default([]),
  disabled: z.boolean().default(false),
});

/** false: do not wait for replicas; a number: wait that many ms at most. */
const replicaAck = z.union([z.literal(false), z.number().int().min(1).max(5_000)]).optional();
const redisSchema = z.union([
  z.strictObject({ url: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL"), replicaAckTimeoutMs: replicaAck }),
  z.strictObject({
    sentinels: z.array(hostPort).min(1),
    name: z.string().min(1),
    password: secretRef.optional(),
    sentinelPassword: secretRef.optional(),
    replicaAckTimeoutMs: replicaAck,
  }),
  z.strictObject({ cluster: z.array(hostPort).min(1), password: secretRef.optional(), replicaAckTimeoutMs: replicaAck }),
]);

const OVERLOAD_DEFAULTS: AuthzOverload = {
  maxConcurrent: 64,
  maxQueue: 128,
  queueTimeoutMs: 250,
  deadlineMarginMs: 200,
  defaultBudgetMs: 1_800,
  redisCommandTimeoutMs: 500,
};
const ms = (max: number) => z.number().int().min(1).max(max);
const overloadSchema = z.strictObject({
  maxConcurrent: z.number().int().min(1).max(100_000).default(OVERLOAD_DEFAULTS.maxConcurrent),
  maxQueue: z.number().int().min(0).max(100_000).default(OVERLOAD_DEFAULTS.maxQueue),
  queueTimeoutMs: ms(60_000).default(OVERLOAD_DEFAULTS.queueTimeoutMs),
  deadlineMarginMs: z.number().int().min(0).max(10_000).default(OVERLOAD_DEFAULTS.deadlineMarginMs),
  defaultBudgetMs: ms(120_000).default(OVERLOAD_DEFAULTS.defaultBudgetMs),
  redisCommandTimeoutMs: ms(60_000).default(OVERLOAD_DEFAULTS.redisCommandTimeoutMs),
});

const LIFETIME_DEFAULTS = { accessToken: 600, code: 60, refreshToken: 14 * 86_400, refreshFamily: 90 * 86_400, request: 600, session: 8 * 3_600, consent: 30 * 86_400 };
const lifetimesSchema = z.strictObject({
  accessToken: seconds.default(600),
  code: seconds.max(600).default(60),
  refreshToken: seconds.default(14 * 86_400),
  refreshFamily: seconds.default(90 * 86_400),
  request: seconds.default(600),
  session: seconds.default(8 * 3_600),
  consent: seconds.default(30 * 86_400),
});
const ATTEMPT_DEFAULTS = { windowSeconds: 900, maxFailuresPerUser: 5, maxFailuresPerAddress: 50, delayPerFailureMs: 250, maxDelayMs: 2_000 };
const attemptsSchema = z.strictObject({
  windowSeconds: seconds.default(900),
  maxFailuresPerUser: seconds.default(5),
  maxFailuresPerAddress: seconds.default(50),
  delayPerFailureMs: z.number().int().min(0).max(5_000).default(250),
  maxDelayMs: z.number().int().min(0).max(10_000).default(2_000),
});
const signingKeysSchema = z.strictObject({ source: secretRef, activeKid: z.string().optional() });

/**
 * A named tenant: what the top level holds for the default tenant. Lifetimes
 * and limits it does not set are the top level's. Its scopes' `routes` are
 * not read: a guarded route names the tenants it accepts (gateway routes[].tenants).
 */
/**
 * A protected resource (RFC 8707 §2, RFC 9728): its canonical URI, which
 * clients name with `resource` and tokens carry in `aud`, its name for the
 * consent page, and the scopes the gateway advertises for it (read by the
 * gateway; gateway/config.ts).
 */
const resourceSchema = z.strictObject({
  uri: z.string().min(1),
  name: z.string().min(1).max(200).optional(),
  scopes: z.array(z.string().min(1)).optional(),
});

const tenantSchema = z.strictObject({
  name: z.string().max(TENANT_NAME_MAX_LENGTH).regex(TENANT_NAME, TENANT_NAME_RULE),
  audience: z.string().min(1).optional(),
  resources: z.array(resourceSchema).default([]),
  signingKeys: signingKeysSchema.optional(),
  lifetimes: lifetimesSchema.optional(),
  attempts: attemptsSchema.optional(),
  scopes: z.array(scopeSchema).default([]),
  clients: z.array(clientSchema).default([]),
  users: z.array(userSchema).default([]),
  registration: registrationSchema,
});

const fileSchema = z.strictObject({
  issuer: z.string(),
  requireHttps: z.boolean().default(true),
  authz: z
    .strictObject({
      host: z.string().default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(50051),
      redis: redisSchema.optional(),
      keyPrefix: z.string().regex(/^[^{}\s]*$/, "must not contain braces or spaces").default("gatehouse:"),
      signingKeys: signingKeysSchema.optional(),
      keyRotation: keyRotationSchema.optional(),
      serviceCredential: z.union([secretRef, z.array(namedCredentialSchema).min(1, "list at least one credential, or leave serviceCredential out")]).optional(),
      admin: z.strictObject({ credentials: z.array(namedCredentialSchema).default([]) }).optional(),
      audience: z.string().min(1).optional(),
      drainTimeoutMs: z.number().int().min(0).max(120_000).default(10_000),
      revocationHeartbeatSeconds: z.number().int().min(1).max(60).default(5),
      rpc: z.strictObject({ fastPath: z.boolean().default(true) }).default({ fastPath: true }),
      overload: overloadSchema.default(OVERLOAD_DEFAULTS),
      openid: openIdSectionSchema.optional(),
      clientAssertions: clientAssertionsSchema,
      fetch: fetchSchema,
    })
    .default({ host: "127.0.0.1", port: 50051, keyPrefix: "gatehouse:", drainTimeoutMs: 10_000, revocationHeartbeatSeconds: 5, rpc: { fastPath: true }, overload: OVERLOAD_DEFAULTS }),
  lifetimes: lifetimesSchema.default(LIFETIME_DEFAULTS),
  attempts: attemptsSchema.default(ATTEMPT_DEFAULTS),
  scopes: z.array(scopeSchema).default([]),
  clients: z.array(clientSchema).default([]),
  users: z.array(userSchema).default([]),
  serviceAccountIssuers: z.array(serviceAccountIssuerSchema).default([]),
  resources: z.array(resourceSchema).default([]),
  tenants: z.array(tenantSchema).default([]),
  registration: registrationSchema,
  // The gateway's sections: validated by the gateway.
  gateway: z.unknown().optional(),
  routes: z.unknown().optional(),
  // The all-in-one process's section: validated by all-in-one/config.ts.
  allInOne: z.unknown().optional(),
});

type ConfigFile = z.infer<typeof fileSchema>;
/** A file's valid parts; list entries that did not parse are holes. */
type SalvagedFile = Omit<ConfigFile, "scopes" | "clients" | "users" | "serviceAccountIssuers" | "tenants" | "gateway" | "routes" | "allInOne" | "resources"> &
  SalvagedDirectory & {
    resources: Array<ConfigFile["resources"][number] | undefined>;
    serviceAccountIssuers: Array<ConfigFile["serviceAccountIssuers"][number] | undefined>;
    tenants: Array<ConfigFile["tenants"][number] | undefined>;
  };
/** The clients, scopes and users of the top level or of one tenant. */
interface SalvagedDirectory {
  scopes: Array<ConfigFile["scopes"][number] | undefined>;
  clients: Array<ConfigFile["clients"][number] | undefined>;
  users: Array<ConfigFile["users"][number] | undefined>;
}

/** The ConfigError's message: "invalid configuration: ...". */
const SUBJECT = "configuration";

/**
 * Reads and validates the configuration. `env` is process.env at the only
 * call site (main.ts); tests pass their own.
 */
export function loadAuthzConfig(env: Environment): AuthzConfig {
  return loadConfigFile(env, SUBJECT, (text, path) => parseAuthzConfig(text, env, path));
}

/** Validates configuration text; every problem is reported, each at its path. */
export function parseAuthzConfig(text: string, env: Environment, source = "config"): AuthzConfig {
  return validateConfig(text, source, { subject: SUBJECT, schema: fileSchema, salvage, build: (file, problems) => buildConfig(file, env, problems) });
}

/**
 * The parts of an invalid file that are valid on their own, each section and
 * each list entry separately; an invalid entry leaves a hole, so positions in
 * the file (clients[2]) keep their numbers in the problems reported.
 */
function salvage(raw: unknown): SalvagedFile {
  const record = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  // Every section has a default, so a section is never missing.
  const section = <T>(schema: z.ZodType<T>, value: unknown): T => salvageSection(schema, value)!;
  const shape = fileSchema.shape;
  return {
    // A missing or malformed issuer was reported by the schema already.
    issuer: typeof record.issuer === "string" ? record.issuer : "https://issuer.invalid",
    requireHttps: section(shape.requireHttps, record.requireHttps),
    authz: section(shape.authz, record.authz),
    registration: salvageSection(shape.registration, record.registration),
    lifetimes: section(shape.lifetimes, record.lifetimes),
    attempts: section(shape.attempts, record.attempts),
    scopes: salvageList(scopeSchema, record.scopes),
    clients: salvageList(clientSchema, record.clients),
    users: salvageList(userSchema, record.users),
    serviceAccountIssuers: salvageList(serviceAccountIssuerSchema, record.serviceAccountIssuers),
    resources: salvageList(resourceSchema, record.resources),
    tenants: salvageList(tenantSchema, record.tenants),
  };
}

function buildConfig(file: SalvagedFile, env: Environment, problems: string[]): AuthzConfig {
  const requireHttps = file.requireHttps;
  problems.push(...checkIssuer(file.issuer, requireHttps));

  const secrets = createSecretResolver(env, problems);
  const resolve = secrets.resolve;
  const serviceAccountIssuers = buildServiceAccountIssuers(file.serviceAccountIssuers, file.issuer);
  // OpenID Connect's acr and pairwise salt are the deployment's, the same in every tenant (authz.openid).
  const openid = buildOpenIdPolicy(file.authz.openid, resolve);
  const directoryContext = { requireHttps, resolve, serviceAccountIssuers, openid, pairwiseSaltConfigured: file.authz.openid?.pairwiseSalt !== undefined };
  const { scopes, clients, users } = buildDirectory(file, "", { ...directoryContext, audience: file.authz.audience ?? file.issuer }, problems);
  const registration = buildRegistrationPolicy(file.registration, "registration", { scopes: new Set(scopes.keys()), resolve }, problems);

  const authz = file.authz;
  const redis =
    env.REDIS_URL !== undefined && env.REDIS_URL !== ""
      ? ({ kind: "url", url: env.REDIS_URL, replicaAckTimeoutMs: undefined } as const)
      : buildRedis(authz.redis, resolve);
  const port = portOverride(env, "GATEHOUSE_AUTHZ_PORT", authz.port, problems);
  if (authz.overload.redisCommandTimeoutMs >= authz.overload.defaultBudgetMs) {
    problems.push("authz.overload.redisCommandTimeoutMs: must be shorter than defaultBudgetMs, so that a Redis timeout is answered before the call's budget runs out");
  }

  const signingKeys = buildSigningKeys(authz.signingKeys, "authz.signingKeys", resolve);
  const serviceCredentials =
    authz.serviceCredential === undefined
      ? []
      : Array.isArray(authz.serviceCredential)
        ? resolveCredentials(authz.serviceCredential, "authz.serviceCredential", resolve, problems)
        : resolveCredentials([{ name: "gateway", secret: authz.serviceCredential }], "authz.serviceCredential", (ref, path) => resolve(ref, path.replace(/\[0\]\.secret$/, "")), problems);
  const keyRotation = buildKeyRotation(authz.keyRotation, redis !== undefined, resolve, problems);
  const lifetimes: Lifetimes = { ...file.lifetimes };
  checkLifetimes(lifetimes, "lifetimes", problems);

  const tenants = new Map<string, TenantConfig>();
  file.tenants.forEach((tenant, i) => {
    if (tenant === undefined) return;
    const at = `tenants[${i}]`;
    // The default tenant is the top level; a tenant called so would have two issuers.
    if (tenant.name === DEFAULT_TENANT) problems.push(`${at}.name: ${JSON.stringify(DEFAULT_TENANT)} is the top level's tenant; choose another name`);
    if (tenants.has(tenant.name)) problems.push(`${at}.name: duplicate tenant ${JSON.stringify(tenant.name)} (its issuer would be another tenant's)`);
    const issuer = tenantIssuer(file.issuer, tenant.name);
    const directory = buildDirectory(tenant, `${at}.`, { ...directoryContext, audience: tenant.audience ?? issuer }, problems);
    const tenantLifetimes: Lifetimes = { ...(tenant.lifetimes ?? lifetimes) };
    if (tenant.lifetimes !== undefined) checkLifetimes(tenantLifetimes, `${at}.lifetimes`, problems);
    tenants.set(tenant.name, {
      name: tenant.name,
      issuer,
      audience: tenant.audience ?? issuer,
      ...directory,
      lifetimes: tenantLifetimes,
      attempts: tenant.attempts ?? file.attempts,
      resources: buildResources(tenant.resources, `${at}.resources`, requireHttps, problems),
      signingKeys: buildSigningKeys(tenant.signingKeys, `${at}.signingKeys`, resolve),
      registration: buildRegistrationPolicy(tenant.registration, `${at}.registration`, { scopes: new Set(directory.scopes.keys()), resolve }, problems),
    });
  });

  return deepFreeze({
    issuer: file.issuer,
    requireHttps,
    listen: { host: authz.host, port },
    redis,
    keyPrefix: authz.keyPrefix,
    signingKeys,
    keyRotation,
    serviceCredential: serviceCredentials[0]?.secret,
    serviceCredentials,
    admin: { credentials: resolveCredentials(authz.admin?.credentials ?? [], "authz.admin.credentials", resolve, problems, ADMIN_SECRET_MIN_LENGTH) },
    audience: authz.audience ?? file.issuer,
    lifetimes,
    attempts: file.attempts,
    scopes,
    clients,
    users,
    resources: buildResources(file.resources, "resources", requireHttps, problems),
    ...openid,
    drainTimeoutMs: authz.drainTimeoutMs,
    rpc: authz.rpc,
    overload: authz.overload,
    revocationHeartbeatSeconds: authz.revocationHeartbeatSeconds,
    logLevel: logLevel(env, problems),
    tracing: tracingConfig(env, "gatehouse-authz", problems),
    clientAssertions: buildClientAssertionPolicy(authz.clientAssertions),
    serviceAccountIssuers,
    registration,
    fetch: {
      ...FETCH_DEFAULTS,
      ...(authz.fetch ?? {}),
      trustedCa: authz.fetch?.trustedCa === undefined ? undefined : resolve(authz.fetch.trustedCa, "authz.fetch.trustedCa"),
    },
    sources: secrets.sources(),
    tenants,
  });
}

/**
 * Named credentials with their secrets resolved: names unique, secrets
 * distinct (one secret under two names would make the name a guess), and at
 * least `minLength` characters.
 */
function resolveCredentials(
  list: ReadonlyArray<z.infer<typeof namedCredentialSchema>>,
  at: string,
  resolve: (ref: SecretRef, path: string) => string | undefined,
  problems: string[],
  minLength = 1,
): NamedCredential[] {
  const credentials: NamedCredential[] = [];
  list.forEach((entry, i) => {
    if (credentials.some((c) => c.name === entry.name)) problems.push(`${at}[${i}].name: duplicate credential name ${JSON.stringify(entry.name)}`);
    const secret = resolve(entry.secret, `${at}[${i}].secret`);
    if (secret === undefined) return;
    if (secret.length < minLength) {
      problems.push(`${at}[${i}].secret: must be at least ${minLength} characters (make one with openssl rand -base64 32)`);
      return;
    }
    if (credentials.some((c) => c.secret === secret)) problems.push(`${at}[${i}].secret: the same secret as another credential; give each its own`);
    credentials.push({ name: entry.name, secret });
  });
  return credentials;
}

/**
 * The protected resources of the top level or of a tenant, by canonical URI:
 * RFC 8707 §2, each an absolute URI without a fragment; https unless
 * requireHttps is off; each once.
 */
function buildResources(
  entries: ReadonlyArray<z.infer<typeof resourceSchema> | undefined>,
  at: string,
  requireHttps: boolean,
  problems: string[],
): ReadonlyMap<string, ProtectedResource> {
  const resources = new Map<string, ProtectedResource>();
  entries.forEach((entry, i) => {
    if (entry === undefined) return;
    const problem = resourceUriProblem(entry.uri, requireHttps);
    if (problem !== undefined) problems.push(`${at}[${i}].uri: ${problem}`);
    else if (resources.has(entry.uri)) problems.push(`${at}[${i}].uri: duplicate resource ${JSON.stringify(entry.uri)}`);
    else resources.set(entry.uri, { uri: entry.uri, name: entry.name ?? "" });
  });
  return resources;
}

function checkLifetimes(lifetimes: Lifetimes, at: string, problems: string[]): void {
  if (lifetimes.refreshToken > lifetimes.refreshFamily) problems.push(`${at}.refreshToken: must not exceed ${at}.refreshFamily`);
}

function buildSigningKeys(
  section: z.infer<typeof signingKeysSchema> | undefined,
  at: string,
  resolve: (ref: SecretRef, path: string) => string | undefined,
): AuthzConfig["signingKeys"] {
  if (section === undefined) return undefined;
  const jwks = resolve(section.source, `${at}.source`);
  if (jwks === undefined) return undefined;
  const source = "env" in section.source ? `env ${section.source.env}` : `file ${section.source.file}`;
  return { jwks, activeKid: section.activeKid, source };
}

/**
 * The scopes, clients and users of the top level (`at` "") or of one tenant
 * (`at` "tenants[i]."), checked within that directory only: client ids and
 * usernames are unique per tenant, and two tenants may both have a "web".
 */
function buildDirectory(
  file: SalvagedDirectory,
  prefix: string,
  context: {
    requireHttps: boolean;
    resolve: (ref: SecretRef, path: string) => string | undefined;
    /** The deployment's service account issuers (serviceAccountIssuers), which any directory's service clients may name. */
    serviceAccountIssuers: ReturnType<typeof buildServiceAccountIssuers>;
    /** This directory's access token audience: a service client's default subject audience. */
    audience: string;
    /** authz.openid as policy (acr, pairwise salt), and whether a pairwise salt is configured at all. */
    openid: Pick<ServerPolicy, "acr" | "pairwiseSalt">;
    pairwiseSaltConfigured: boolean;
  },
  problems: string[],
): Pick<ServerPolicy, "scopes" | "clients" | "users" | "acr" | "pairwiseSalt"> {
  const { requireHttps, resolve, serviceAccountIssuers } = context;
  const scopeNames = new Set<string>();
  file.scopes.forEach((scope, i) => {
    if (scope === undefined) return;
    if (scopeNames.has(scope.name)) problems.push(`${prefix}scopes[${i}].name: duplicate scope ${JSON.stringify(scope.name)}`);
    scopeNames.add(scope.name);
  });

  const scopesComplete = !file.scopes.includes(undefined);
  const clients = new Map<string, Client>();
  file.clients.forEach((client, i) => {
    if (client === undefined) return;
    const at = `${prefix}clients[${i}]`;
    if (clients.has(client.id)) problems.push(`${at}.id: duplicate client id ${JSON.stringify(client.id)}`);
    client.redirectUris.forEach((uri, j) => {
      const problem = checkRegisteredRedirectUri(uri, requireHttps);
      if (problem !== undefined) problems.push(`${at}.redirectUris[${j}]: ${problem}`);
    });
    client.scopes.forEach((scope, j) => {
      // With a scope definition that failed to parse, an unknown name may be that one: not a problem of its own.
      if (scopesComplete && !scopeNames.has(scope)) problems.push(`${at}.scopes[${j}]: unknown scope ${JSON.stringify(scope)} (define it under scopes)`);
    });
    client.defaultScopes.forEach((scope, j) => {
      if (!client.scopes.includes(scope)) problems.push(`${at}.defaultScopes[${j}]: ${JSON.stringify(scope)} is not in this client's scopes`);
    });
    const secretHashes = client.secretHashes.flatMap((entry, j) => {
      if (typeof entry === "string") return [entry.slice("sha256:".length)];
      const value = resolve(entry, `${at}.secretHashes[${j}]`)?.trim();
      if (value === undefined) return [];
      if (!SECRET_HASH.test(value)) {
        problems.push(`${at}.secretHashes[${j}]: the referenced value must be sha256:<43 base64url characters>`);
        return [];
      }
      return [value.slice("sha256:".length)];
    });
    if (client.type === "confidential" && client.secretHashes.length === 0 && !authenticatesWithoutSecret(client.service)) {
      problems.push(`${at}.secretHashes: a confidential client needs at least one secret hash`);
    }
    const service = buildServiceClient(
      client.service,
      client,
      { at, issuers: new Set(serviceAccountIssuers.map((cluster) => cluster.issuer)), defaultSubjectAudience: context.audience },
      problems,
    );
    if (client.type === "public") {
      if (client.secretHashes.length > 0) problems.push(`${at}.secretHashes: a public client has no secret (RFC 6749 §2.1)`);
      if (!client.pkce.required) problems.push(`${at}.pkce.required: public clients must use PKCE (RFC 9700 §2.1.1)`);
      if (client.introspectAnyToken) problems.push(`${at}.introspectAnyToken: a public client cannot authenticate to introspect`);
    }
    if (client.grantTypes.includes("refresh_token") && !client.grantTypes.includes("authorization_code")) {
      problems.push(`${at}.grantTypes: refresh_token needs authorization_code, the only grant that issues refresh tokens`);
    }
    if (client.responseTypes.length > 0 && client.redirectUris.length === 0) {
      problems.push(`${at}.redirectUris: a client that uses the authorization endpoint needs at least one redirect URI`);
    }
    if (client.responseTypes.includes("code") && !client.grantTypes.includes("authorization_code")) {
      problems.push(`${at}.responseTypes: response type code needs the authorization_code grant type`);
    }
    clients.set(client.id, {
      id: client.id,
      name: client.name,
      type: client.type,
      secretHashes,
      redirectUris: client.redirectUris,
      scopes: client.scopes,
      defaultScopes: client.defaultScopes,
      grantTypes: new Set(client.grantTypes),
      responseTypes: new Set(client.responseTypes),
      pkce: client.pkce,
      refreshGraceSeconds: client.refreshGraceSeconds,
      firstParty: client.firstParty,
      introspectAnyToken: client.introspectAnyToken,
      ...buildOpenIdClient(client, at, problems, context.pairwiseSaltConfigured, requireHttps),
      ...(service === undefined ? {} : { service }),
    });
  });

  const users = new Map<string, User>();
  file.users.forEach((user, i) => {
    if (user === undefined) return;
    if (users.has(user.username)) problems.push(`${prefix}users[${i}].username: duplicate user ${JSON.stringify(user.username)}`);
    users.set(user.username, {
      username: user.username,
      subject: user.subject ?? user.username,
      passwordHash: user.passwordHash,
      ...(user.claims === undefined ? {} : { claims: user.claims }),
      groups: user.groups,
      disabled: user.disabled,
    });
  });

  return {
    scopes: new Map(
      file.scopes.flatMap((scope) =>
        scope === undefined ? [] : [[scope.name, { name: scope.name, description: scope.description, ...(scope.groups === undefined ? {} : { groups: scope.groups }) }] as const],
      ),
    ),
    ...context.openid,
    clients,
    users,
  };
}

function buildKeyRotation(
  rotation: SalvagedFile["authz"]["keyRotation"],
  withRedis: boolean,
  resolve: (ref: SecretRef, path: string) => string | undefined,
  problems: string[],
): KeyRotationConfig | undefined {
  if (rotation === undefined) return undefined;
  const at = "authz.keyRotation";
  let keyEncryptionKey: string | undefined;
  let keyEncryptionKeySource: string | undefined;
  if (rotation.keyEncryptionKey === undefined) {
    if (withRedis) {
      problems.push(`${at}.keyEncryptionKey: required with Redis, where private signing keys are stored sealed under it; give { env: NAME } or { file: PATH } holding 32 random bytes (openssl rand -base64 32)`);
    }
  } else {
    const ref = rotation.keyEncryptionKey;
    const value = resolve(ref, `${at}.keyEncryptionKey`);
    keyEncryptionKeySource = "env" in ref ? `env ${ref.env}` : `file ${ref.file}`;
    if (value !== undefined) {
      keyEncryptionKey = decodeKeyEncryptionKey(value);
      if (keyEncryptionKey === undefined) {
        problems.push(`${at}.keyEncryptionKey: the referenced value must be 32 random bytes in base64 (44 characters) or hex (64); make one with openssl rand -base64 32`);
      }
    }
  }
  if (rotation.publishAheadSeconds >= rotation.rotateEverySeconds) {
    problems.push(`${at}.publishAheadSeconds: must be shorter than rotateEverySeconds (${rotation.rotateEverySeconds}), since each key is published ahead within its predecessor's term`);
  }
  if (rotation.heartbeatSeconds * 2 > rotation.publishAheadSeconds) {
    problems.push(`${at}.heartbeatSeconds: must be at most half of publishAheadSeconds (${rotation.publishAheadSeconds}), so that every replica reads a new key well before it signs`);
  }
  return {
    keyEncryptionKey,
    keyEncryptionKeySource,
    algorithm: rotation.algorithm,
    rotateEverySeconds: rotation.rotateEverySeconds,
    publishAheadSeconds: rotation.publishAheadSeconds,
    retireMarginSeconds: rotation.retireMarginSeconds,
    heartbeatSeconds: rotation.heartbeatSeconds,
  };
}

/** 32 bytes as base64 / base64url (43 or 44 characters) or hex (64), returned as base64url; undefined otherwise. */
function decodeKeyEncryptionKey(value: string): string | undefined {
  const text = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex").toString("base64url");
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const bytes = Buffer.from(text.replace(/\+/g, "-").replace(/\//g, "_").replace(/=$/, ""), "base64url");
    if (bytes.length === 32) return bytes.toString("base64url");
  }
  return undefined;
}

function buildRedis(
  redis: SalvagedFile["authz"]["redis"],
  resolve: (ref: SecretRef, path: string) => string | undefined,
): RedisConfig | undefined {
  if (redis === undefined) return undefined;
  const ack = (fallback: number | undefined) => (redis.replicaAckTimeoutMs === false ? undefined : (redis.replicaAckTimeoutMs ?? fallback));
  if ("url" in redis) return { kind: "url", url: redis.url, replicaAckTimeoutMs: ack(undefined) };
  if ("sentinels" in redis) {
    return {
      kind: "sentinel",
      name: redis.name,
      sentinels: redis.sentinels,
      password: redis.password && resolve(redis.password, "authz.redis.password"),
      sentinelPassword: redis.sentinelPassword && resolve(redis.sentinelPassword, "authz.redis.sentinelPassword"),
      replicaAckTimeoutMs: ack(500),
    };
  }
  return { kind: "cluster", nodes: redis.cluster, password: redis.password && resolve(redis.password, "authz.redis.password"), replicaAckTimeoutMs: ack(500) };
}
