import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import type { AttemptPolicy, Client, Lifetimes, ScopeDefinition, ServerPolicy, User } from "./oauth/model.js";
import { checkRegisteredRedirectUri } from "./oauth/redirect-uri.js";

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
  /** The gateway's service credential; undefined: no caller may use the gateway-only RPCs. */
  serviceCredential: string | undefined;
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
  /** Seconds between WatchRevocations heartbeats; a subscriber that hears nothing for two stops trusting its cache. */
  revocationHeartbeatSeconds: number;
  /** pino level, from LOG_LEVEL. */
  logLevel: string;
  /** The files this configuration was read from (the YAML and referenced secrets): a change to one reloads it. */
  sources: readonly string[];
}

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

/** Thrown with every problem of a configuration, each prefixed by its path in the file. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export type Environment = Readonly<Record<string, string | undefined>>;

/** Where a secret comes from: never the YAML itself (../shared/DESIGN.md, Configuration). */
const secretRef = z.union([z.strictObject({ env: z.string().min(1) }), z.strictObject({ file: z.string().min(1) })]);
type SecretRef = z.infer<typeof secretRef>;

const seconds = z.number().int().positive();
const hostPort = z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });
const SECRET_HASH = /^sha256:[A-Za-z0-9_-]{43}$/;

const scopeSchema = z.strictObject({
  name: z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, "must be a scope-token (RFC 6749 §3.3): printable ASCII, no space, quote or backslash"),
  description: z.string().min(1),
  routes: z.array(z.unknown()).optional(),
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
  grantTypes: z.array(z.enum(["authorization_code", "refresh_token"])).default(["authorization_code", "refresh_token"]),
  responseTypes: z.array(z.enum(["code", "token"])).default(["code"]),
  pkce: z.strictObject({ required: z.boolean().default(true), allowPlain: z.boolean().default(false) }).default({ required: true, allowPlain: false }),
  refreshGraceSeconds: z.number().int().min(0).max(300).default(0),
  firstParty: z.boolean().default(false),
  introspectAnyToken: z.boolean().default(false),
});

const userSchema = z.strictObject({
  username: z.string().min(1).max(256),
  subject: z.string().min(1).optional(),
  passwordHash: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/, "must be scrypt$N$r$p$salt$hash; make one with `npm run hash-password`"),
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

const fileSchema = z.strictObject({
  issuer: z.string(),
  requireHttps: z.boolean().default(true),
  authz: z
    .strictObject({
      host: z.string().default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(50051),
      redis: redisSchema.optional(),
      keyPrefix: z.string().regex(/^[^{}\s]*$/, "must not contain braces or spaces").default("gatehouse:"),
      signingKeys: z.strictObject({ source: secretRef, activeKid: z.string().optional() }).optional(),
      serviceCredential: secretRef.optional(),
      audience: z.string().min(1).optional(),
      drainTimeoutMs: z.number().int().min(0).max(120_000).default(10_000),
      revocationHeartbeatSeconds: z.number().int().min(1).max(60).default(5),
      rpc: z.strictObject({ fastPath: z.boolean().default(true) }).default({ fastPath: true }),
    })
    .default({ host: "127.0.0.1", port: 50051, keyPrefix: "gatehouse:", drainTimeoutMs: 10_000, revocationHeartbeatSeconds: 5, rpc: { fastPath: true } }),
  lifetimes: z
    .strictObject({
      accessToken: seconds.default(600),
      code: seconds.max(600).default(60),
      refreshToken: seconds.default(14 * 86_400),
      refreshFamily: seconds.default(90 * 86_400),
      request: seconds.default(600),
      session: seconds.default(8 * 3_600),
      consent: seconds.default(30 * 86_400),
    })
    .default({ accessToken: 600, code: 60, refreshToken: 14 * 86_400, refreshFamily: 90 * 86_400, request: 600, session: 8 * 3_600, consent: 30 * 86_400 }),
  attempts: z
    .strictObject({
      windowSeconds: seconds.default(900),
      maxFailuresPerUser: seconds.default(5),
      maxFailuresPerAddress: seconds.default(50),
      delayPerFailureMs: z.number().int().min(0).max(5_000).default(250),
      maxDelayMs: z.number().int().min(0).max(10_000).default(2_000),
    })
    .default({ windowSeconds: 900, maxFailuresPerUser: 5, maxFailuresPerAddress: 50, delayPerFailureMs: 250, maxDelayMs: 2_000 }),
  scopes: z.array(scopeSchema).default([]),
  clients: z.array(clientSchema).default([]),
  users: z.array(userSchema).default([]),
  // The gateway's sections: validated by the gateway.
  gateway: z.unknown().optional(),
  routes: z.unknown().optional(),
});

type ConfigFile = z.infer<typeof fileSchema>;
/** A file's valid parts; list entries that did not parse are holes. */
type SalvagedFile = Omit<ConfigFile, "scopes" | "clients" | "users" | "gateway" | "routes"> & {
  scopes: Array<ConfigFile["scopes"][number] | undefined>;
  clients: Array<ConfigFile["clients"][number] | undefined>;
  users: Array<ConfigFile["users"][number] | undefined>;
};

/**
 * Reads and validates the configuration. `env` is process.env at the only
 * call site (main.ts); tests pass their own.
 */
export function loadAuthzConfig(env: Environment): AuthzConfig {
  // Without GATEHOUSE_CONFIG, the development configuration of the checkout.
  const path = env.GATEHOUSE_CONFIG ?? resolve("config/dev.yaml");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError([`${path}: cannot read the configuration file (${(error as NodeJS.ErrnoException).code ?? String(error)})`]);
  }
  const config = parseAuthzConfig(text, env, path);
  return Object.freeze({ ...config, sources: Object.freeze([path, ...config.sources]) });
}

