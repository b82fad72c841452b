import { z } from "zod";
import { GROUP_NAME, GROUP_NAME_MAX_LENGTH, GROUP_NAME_RULE } from "../startup/group-name.js";
import { loadConfigFile } from "../startup/config-file.js";
import { deepFreeze } from "../startup/deep-freeze.js";
import type { Environment } from "../startup/environment.js";
import { checkIssuer } from "../startup/issuer.js";
import { logLevel } from "../startup/log-level.js";
import { tracingConfig, type TracingConfig } from "../startup/tracing-config.js";
import { portOverride } from "../startup/port-override.js";
import { salvageList } from "../startup/salvage-list.js";
import { salvageSection } from "../startup/salvage-section.js";
import { secretReference as secretRef, type SecretReference } from "../startup/secret-reference.js";
import { createSecretResolver } from "../startup/secret-resolver.js";
import { validateConfig } from "../startup/validate-config.js";
import { DEFAULT_TENANT, TENANT_NAME, TENANT_NAME_MAX_LENGTH, TENANT_NAME_RULE, tenantIssuer } from "../startup/tenant-name.js";
import { resourceUriProblem } from "../startup/resource-uri.js";

export { ConfigError } from "../startup/config-error.js";
export type { Environment } from "../startup/environment.js";

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
    /**
     * The unary client: "lean", the hand-written Connect transport (rpc/connect-unary-transport.ts,
     * measured faster), or "connect", connect-es's own. Both speak the same protocol; one suite tests both.
     */
    transport: "lean" | "connect";
    /**
     * The lean transport's HTTP version to the authz service: "2", one
     * kept-alive h2c session per endpoint; "1.1", a pool of kept-alive
     * HTTP/1.1 connections (README, Speed: measured against each other).
     * Absent (a client built by hand): "2".
     */
    httpVersion?: "2" | "1.1";
    /**
     * The calls of one turn of the event loop sent as one BatchService.CallBatch
     * (rpc/batching-transport.ts; README, Speed). Absent (a client built by hand): true.
     */
    batchCalls?: boolean;
  };
  paths: Readonly<Record<EndpointName, string>>;
  /** Addresses or CIDRs of proxies whose X-Forwarded-For/-Proto are believed. */
  trustedProxies: readonly string[];
  session: { cookieName: string };
  bodyLimitBytes: number;
  /**
   * The token and introspection endpoints served beneath fastify
   * (plugins/lean-token-endpoints.ts), as the guard and the check endpoint
   * are; false: through fastify's request cycle only (the same answers,
   * more CPU per request). For comparing the two in a benchmark.
   */
  leanEndpoints: boolean;
  guard: GuardConfig;
  /** The route table: explicit routes first, then those compiled from scopes[].routes. */
  routes: readonly RouteConfig[];
  drainTimeoutMs: number;
  /**
   * The concurrency limit of the OAuth endpoints and pages (token,
   * introspection, revocation, authorize, login, ...): beyond it a request
   * waits in a short queue, then is answered 503 with Retry-After
   * (temporarily_unavailable). The guard's proxy path has none (README, "Overload").
   */
  overload: { maxConcurrent: number; maxQueue: number; queueTimeoutMs: number };
  logLevel: string;
  /** OpenTelemetry trace export (OTLP/HTTP), from the OTEL_* variables; undefined: tracing off. */
  tracing: TracingConfig | undefined;
  /** The files this configuration was read from (the YAML and referenced secrets): a change to one reloads it. */
  sources: readonly string[];
  /**
   * The named tenants (issue 11; README, "Tenants"), in file order. Each has
   * the browser endpoints under `/{name}` (`/{name}` + each of `paths`) and
   * its RFC 8414 §3.1 metadata at `{paths.metadata}/{name}`; the default
   * tenant keeps the paths as they are. A reload may add, change or remove them.
   */
  tenants: readonly string[];
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
  | "metrics"
  /** The guard's check endpoint for nginx auth_request, Traefik forwardAuth and Caddy forward_auth (gateway/plugins/check-endpoint.ts). */
  | "check"
  /** OpenID Connect Discovery 1.0 §4 (gateway/plugins/openid-routes.ts). */
  | "openidConfiguration"
  /** OpenID Connect Core 1.0 §5.3 UserInfo. */
  | "userinfo"
  /** OpenID Connect RP-Initiated Logout 1.0 §2 end_session_endpoint. */
  | "endSession"
  /** RFC 7591 §3 client registration endpoint; RFC 7592 management at `{register}?client_id=...` (gateway/plugins/registration-routes.ts). */
  | "register";

