import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";

/**
 * The gateway's configuration: the `gateway` and `routes` sections of the one
 * YAML file (GATEHOUSE_CONFIG), plus `issuer`, `requireHttps` and the routes
 * that `scopes` cover. The authz service validates its own sections; here they
 * are accepted as they are. Parsed once at start-up; this module is the only
 * reader of process.env (passed in as `env`). Every problem is reported at its
 * path in the file.
 */
export interface GatewayConfig {
  /** The issuer; also the gateway's public base URL, where its endpoints live. */
  issuer: string;
  requireHttps: boolean;
  listen: { host: string; port: number };
  authz: {
    /** Connect base URLs of authz replicas (or one Service address). */
    endpoints: readonly string[];
    /**
     * The gateway's service credential, needed for the browser endpoints
     * (they assert who the resource owner is). Undefined: a guard-only gateway
     * (a sidecar), which serves no OAuth endpoint and needs no such power.
     */
    serviceCredential: string | undefined;
    /** The gateway's own client, for Introspect and Revoke on its own behalf. */
    clientId: string;
    clientSecret: string;
    timeoutMs: number;
  };
  paths: Readonly<Record<EndpointName, string>>;
  /** Addresses or CIDRs of proxies whose X-Forwarded-For/-Proto are believed. */
  trustedProxies: readonly string[];
  session: { cookieName: string };
  bodyLimitBytes: number;
  guard: GuardConfig;
  /** The route table: explicit routes first, then those compiled from scopes[].routes. */
  routes: readonly RouteConfig[];
  drainTimeoutMs: number;
  logLevel: string;
  /** The files this configuration was read from (the YAML and referenced secrets): a change to one reloads it. */
  sources: readonly string[];
}

export type EndpointName =
  | "authorize"
  | "consent"
  | "token"
  | "introspect"
  | "revoke"
  | "login"
  | "logout"
  | "metadata"
  | "jwks"
  | "healthz"
  | "readyz"
  | "metrics";

export interface GuardConfig {
  /** RFC 6750 §3 realm. */
  realm: string;
  /** Introspection results are cached at most this long, and never past the token's exp. */
  cacheTtlSeconds: number;
  cacheMaxEntries: number;
  identityHeaders: { subject: string; client: string; scope: string };
  /** What a path that no route matches gets: 404, or a passthrough to an upstream without any check. */
  unmatched: { kind: "deny" } | { kind: "passthrough"; upstream: string };
  /** Upstream used by routes that come from scopes[].routes (they name no upstream). */
  defaultUpstream: string | undefined;
  upstreamTimeoutMs: number;
  /** Envoy's external authorization (`Check` over gRPC, h2c) on a listener of its own; undefined: off. */
  extAuthz: { host: string; port: number } | undefined;
  /**
   * Request header fields that make common upstream frameworks rewrite the
   * path or method (X-Original-URL, X-HTTP-Method-Override, ...): removed
   * before a request is forwarded, in any letter case and with `_` for `-`.
   * Lower-case; [] turns the removal off.
   */
  overrideHeaders: readonly string[];
}

export interface RouteConfig {
  /** For logs and metrics. */
  name: string;
  /** Upper-case HTTP methods; empty means any. */
  methods: readonly string[];
  /** A path pattern: literal segments, `*` for one segment, `**` (last) for any rest. */
  path: string;
  scopes: readonly string[];
  /** any: one of the scopes suffices (default); all: every one is needed. */
  scopeMode: "any" | "all";
  upstream: string;
  forwardAuthorization: boolean;
  caseSensitive: boolean;
  /** How failures are written: RFC 6750 WWW-Authenticate with a JSON body, or RFC 9457 problem+json. */
  errorStyle: "rfc6750" | "problem+json";
  /**
   * The audiences the route accepts (RFC 9068 §4: the resource server checks
   * that `aud` names it): a token whose `aud` contains none of them is
   * invalid_token. Empty: any audience.
   */
  audience: readonly string[];
}

export class GatewayConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid gateway configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "GatewayConfigError";
  }
}

export type Environment = Readonly<Record<string, string | undefined>>;