/** Validates configuration text; every problem is reported, each at its path. */
export function parseAuthzConfig(text: string, env: Environment, source = "config"): AuthzConfig {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(document.errors.map((e) => `${source}: ${e.message.split("\n")[0]}`));
  }
  const raw: unknown = document.toJS() ?? {};
  const parsed = fileSchema.safeParse(raw);
  const problems: string[] = [];
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`));
    // Check what did parse too, so that one run lists every problem.
    buildConfig(salvage(raw), env, problems);
    throw new ConfigError(problems);
  }
  const config = buildConfig(parsed.data, env, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * The parts of an invalid file that are valid on their own, each section and
 * each list entry separately; an invalid entry leaves a hole, so positions in
 * the file (clients[2]) keep their numbers in the problems reported.
 */
function salvage(raw: unknown): SalvagedFile {
  const record = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const section = <T>(schema: z.ZodType<T>, value: unknown): T => {
    const result = schema.safeParse(value);
    return result.success ? result.data : schema.parse(undefined);
  };
  const list = <T>(schema: z.ZodType<T>, value: unknown): Array<T | undefined> =>
    Array.isArray(value) ? value.map((item) => { const result = schema.safeParse(item); return result.success ? result.data : undefined; }) : [];
  const shape = fileSchema.shape;
  return {
    // A missing or malformed issuer was reported by the schema already.
    issuer: typeof record.issuer === "string" ? record.issuer : "https://issuer.invalid",
    requireHttps: section(shape.requireHttps, record.requireHttps),
    authz: section(shape.authz, record.authz),
    lifetimes: section(shape.lifetimes, record.lifetimes),
    attempts: section(shape.attempts, record.attempts),
    scopes: list(scopeSchema, record.scopes),
    clients: list(clientSchema, record.clients),
    users: list(userSchema, record.users),
  };
}

function buildConfig(file: SalvagedFile, env: Environment, problems: string[]): AuthzConfig {
  const requireHttps = file.requireHttps;
  checkIssuer(file.issuer, requireHttps, problems);

  const sources: string[] = [];
  const resolve = (ref: SecretRef, path: string): string | undefined => {
    if ("file" in ref) sources.push(ref.file);
    return resolveSecret(ref, env, path, problems);
  };

  const scopeNames = new Set<string>();
  file.scopes.forEach((scope, i) => {
    if (scope === undefined) return;
    if (scopeNames.has(scope.name)) problems.push(`scopes[${i}].name: duplicate scope ${JSON.stringify(scope.name)}`);
    scopeNames.add(scope.name);
  });

  const scopesComplete = !file.scopes.includes(undefined);
  const clients = new Map<string, Client>();
  file.clients.forEach((client, i) => {
    if (client === undefined) return;
    const at = `clients[${i}]`;
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
    if (client.type === "confidential" && client.secretHashes.length === 0) {
      problems.push(`${at}.secretHashes: a confidential client needs at least one secret hash`);
    }
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
    });
  });

  const users = new Map<string, User>();
  file.users.forEach((user, i) => {
    if (user === undefined) return;
    if (users.has(user.username)) problems.push(`users[${i}].username: duplicate user ${JSON.stringify(user.username)}`);
    users.set(user.username, { username: user.username, subject: user.subject ?? user.username, passwordHash: user.passwordHash });
  });

  const authz = file.authz;
  const redis =
    env.REDIS_URL !== undefined && env.REDIS_URL !== ""
      ? ({ kind: "url", url: env.REDIS_URL, replicaAckTimeoutMs: undefined } as const)
      : buildRedis(authz.redis, resolve);
  const port = env.GATEHOUSE_AUTHZ_PORT === undefined || env.GATEHOUSE_AUTHZ_PORT === "" ? authz.port : Number(env.GATEHOUSE_AUTHZ_PORT);
  if (!/^\d*$/.test(env.GATEHOUSE_AUTHZ_PORT ?? "") || !Number.isInteger(port) || port < 0 || port > 65535) {
    problems.push(`GATEHOUSE_AUTHZ_PORT: must be a port number, got ${JSON.stringify(env.GATEHOUSE_AUTHZ_PORT)}`);
  }

  let signingKeys: AuthzConfig["signingKeys"];
  if (authz.signingKeys !== undefined) {
    const jwks = resolve(authz.signingKeys.source, "authz.signingKeys.source");
    if (jwks !== undefined) {
      const source = "env" in authz.signingKeys.source ? `env ${authz.signingKeys.source.env}` : `file ${authz.signingKeys.source.file}`;
      signingKeys = { jwks, activeKid: authz.signingKeys.activeKid, source };
    }
  }

  const lifetimes: Lifetimes = { ...file.lifetimes };
  if (lifetimes.refreshToken > lifetimes.refreshFamily) problems.push("lifetimes.refreshToken: must not exceed lifetimes.refreshFamily");

  return deepFreeze({
    issuer: file.issuer,
    requireHttps,
    listen: { host: authz.host, port },
    redis,
    keyPrefix: authz.keyPrefix,
    signingKeys,
    serviceCredential: authz.serviceCredential === undefined ? undefined : resolve(authz.serviceCredential, "authz.serviceCredential"),
    audience: authz.audience ?? file.issuer,
    lifetimes,
    attempts: file.attempts,
    scopes: new Map(file.scopes.flatMap((scope) => (scope === undefined ? [] : [[scope.name, { name: scope.name, description: scope.description }] as const]))),
    clients,
    users,
    drainTimeoutMs: authz.drainTimeoutMs,
    rpc: authz.rpc,
    revocationHeartbeatSeconds: authz.revocationHeartbeatSeconds,
    logLevel: checkLogLevel(env.LOG_LEVEL, problems),
    sources,
  });
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

/** RFC 8414 §2: the issuer is an https URL with no query or fragment. */
function checkIssuer(issuer: string, requireHttps: boolean, problems: string[]): void {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    problems.push("issuer: must be an absolute URL");
    return;
  }
  if (url.search !== "" || url.hash !== "" || issuer.includes("?") || issuer.includes("#")) {
    problems.push("issuer: must have no query or fragment (RFC 8414 §2)");
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && !requireHttps)) {
    problems.push("issuer: must use https (RFC 8414 §2); set requireHttps: false for local development");
  }
}

function resolveSecret(ref: SecretRef, env: Environment, path: string, problems: string[]): string | undefined {
  if ("env" in ref) {
    const value = env[ref.env];
    if (value === undefined || value === "") {
      problems.push(`${path}: environment variable ${ref.env} is not set`);
      return undefined;
    }
    return value;
  }
  try {
    return readFileSync(ref.file, "utf8").trim();
  } catch (error) {
    problems.push(`${path}: cannot read ${ref.file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    return undefined;
  }
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function checkLogLevel(level: string | undefined, problems: string[]): string {
  if (level === undefined || level === "") return "info";
  if (!LOG_LEVELS.includes(level)) problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
  return level;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(root)";
  return path.map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`)).join("");
}

/**
 * Freezes the configuration all the way down. Object.freeze does not stop a
 * Map's set() or a Set's add(), so those are replaced by read-only copies.
 */
function deepFreeze<T>(value: T): T {
  if (value instanceof Map) return new ReadOnlyMap([...value].map(([k, v]) => [k, deepFreeze(v)])) as T;
  if (value instanceof Set) return new ReadOnlySet(value) as T;
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const [key, child] of Object.entries(value)) (value as Record<string, unknown>)[key] = deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Collections sealed once built; the constructors fill them before sealing. */
const sealed = new WeakSet<object>();
const refuse = () => {
  throw new TypeError("the configuration is read-only");
};

class ReadOnlyMap<K, V> extends Map<K, V> {
  constructor(entries: Iterable<readonly [K, V]>) {
    super(entries);
    sealed.add(this);
    Object.freeze(this);
  }
  override set(key: K, value: V): this {
    if (sealed.has(this)) refuse();
    return super.set(key, value);
  }
  override delete(): boolean {
    return refuse();
  }
  override clear(): void {
    refuse();
  }
}

class ReadOnlySet<T> extends Set<T> {
  constructor(values: Iterable<T>) {
    super(values);
    sealed.add(this);
    Object.freeze(this);
  }
  override add(value: T): this {
    if (sealed.has(this)) refuse();
    return super.add(value);
  }
  override delete(): boolean {
    return refuse();
  }
  override clear(): void {
    refuse();
  }
}