export interface GuardConfig {
  /** RFC 6750 §3 realm. */
  realm: string;
  /** Introspection results are cached at most this long, and never past the token's exp. */
  cacheTtlSeconds: number;
  cacheMaxEntries: number;
  identityHeaders: { subject: string; client: string; scope: string; tenant: string };
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
  /**
   * Issue 12: groups the resource owner must be in (their current groups, as
   * introspection reports them), besides the scopes; empty: none required.
   * Missing them is a 403 without an RFC 6750 error code (guard/authorize.ts).
   */
  groups?: readonly string[] | undefined;
  /** any: one of the groups suffices (default); all: every one is needed. */
  groupMode?: "any" | "all" | undefined;
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
  /**
   * The tenants whose tokens the route accepts (DEFAULT_TENANT for the top
   * level's): a token of any other tenant is invalid_token here. Default: the
   * default tenant only.
   */
  tenants?: readonly string[] | undefined;
  /**
   * The protected resource the route serves (RFC 9728; `routes[].resource`
   * names one of the `resources` of each of its tenants): its metadata is
   * served, its challenges point at it (§5.1), and `audience` is its URI.
   * Absent: a route of no declared resource.
   */
  resource?: ProtectedResourceConfig | undefined;
}

/**
 * A protected resource as the guard serves it (RFC 9728 §2, §3): what its
 * metadata document says, and where that document lives.
 */
export interface ProtectedResourceConfig {
  /** The canonical URI (RFC 8707 §2, RFC 9728 §1.2 resource identifier); tokens for it carry it in `aud`. */
  uri: string;
  /** RFC 9728 §2 resource_name; "" when none. */
  name: string;
  /** RFC 9728 §2 scopes_supported: the resource's `scopes`, or the scopes of the routes that serve it. */
  scopes: readonly string[];
  /** RFC 9728 §2 authorization_servers: the issuers of the tenants whose tokens the resource's routes accept. */
  authorizationServers: readonly string[];
  /** RFC 9728 §3.1: `/.well-known/oauth-protected-resource` followed by the URI's path (none for "/"). */
  metadataPath: string;
  /** The URI's origin plus metadataPath: the `resource_metadata` of challenges (§5.1). */
  metadataUrl: string;
}

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
  groups: z
    .array(z.string().max(GROUP_NAME_MAX_LENGTH).regex(GROUP_NAME, GROUP_NAME_RULE))
    .min(1, "list at least one group, or leave groups out for a route open to every user")
    .refine((groups) => new Set(groups).size === groups.length, "a group is listed twice")
    .optional(),
  groupMode: z.enum(["any", "all"]).default("any"),
  upstream: httpUrl.optional(),
  forwardAuthorization: z.boolean().default(false),
  caseSensitive: z.boolean().default(true),
  errorStyle: z.enum(["rfc6750", "problem+json"]).default("rfc6750"),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  tenants: z.array(z.string()).min(1, "a route accepts the tokens of at least one tenant").optional(),
  /** The canonical URI of a protected resource declared under `resources` (of each of the route's tenants). */
  resource: z.string().min(1).optional(),
});