const secretRef = z.union([z.strictObject({ env: z.string().min(1) }), z.strictObject({ file: z.string().min(1) })]);
type SecretRef = z.infer<typeof secretRef>;
const httpUrl = z.string().regex(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, "must be an http(s) URL without query or fragment");
const path = z.string().regex(/^\/[\x21-\x7E]*$/, "must be an absolute path");
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
/** A route written as one string, as scopes[].routes are: "GET,HEAD /api/notes/**" or "/api/**". */
const ROUTE_STRING = /^(?:([A-Z]+(?:,[A-Z]+)*)\s+)?(\/\S*)$/;

const routeSchema = z.strictObject({
  name: z.string().min(1).optional(),
  methods: z.array(z.enum(METHODS)).default([]),
  path,
  scopes: z.array(z.string().min(1)).min(1, "a guarded route needs at least one scope"),
  scopeMode: z.enum(["any", "all"]).default("any"),
  upstream: httpUrl.optional(),
  forwardAuthorization: z.boolean().default(false),
  caseSensitive: z.boolean().default(true),
  errorStyle: z.enum(["rfc6750", "problem+json"]).default("rfc6750"),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
});

/** Header fields that make upstream frameworks rewrite the path or method (IIS URL Rewrite, Symfony, Spring, Rails, Express method-override, Envoy). */
export const DEFAULT_OVERRIDE_HEADERS: readonly string[] = [
  "x-original-url",
  "x-rewrite-url",
  "x-original-uri",
  "x-forwarded-uri",
  "x-forwarded-path",
  "x-envoy-original-path",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
];
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, "must be a header field name (RFC 9110 §5.1)");

const DEFAULT_PATHS: Record<EndpointName, string> = {
  authorize: "/oauth2/authorize",
  consent: "/oauth2/consent",
  token: "/oauth2/token",
  introspect: "/oauth2/introspect",
  revoke: "/oauth2/revoke",
  login: "/login",
  logout: "/logout",
  metadata: "/.well-known/oauth-authorization-server",
  jwks: "/.well-known/jwks.json",
  healthz: "/healthz",
  readyz: "/readyz",
  metrics: "/metrics",
};