/** A protected resource as the gateway reads it (the authz service checks the same entries: services/authz/config.ts). */
const resourceSchema = z.looseObject({
  uri: z.string().min(1),
  name: z.string().min(1).max(200).optional(),
  scopes: z.array(z.string().min(1)).optional(),
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
  // Under a dot-segment name no application route is likely to use; one of the
  // gateway's own paths, so the guard never proxies it, whatever the routes say.
  check: "/.gatehouse/check",
  openidConfiguration: "/.well-known/openid-configuration",
  userinfo: "/oauth2/userinfo",
  endSession: "/oauth2/end-session",
  register: "/oauth2/register",
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
    transport: z.enum(["lean", "connect"]).default("lean"),
    httpVersion: z.enum(["2", "1.1"]).default("2"),
    batchCalls: z.boolean().default(true),
  }),
  paths: z.strictObject(Object.fromEntries(Object.keys(DEFAULT_PATHS).map((k) => [k, path.optional()])) as Record<EndpointName, z.ZodOptional<typeof path>>).default({}),
  trustedProxies: z.array(z.string().min(1)).default([]),
  session: z.strictObject({ cookieName: z.string().regex(/^[A-Za-z0-9_-]+$/).default("gatehouse_session") }).default({ cookieName: "gatehouse_session" }),
  bodyLimitBytes: z.number().int().min(1_024).max(1_048_576).default(16_384),
  leanEndpoints: z.boolean().default(true),
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
          tenant: z.string().regex(/^[A-Za-z0-9-]+$/).default("X-Gatehouse-Tenant"),
        })
        .default({ subject: "X-Gatehouse-Subject", client: "X-Gatehouse-Client", scope: "X-Gatehouse-Scope", tenant: "X-Gatehouse-Tenant" }),
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
      identityHeaders: { subject: "X-Gatehouse-Subject", client: "X-Gatehouse-Client", scope: "X-Gatehouse-Scope", tenant: "X-Gatehouse-Tenant" },
      unmatched: "deny",
      upstreamTimeoutMs: 30_000,
      overrideHeaders: [...DEFAULT_OVERRIDE_HEADERS],
    }),
  drainTimeoutMs: z.number().int().min(0).max(120_000).default(10_000),
  // Defaults: the token endpoint saturates near 2,000 requests/s (issue 16) at
  // a p50 of tens of ms, so 128 in flight is well past saturation (Little's
  // law: 2,000/s × 50 ms = 100); 256 more may wait up to 250 ms.
  overload: z
    .strictObject({
      maxConcurrent: z.number().int().min(1).max(100_000).default(128),
      maxQueue: z.number().int().min(0).max(100_000).default(256),
      queueTimeoutMs: z.number().int().min(1).max(60_000).default(250),
    })
    .default({ maxConcurrent: 128, maxQueue: 256, queueTimeoutMs: 250 }),
});

/** A scope definition as the gateway reads it: the routes it covers; the rest is the authz service's. */
const scopeRoutesSchema = z.looseObject({ name: z.string(), routes: z.array(z.string()).default([]) });

/** A tenant as the gateway reads it: its name; the rest is the authz service's (services/authz/config.ts checks it). */
const tenantNameSchema = z.looseObject({
  name: z.string().max(TENANT_NAME_MAX_LENGTH).regex(TENANT_NAME, TENANT_NAME_RULE),
  resources: z.array(resourceSchema).default([]),
});

const fileSchema = z.looseObject({
  issuer: z.string(),
  requireHttps: z.boolean().default(true),
  gateway: gatewaySchema,
  routes: z.array(routeSchema).default([]),
  scopes: z.array(scopeRoutesSchema).default([]),
  resources: z.array(resourceSchema).default([]),
  tenants: z.array(tenantNameSchema).default([]),
});

type ConfigFile = z.infer<typeof fileSchema>;
type GatewaySection = z.infer<typeof gatewaySchema>;
/**
 * A file's valid parts: each part of `gateway` is its value or its default
 * (`authz` has none: undefined when invalid); list entries that did not parse
 * are holes.
 */
interface SalvagedFile {
  issuer: string;
  requireHttps: boolean;
  gateway: Omit<GatewaySection, "authz"> & { authz: GatewaySection["authz"] | undefined };
  routes: Array<ConfigFile["routes"][number] | undefined>;
  scopes: Array<ConfigFile["scopes"][number] | undefined>;
  resources: Array<ConfigFile["resources"][number] | undefined>;
  tenants: Array<ConfigFile["tenants"][number] | undefined>;
}

/** The ConfigError's message: "invalid gateway configuration: ...". */
const SUBJECT = "gateway configuration";

/**
 * Reads and validates the configuration. `env` is process.env at the only
 * call site (main.ts); tests pass their own.
 */
export function loadGatewayConfig(env: Environment): GatewayConfig {
  return loadConfigFile(env, SUBJECT, (text, path) => parseGatewayConfig(text, env, path));
}

/** Validates configuration text; every problem is reported, each at its path. */
export function parseGatewayConfig(text: string, env: Environment, source = "config"): GatewayConfig {
  return validateConfig(text, source, { subject: SUBJECT, schema: fileSchema, salvage, build: (file, problems) => buildConfig(file, env, problems) });
}

/**
 * The parts of an invalid file that are valid on their own (each part of
 * `gateway`, each route and scope), so that the checks beyond the schema
 * still run on them and one run lists every problem.
 */