const gatewaySchema = z.strictObject({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(8080),
  authz: z.strictObject({
    endpoints: z.array(httpUrl).min(1).default(["http://127.0.0.1:50051"]),
    serviceCredential: secretRef.optional(),
    clientId: z.string().min(1),
    clientSecret: secretRef,
    timeoutMs: z.number().int().min(100).max(30_000).default(2_000),
  }),
  paths: z.strictObject(Object.fromEntries(Object.keys(DEFAULT_PATHS).map((k) => [k, path.optional()])) as Record<EndpointName, z.ZodOptional<typeof path>>).default({}),
  trustedProxies: z.array(z.string().min(1)).default([]),
  session: z.strictObject({ cookieName: z.string().regex(/^[A-Za-z0-9_-]+$/).default("gatehouse_session") }).default({ cookieName: "gatehouse_session" }),
  bodyLimitBytes: z.number().int().min(1_024).max(1_048_576).default(16_384),
  guard: z
    .strictObject({
      realm: z.string().regex(/^[^"\\]+$/, "must not contain quotes or backslashes").default("gatehouse"),
      cacheTtlSeconds: z.number().int().min(0).max(300).default(30),
      cacheMaxEntries: z.number().int().min(0).max(10_000_000).default(100_000),
      identityHeaders: z
        .strictObject({
          subject: z.string().regex(/^[A-Za-z0-9-]+$/).default("X-Gatehouse-Subject"),
          client: z.string().regex(/^[A-Za-z0-9-]+$/).default("X-Gatehouse-Client"),
          scope: z.string().regex(/^[A-Za-z0-9-]+$/).default("X-Gatehouse-Scope"),
        })
        .default({ subject: "X-Gatehouse-Subject", client: "X-Gatehouse-Client", scope: "X-Gatehouse-Scope" }),
      unmatched: z.union([z.literal("deny"), z.strictObject({ passthrough: httpUrl })]).default("deny"),
      defaultUpstream: httpUrl.optional(),
      upstreamTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
      extAuthz: z.strictObject({ host: z.string().min(1).default("127.0.0.1"), port: z.number().int().min(0).max(65535) }).optional(),
      overrideHeaders: z.array(headerName).default([...DEFAULT_OVERRIDE_HEADERS]),
    })
    .default({
      realm: "gatehouse",
      cacheTtlSeconds: 30,
      cacheMaxEntries: 100_000,
      identityHeaders: { subject: "X-Gatehouse-Subject", client: "X-Gatehouse-Client", scope: "X-Gatehouse-Scope" },
      unmatched: "deny",
      upstreamTimeoutMs: 30_000,
      overrideHeaders: [...DEFAULT_OVERRIDE_HEADERS],
    }),
  drainTimeoutMs: z.number().int().min(0).max(120_000).default(10_000),
});

const fileSchema = z.looseObject({
  issuer: z.string(),
  requireHttps: z.boolean().default(true),
  gateway: gatewaySchema,
  routes: z.array(routeSchema).default([]),
  scopes: z.array(z.looseObject({ name: z.string(), routes: z.array(z.string()).default([]) })).default([]),
});

export function loadGatewayConfig(env: Environment): GatewayConfig {
  const file = env.GATEHOUSE_CONFIG ?? resolve("config/dev.yaml");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new GatewayConfigError([`${file}: cannot read the configuration file (${(error as NodeJS.ErrnoException).code ?? String(error)})`]);
  }
  const config = parseGatewayConfig(text, env, file);
  return Object.freeze({ ...config, sources: Object.freeze([file, ...config.sources]) });
}

export function parseGatewayConfig(text: string, env: Environment, source = "config"): GatewayConfig {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) throw new GatewayConfigError(document.errors.map((e) => `${source}: ${e.message.split("\n")[0]}`));
  const parsed = fileSchema.safeParse(document.toJS() ?? {});
  if (!parsed.success) throw new GatewayConfigError(parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`));
  const problems: string[] = [];
  const { gateway: g } = parsed.data;
  const sources: string[] = [];
  const resolveSecret = (ref: SecretRef, at: string): string => {
    if ("file" in ref) sources.push(ref.file);
    if ("env" in ref) {
      const value = env[ref.env];
      if (value === undefined || value === "") problems.push(`${at}: environment variable ${ref.env} is not set`);
      return value ?? "";
    }
    try {
      return readFileSync(ref.file, "utf8").trim();
    } catch (error) {
      problems.push(`${at}: cannot read ${ref.file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      return "";
    }
  };

  let issuer: URL | undefined;
  try {
    issuer = new URL(parsed.data.issuer);
  } catch {
    problems.push("issuer: must be an absolute URL");
  }
  if (issuer !== undefined && issuer.protocol !== "https:" && parsed.data.requireHttps) {
    problems.push("issuer: must use https (RFC 8414 §2); set requireHttps: false for local development");
  }

  const routes = compileRoutes(parsed.data.routes, parsed.data.scopes, g.guard.defaultUpstream, problems);
  const portEnv = env.GATEHOUSE_GATEWAY_PORT;
  const port = portEnv === undefined || portEnv === "" ? g.port : Number(portEnv);
  if (!/^\d*$/.test(portEnv ?? "") || !Number.isInteger(port) || port > 65535) {
    problems.push(`GATEHOUSE_GATEWAY_PORT: must be a port number, got ${JSON.stringify(portEnv)}`);
  }
  const endpointsEnv = env.GATEHOUSE_AUTHZ_ENDPOINTS;
  const endpoints = endpointsEnv === undefined || endpointsEnv === "" ? g.authz.endpoints : endpointsEnv.split(",").map((e) => e.trim());
  for (const endpoint of endpoints) {
    if (!httpUrl.safeParse(endpoint).success) problems.push(`GATEHOUSE_AUTHZ_ENDPOINTS: ${JSON.stringify(endpoint)} is not an http(s) URL`);
  }

  const config: GatewayConfig = {
    issuer: parsed.data.issuer,
    requireHttps: parsed.data.requireHttps,
    listen: { host: g.host, port },
    authz: {
      endpoints,
      serviceCredential: g.authz.serviceCredential === undefined ? undefined : resolveSecret(g.authz.serviceCredential, "gateway.authz.serviceCredential"),
      clientId: g.authz.clientId,
      clientSecret: resolveSecret(g.authz.clientSecret, "gateway.authz.clientSecret"),
      timeoutMs: g.authz.timeoutMs,
    },
    paths: { ...DEFAULT_PATHS, ...Object.fromEntries(Object.entries(g.paths).filter(([, v]) => v !== undefined)) },
    trustedProxies: g.trustedProxies,
    session: g.session,
    bodyLimitBytes: g.bodyLimitBytes,
    guard: {
      ...g.guard,
      unmatched: g.guard.unmatched === "deny" ? { kind: "deny" } : { kind: "passthrough", upstream: g.guard.unmatched.passthrough },
      defaultUpstream: g.guard.defaultUpstream,
      extAuthz: g.guard.extAuthz,
      overrideHeaders: g.guard.overrideHeaders.map((name) => name.toLowerCase()),
    },
    routes,
    drainTimeoutMs: g.drainTimeoutMs,
    logLevel: env.LOG_LEVEL === undefined || env.LOG_LEVEL === "" ? "info" : env.LOG_LEVEL,
    sources,
  };
  if (config.guard.extAuthz !== undefined && config.guard.extAuthz.port !== 0 && config.guard.extAuthz.port === port) {
    problems.push("gateway.guard.extAuthz.port: must differ from the gateway's own port (the Check is served on a listener of its own)");
  }
  const paths = Object.values(config.paths);
  if (new Set(paths).size !== paths.length) problems.push("gateway.paths: two endpoints share a path");
  if (problems.length > 0) throw new GatewayConfigError(problems);
  return deepFreeze(config);
}