function salvage(raw: unknown): SalvagedFile {
  const record = asRecord(raw);
  const gateway = asRecord(record.gateway);
  const shape = gatewaySchema.shape;
  // Defaults always parse, so only `authz` (it has none) can be missing.
  const part = <T>(schema: z.ZodType<T>, key: keyof GatewaySection): T => salvageSection(schema, gateway[key])!;
  const guard = shape.guard.safeParse(gateway.guard);
  return {
    // A missing or malformed issuer was reported by the schema already.
    issuer: typeof record.issuer === "string" ? record.issuer : "https://issuer.invalid",
    requireHttps: salvageSection(fileSchema.shape.requireHttps, record.requireHttps)!,
    gateway: {
      host: part(shape.host, "host"),
      port: part(shape.port, "port"),
      authz: salvageSection(shape.authz, gateway.authz),
      paths: part(shape.paths, "paths"),
      trustedProxies: part(shape.trustedProxies, "trustedProxies"),
      session: part(shape.session, "session"),
      bodyLimitBytes: part(shape.bodyLimitBytes, "bodyLimitBytes"),
      leanEndpoints: part(shape.leanEndpoints, "leanEndpoints"),
      // An invalid guard section stands in with an upstream, so that routes do not also report a missing one.
      guard: guard.success ? guard.data : { ...shape.guard.parse(undefined), defaultUpstream: "http://upstream.invalid" },
      drainTimeoutMs: part(shape.drainTimeoutMs, "drainTimeoutMs"),
      overload: part(shape.overload, "overload"),
    },
    routes: salvageList(routeSchema, record.routes),
    scopes: salvageList(scopeRoutesSchema, record.scopes),
    resources: salvageList(resourceSchema, record.resources),
    tenants: salvageList(tenantNameSchema, record.tenants),
  };
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function buildConfig(file: SalvagedFile, env: Environment, problems: string[]): GatewayConfig {
  const { gateway: g } = file;
  const secrets = createSecretResolver(env, problems);
  // A secret that cannot be resolved is a problem already; "" only fills its place.
  const resolveSecret = (ref: SecretReference, at: string): string => secrets.resolve(ref, at) ?? "";

  problems.push(...checkIssuer(file.issuer, file.requireHttps));

  const routes = attachResources(compileRoutes(file.routes, file.scopes, g.guard.defaultUpstream, problems), file, problems);
  const port = portOverride(env, "GATEHOUSE_GATEWAY_PORT", g.port, problems);
  const endpointsEnv = env.GATEHOUSE_AUTHZ_ENDPOINTS;
  const endpoints = endpointsEnv === undefined || endpointsEnv === "" ? (g.authz?.endpoints ?? []) : endpointsEnv.split(",").map((e) => e.trim());
  for (const endpoint of endpoints) {
    if (!httpUrl.safeParse(endpoint).success) problems.push(`GATEHOUSE_AUTHZ_ENDPOINTS: ${JSON.stringify(endpoint)} is not an http(s) URL`);
  }

  // Without a valid authz section (the schema said why), its secrets are not looked at.
  const authz = g.authz ?? { endpoints, serviceCredential: undefined, clientId: "", clientSecret: undefined, timeoutMs: 0, transport: "lean" as const, httpVersion: "2" as const, batchCalls: true };
  const config: GatewayConfig = {
    issuer: file.issuer,
    requireHttps: file.requireHttps,
    listen: { host: g.host, port },
    authz: {
      endpoints,
      serviceCredential: authz.serviceCredential === undefined ? undefined : resolveSecret(authz.serviceCredential, "gateway.authz.serviceCredential"),
      clientId: authz.clientId,
      clientSecret: authz.clientSecret === undefined ? "" : resolveSecret(authz.clientSecret, "gateway.authz.clientSecret"),
      timeoutMs: authz.timeoutMs,
      transport: authz.transport,
      httpVersion: authz.httpVersion,
      batchCalls: authz.batchCalls,
    },
    paths: { ...DEFAULT_PATHS, ...Object.fromEntries(Object.entries(g.paths).filter(([, v]) => v !== undefined)) },
    trustedProxies: g.trustedProxies,
    session: g.session,
    bodyLimitBytes: g.bodyLimitBytes,
    leanEndpoints: g.leanEndpoints,
    guard: {
      ...g.guard,
      unmatched: g.guard.unmatched === "deny" ? { kind: "deny" } : { kind: "passthrough", upstream: g.guard.unmatched.passthrough },
      defaultUpstream: g.guard.defaultUpstream,
      extAuthz: g.guard.extAuthz,
      overrideHeaders: g.guard.overrideHeaders.map((name) => name.toLowerCase()),
    },
    routes,
    drainTimeoutMs: g.drainTimeoutMs,
    overload: g.overload,
    logLevel: logLevel(env, problems),
    tracing: tracingConfig(env, "gatehouse-gateway", problems),
    sources: secrets.sources(),
    tenants: checkTenants(file, problems),
  };
  if (config.guard.extAuthz !== undefined && config.guard.extAuthz.port !== 0 && config.guard.extAuthz.port === port) {
    problems.push("gateway.guard.extAuthz.port: must differ from the gateway's own port (the Check is served on a listener of its own)");
  }
  const paths = Object.values(config.paths);
  if (new Set(paths).size !== paths.length) problems.push("gateway.paths: two endpoints share a path");
  checkTenantPaths(config, problems);
  return deepFreeze(config);
}

/**
 * The named tenants: slugs, each once, none called DEFAULT_TENANT; and every
 * tenant a route names exists. Problems at their paths in the file.
 */
function checkTenants(file: SalvagedFile, problems: string[]): string[] {
  const names: string[] = [];
  file.tenants.forEach((tenant, i) => {
    if (tenant === undefined) return;
    if (tenant.name === DEFAULT_TENANT) problems.push(`tenants[${i}].name: ${JSON.stringify(DEFAULT_TENANT)} is the top level's tenant; choose another name`);
    else if (names.includes(tenant.name)) problems.push(`tenants[${i}].name: duplicate tenant ${JSON.stringify(tenant.name)} (its issuer would be another tenant's)`);
    else names.push(tenant.name);
  });
  // With a tenant entry that failed to parse, an unknown name may be that one: not a problem of its own.
  if (!file.tenants.includes(undefined)) {
    const known = new Set([DEFAULT_TENANT, ...names]);
    file.routes.forEach((route, i) =>
      route?.tenants?.forEach((name, j) => {
        if (!known.has(name)) problems.push(`routes[${i}].tenants[${j}]: unknown tenant ${JSON.stringify(name)} (define it under tenants, or ${JSON.stringify(DEFAULT_TENANT)} for the top level's)`);
      }),
    );
  }
  return names;
}

/**
 * A tenant's endpoints live under `/{name}`: a name that is the first path
 * segment of one of the gateway's own paths or of a guarded route would make
 * the tenant's issuer path and that path collide (`/api/oauth2/token` would be
 * both the tenant "api"'s token endpoint and a request for the upstream).
 */
function checkTenantPaths(config: GatewayConfig, problems: string[]): void {
  const firstSegment = (path: string) => path.split("/")[1] ?? "";
  const taken = new Map<string, string>();
  for (const [name, path] of Object.entries(config.paths)) {
    if (!taken.has(firstSegment(path))) taken.set(firstSegment(path), `the gateway's path ${path} (gateway.paths.${name})`);
  }
  for (const route of config.routes) {
    const segment = firstSegment(route.path);
    if (segment !== "*" && segment !== "**" && !taken.has(segment)) taken.set(segment, `the path ${route.path} of route ${JSON.stringify(route.name)}`);
  }
  config.tenants.forEach((name, i) => {
    const clash = taken.get(name);
    if (clash !== undefined) problems.push(`tenants[${i}].name: the tenant's issuer path /${name} collides with ${clash}`);
  });
}

/**
 * RFC 9728: each route that names a `resource` gets the protected resource it
 * serves, declared under `resources` (the top level's for the default tenant,
 * `tenants[].resources` for a named one) of every tenant the route accepts.
 * Routes that name the same URI serve one resource: one metadata document,
 * whose authorization servers are the issuers of all their tenants and whose
 * scopes are the resource's `scopes` or else all of theirs. Its token
 * audience is the URI (RFC 8707 §2, RFC 9068 §4), so `audience` may not be
 * given beside it. Problems at their paths.
 */
function attachResources(routes: RouteConfig[], file: SalvagedFile, problems: string[]): RouteConfig[] {
  const declared = new Map<string, Map<string, { name: string; scopes: readonly string[] | undefined }>>();
  const declare = (tenant: string, entries: ReadonlyArray<z.infer<typeof resourceSchema> | undefined>, at: string) => {
    const own = new Map<string, { name: string; scopes: readonly string[] | undefined }>();
    entries.forEach((entry, i) => {
      if (entry === undefined) return;
      const problem = resourceUriProblem(entry.uri, file.requireHttps);
      if (problem !== undefined) problems.push(`${at}[${i}].uri: ${problem}`);
      else if (own.has(entry.uri)) problems.push(`${at}[${i}].uri: duplicate resource ${JSON.stringify(entry.uri)}`);
      else own.set(entry.uri, { name: entry.name ?? "", scopes: entry.scopes });
    });
    declared.set(tenant, own);
  };
  declare(DEFAULT_TENANT, file.resources, "resources");
  file.tenants.forEach((tenant, i) => {
    if (tenant !== undefined) declare(tenant.name, tenant.resources, `tenants[${i}].resources`);
  });

  // One resource per URI, shared by the routes that serve it.
  const served = new Map<string, { name: string; scopes: Set<string>; declaredScopes: readonly string[] | undefined; issuers: Set<string> }>();
  routes.forEach((route, i) => {
    if (route.resource === undefined) return;
    const at = `routes[${i}].resource`;
    const uri = route.resource.uri;
    if (route.audience.length > 0) problems.push(`routes[${i}].audience: a route with a resource accepts tokens for that resource only; leave audience out`);
    let entry = served.get(uri);
    for (const tenant of route.tenants ?? [DEFAULT_TENANT]) {
      const resource = declared.get(tenant)?.get(uri);
      if (resource === undefined) {
        problems.push(`${at}: ${JSON.stringify(uri)} is not declared under ${tenant === DEFAULT_TENANT ? "resources" : `the resources of tenant ${JSON.stringify(tenant)}`}`);
        continue;
      }
      if (entry === undefined) {
        entry = { name: resource.name, scopes: new Set(), declaredScopes: resource.scopes, issuers: new Set() };
        served.set(uri, entry);
      }
      entry.issuers.add(tenant === DEFAULT_TENANT ? file.issuer : tenantIssuer(file.issuer, tenant));
    }
    for (const scope of route.scopes) entry?.scopes.add(scope);
  });

  const byPath = new Map<string, string>();
  const resources = new Map<string, ProtectedResourceConfig>();
  for (const [uri, entry] of served) {
    const url = new URL(uri);
    const metadataPath = `${WELL_KNOWN_PROTECTED_RESOURCE}${url.pathname === "/" ? "" : url.pathname}`;
    const other = byPath.get(metadataPath);
    if (other !== undefined) problems.push(`resources: ${JSON.stringify(uri)} and ${JSON.stringify(other)} would have their metadata at the same path ${metadataPath}`);
    byPath.set(metadataPath, uri);
    resources.set(uri, {
      uri,
      name: entry.name,
      scopes: entry.declaredScopes ?? [...entry.scopes],
      authorizationServers: [...entry.issuers],
      metadataPath,
      metadataUrl: url.origin + metadataPath,
    });
  }
  return routes.map((route) => {
    if (route.resource === undefined) return route;
    const resource = resources.get(route.resource.uri);
    // Undeclared (a problem already): the route keeps no resource, and the configuration is refused anyway.
    if (resource === undefined) return { ...route, resource: undefined };
    return { ...route, resource, audience: [resource.uri] };
  });
}

/** RFC 9728 §3: the well-known URI suffix of protected resource metadata. */
export const WELL_KNOWN_PROTECTED_RESOURCE = "/.well-known/oauth-protected-resource";

/**
 * Both forms of the route table compile to one list: explicit `routes`, and
 * the routes each scope definition lists (seed 000: the resources a scope
 * covers). Scope routes with the same methods and pattern merge into one route
 * that any of those scopes opens.
 */
function compileRoutes(
  explicit: ReadonlyArray<z.infer<typeof routeSchema> | undefined>,
  scopes: ReadonlyArray<{ name: string; routes: string[] } | undefined>,
  defaultUpstream: string | undefined,
  problems: string[],
): RouteConfig[] {
  // A hole is an entry the schema refused (and reported); the others keep their positions.
  const routes: RouteConfig[] = explicit.flatMap((route, i) => {
    if (route === undefined) return [];
    const upstream = route.upstream ?? defaultUpstream;
    if (upstream === undefined) problems.push(`routes[${i}].upstream: required (or set gateway.guard.defaultUpstream)`);
    return {
      name: route.name ?? `routes[${i}]`,
      methods: route.methods,
      path: route.path,
      scopes: route.scopes,
      scopeMode: route.scopeMode,
      groups: route.groups ?? [],
      groupMode: route.groupMode,
      upstream: upstream ?? "",
      forwardAuthorization: route.forwardAuthorization,
      caseSensitive: route.caseSensitive,
      errorStyle: route.errorStyle,
      audience: route.audience === undefined ? [] : [route.audience].flat(),
      tenants: route.tenants ?? [DEFAULT_TENANT],
      // Resolved against `resources` by attachResources, once every route is known.
      ...(route.resource === undefined ? {} : { resource: { uri: route.resource, name: "", scopes: [], authorizationServers: [], metadataPath: "", metadataUrl: "" } }),
    };
  });
  const fromScopes = new Map<string, RouteConfig>();
  scopes.forEach((scope, i) =>
    scope?.routes.forEach((text, j) => {
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
        groups: [],
        groupMode: "any",
        upstream: defaultUpstream,
        forwardAuthorization: false,
        caseSensitive: true,
        errorStyle: "rfc6750",
        audience: [],
        tenants: [DEFAULT_TENANT],
      });
    }),
  );
  return [...routes, ...fromScopes.values()];
}