/**
 * Both forms of the route table compile to one list: explicit `routes`, and
 * the routes each scope definition lists (seed 000: the resources a scope
 * covers). Scope routes with the same methods and pattern merge into one route
 * that any of those scopes opens.
 */
function compileRoutes(
  explicit: ReadonlyArray<z.infer<typeof routeSchema>>,
  scopes: ReadonlyArray<{ name: string; routes: string[] }>,
  defaultUpstream: string | undefined,
  problems: string[],
): RouteConfig[] {
  const routes: RouteConfig[] = explicit.map((route, i) => {
    const upstream = route.upstream ?? defaultUpstream;
    if (upstream === undefined) problems.push(`routes[${i}].upstream: required (or set gateway.guard.defaultUpstream)`);
    return {
      name: route.name ?? `routes[${i}]`,
      methods: route.methods,
      path: route.path,
      scopes: route.scopes,
      scopeMode: route.scopeMode,
      upstream: upstream ?? "",
      forwardAuthorization: route.forwardAuthorization,
      caseSensitive: route.caseSensitive,
      errorStyle: route.errorStyle,
      audience: route.audience === undefined ? [] : [route.audience].flat(),
    };
  });
  const fromScopes = new Map<string, RouteConfig>();
  scopes.forEach((scope, i) =>
    scope.routes.forEach((text, j) => {
      const match = ROUTE_STRING.exec(text.trim());
      if (match === null) {
        problems.push(`scopes[${i}].routes[${j}]: must be "[METHOD[,METHOD...]] /path/pattern", got ${JSON.stringify(text)}`);
        return;
      }
      const methods = match[1] === undefined ? [] : match[1].split(",");
      const unknown = methods.filter((m) => !(METHODS as readonly string[]).includes(m));
      if (unknown.length > 0) problems.push(`scopes[${i}].routes[${j}]: unknown method ${unknown.join(", ")}`);
      if (defaultUpstream === undefined) {
        problems.push(`scopes[${i}].routes[${j}]: a route from a scope needs gateway.guard.defaultUpstream`);
        return;
      }
      const key = `${[...methods].sort().join(",")} ${match[2]}`;
      const existing = fromScopes.get(key);
      if (existing !== undefined) {
        fromScopes.set(key, { ...existing, scopes: [...existing.scopes, scope.name] });
        return;
      }
      fromScopes.set(key, {
        name: `scope ${scope.name}: ${text.trim()}`,
        methods,
        path: match[2]!,
        scopes: [scope.name],
        scopeMode: "any",
        upstream: defaultUpstream,
        forwardAuthorization: false,
        caseSensitive: true,
        errorStyle: "rfc6750",
        audience: [],
      });
    }),
  );
  return [...routes, ...fromScopes.values()];
}

function formatPath(p: readonly PropertyKey[]): string {
  if (p.length === 0) return "(root)";
  return p.map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`)).join("");
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
