import { connect } from "node:net";
import { stringify } from "yaml";
import { expect } from "vitest";
import { parseGatewayConfig, type GatewayConfig } from "../../gateway/config.js";
import type { GuardOutcome } from "../../gateway/metrics.js";
import { SECRETS, baseConfigFile, basic, issueTokens, startTestAuthz, testEnvironment, type TestAuthz } from "./authz.js";
import { startEchoUpstream, type EchoUpstream, type ReceivedRequest } from "./echo-upstream.js";
import { gatewaySection } from "./stack.js";

/**
 * The guard's decision table, shared by its three entrances (issue 10): the
 * sidecar proxy, the HTTP check endpoint (nginx auth_request, Traefik
 * forwardAuth) and Envoy's ext_authz `Check`. Every entrance must give every
 * case the same verdict.
 *
 * A case is entrance-neutral: a method, a raw request target and header
 * fields in order (repeats allowed) go in; the status, the error code, the
 * outcome (as the pipeline counts it), whether a Bearer challenge comes back,
 * and what reaches the upstream come out. Token placeholders (`{read}`, ...)
 * in targets and header values are replaced with the fixture's tokens.
 *
 * Start the fixture with one call:
 *
 *   const table = await startGuardDecisionFixture({ redisUrl: inject("redisUrl") });
 *   const config = await table.gatewayConfig(port);   // routes, scopes, guard section, authz endpoint
 *   ... start the entrance from `config` (createGatewayDeps + buildApp, or your own server) ...
 *   for each case: table.upstream.received.length = 0; send table.resolve(case); table.verify(case, observed)
 */

/** The tokens the table uses. */
export type TokenName = "read" | "write" | "admin" | "readAdmin" | "expired" | "revoked" | "refresh" | "mcp";

/** What an entrance sends for a case. */
export interface DecisionRequest {
  readonly method: string;
  /** The request target exactly as sent (origin-form), tricks included. */
  readonly target: string;
  /** Header fields in order, as sent; a name may repeat. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** The verdict every entrance must give. */
export interface DecisionExpectation {
  readonly status: number;
  /**
   * The error code of the refusal (the body's `error`, and the challenge's
   * `error` for 400/401/403); undefined for an allowed request and for a
   * request without any token (RFC 6750 §3.1: no error code).
   */
  readonly error: string | undefined;
  /** The pipeline's outcome (gatehouse_guard_requests_total{outcome}). */
  readonly outcome: GuardOutcome;
  /** The refusal carries `WWW-Authenticate: Bearer ...` (RFC 6750 §3). */
  readonly challenge: boolean;
  /** Parameters the challenge must carry besides realm and error (RFC 9728 §5.1 resource_metadata, scope). */
  readonly challengeParams?: Readonly<Record<string, string>>;
  /** The request reaches the upstream, with the verified identity headers (never the caller's). */
  readonly identity: boolean;
  /**
   * The path the upstream gets: the normal form that was checked. The sidecar
   * forwards it; an entrance whose proxy forwards the original target may
   * ignore it.
   */
  readonly upstreamPath?: string;
  /** Header fields (lower case) that must not reach the upstream. */
  readonly notForwarded?: readonly string[];
  /** Header fields (lower case) that must reach the upstream. */
  readonly forwarded?: readonly string[];
}

export interface DecisionCase {
  readonly name: string;
  /** What the case is about. */
  readonly kind: "allowed" | "refusal" | "path trick" | "header trick";
  readonly request: DecisionRequest;
  readonly expect: DecisionExpectation;
  /**
   * The case is about the client's `Connection` field, which only an
   * entrance that sees the client's own hop can judge (the sidecar, Envoy's
   * headers). Behind nginx the auth subrequest carries nginx's Connection,
   * not the client's; nginx itself never drops Host or Authorization for it.
   */
  readonly connectionOption?: true;
}

/** The audience of the fixture's tokens (authz.audience). */
export const TABLE_AUDIENCE = "https://api.gatehouse.test";
/** A protected resource (RFC 9728) of the table: its routes take only the `mcp` token, issued for it (RFC 8707). */
export const TABLE_MCP_RESOURCE = "https://mcp.gatehouse.test/mcp";
const TABLE_MCP_METADATA = "https://mcp.gatehouse.test/.well-known/oauth-protected-resource/mcp";
/** The subject and client of the fixture's tokens, as the identity headers carry them. */
export const TABLE_SUBJECT = "user-alice";
export const TABLE_CLIENT = "web";
/** Issue 12: the groups of the table's user. */
export const TABLE_GROUPS = ["staff"];
export const IDENTITY_HEADERS = { subject: "x-gatehouse-subject", client: "x-gatehouse-client", scope: "x-gatehouse-scope" } as const;
const REALM = "decision-table";

/** The table's routes, against the upstream at `upstream`. */
export function decisionTableRoutes(upstream: string): Array<Record<string, unknown>> {
  return [
    { name: "notes-read", methods: ["GET"], path: "/api/notes/**", scopes: ["read"], upstream },
    { name: "notes-write", methods: ["POST", "PUT", "DELETE"], path: "/api/notes/**", scopes: ["write"], upstream },
    { name: "admin", path: "/api/admin/**", scopes: ["admin"], upstream },
    { name: "any-of", methods: ["GET"], path: "/api/any/**", scopes: ["read", "admin"], upstream },
    { name: "report", methods: ["GET"], path: "/api/report", scopes: ["read", "admin"], scopeMode: "all", upstream },
    { name: "forwarded", path: "/api/forward/**", scopes: ["read"], upstream, forwardAuthorization: true },
    { name: "loose", methods: ["GET"], path: "/Loose/*/items", scopes: ["read"], upstream, caseSensitive: false },
    { name: "overlap-any", path: "/api/overlap/**", scopes: ["read"], upstream },
    { name: "overlap-get", methods: ["GET"], path: "/api/overlap/x", scopes: ["write"], upstream },
    { name: "other-audience", path: "/api/partner/**", scopes: ["read"], upstream, audience: "https://partner.example" },
    { name: "our-audience", path: "/api/mine/**", scopes: ["read"], upstream, audience: ["https://partner.example", TABLE_AUDIENCE] },
    { name: "mcp", path: "/mcp/**", scopes: ["read"], upstream, resource: TABLE_MCP_RESOURCE },
    { name: "mcp-admin", path: "/mcp-admin/**", scopes: ["admin"], upstream, resource: TABLE_MCP_RESOURCE },
    // Issue 12: routes that require the resource owner's groups too; the table's user is in TABLE_GROUPS.
    { name: "staff", methods: ["GET"], path: "/api/staff/**", scopes: ["read"], groups: ["staff"], upstream },
    { name: "ops", methods: ["GET"], path: "/api/ops/**", scopes: ["read"], groups: ["ops"], upstream },
    { name: "ops-problem", methods: ["GET"], path: "/api/ops-problem/**", scopes: ["read"], groups: ["ops"], upstream, errorStyle: "problem+json" },
    { name: "ops-or-staff", methods: ["GET"], path: "/api/either/**", scopes: ["read"], groups: ["ops", "staff"], upstream },
    { name: "ops-and-staff", methods: ["GET"], path: "/api/both/**", scopes: ["read"], groups: ["ops", "staff"], groupMode: "all", upstream },
  ];
}

const ALL_OVERRIDE_HEADERS = [
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

const bearer = (token: TokenName): readonly [string, string] => ["Authorization", `Bearer {${token}}`];
const allowed = (upstreamPath: string, extra: Partial<DecisionExpectation> = {}): DecisionExpectation => ({
  status: 200,
  error: undefined,
  outcome: "allowed",
  challenge: false,
  identity: true,
  upstreamPath,
  ...extra,
});
const refused = (status: number, error: string | undefined, outcome: GuardOutcome, challenge = status === 400 || status === 401 || status === 403): DecisionExpectation => ({
  status,
  error,
  outcome,
  challenge,
  identity: false,
});
const get = (target: string, ...headers: Array<readonly [string, string]>): DecisionRequest => ({ method: "GET", target, headers });

/** The cases. */
export const GUARD_DECISION_TABLE: readonly DecisionCase[] = [
  // --- allowed, in each scope mode -------------------------------------------------------------
  { name: "a live token with the route's one scope", kind: "allowed", request: get("/api/notes/1", bearer("read")), expect: allowed("/api/notes/1") },
  {
    name: "scopeMode any: one of the route's scopes (admin of read, admin)",
    kind: "allowed",
    request: get("/api/any/x", bearer("admin")),
    expect: allowed("/api/any/x"),
  },
  { name: "scopeMode all: every one of the route's scopes", kind: "allowed", request: get("/api/report", bearer("readAdmin")), expect: allowed("/api/report") },
  { name: "another method, another route and scope (POST with write)", kind: "allowed", request: { method: "POST", target: "/api/notes/1", headers: [bearer("write"), ["Content-Length", "0"]] }, expect: allowed("/api/notes/1") },
  { name: "the query string passes unchanged", kind: "allowed", request: get("/api/notes/1?b=2&a=%2F%20x&a=3", bearer("read")), expect: allowed("/api/notes/1") },
  {
    name: "forwardAuthorization: the route's upstream gets the caller's Authorization",
    kind: "allowed",
    request: get("/api/forward/x", bearer("read")),
    expect: allowed("/api/forward/x", { forwarded: ["authorization"] }),
  },
  {
    name: "a route that names its audience(s) takes a token whose aud contains one",
    kind: "allowed",
    request: get("/api/mine/x", bearer("read")),
    expect: allowed("/api/mine/x"),
  },
  { name: "a case-insensitive route in another letter case", kind: "allowed", request: get("/LOOSE/a/ITEMS", bearer("read")), expect: allowed("/LOOSE/a/ITEMS") },
  { name: "RFC 8707 §2: a protected resource's route takes a token issued for it (aud)", kind: "allowed", request: get("/mcp/tools", bearer("mcp")), expect: allowed("/mcp/tools") },
  { name: "issue 12: the scope, and the resource owner in the route's group", kind: "allowed", request: get("/api/staff/x", bearer("read")), expect: allowed("/api/staff/x") },
  { name: "issue 12: groupMode any: the resource owner in one of the route's groups", kind: "allowed", request: get("/api/either/x", bearer("read")), expect: allowed("/api/either/x") },

  // --- refusals ------------------------------------------------------------------------------------
  { name: "RFC 6750 §3.1: no token: 401 with a challenge and no error code", kind: "refusal", request: get("/api/notes/1"), expect: refused(401, undefined, "missing_token") },
  { name: "another scheme (Basic) is no bearer token", kind: "refusal", request: get("/api/notes/1", ["Authorization", basic("web", SECRETS.web).headers.authorization!]), expect: refused(401, undefined, "missing_token") },
  { name: "a malformed token (not a b64token)", kind: "refusal", request: get("/api/notes/1", ["Authorization", "Bearer abc def"]), expect: refused(401, "invalid_token", "invalid_token") },
  { name: "empty Bearer credentials", kind: "refusal", request: get("/api/notes/1", ["Authorization", "Bearer"]), expect: refused(401, "invalid_token", "invalid_token") },
  { name: "an unknown token", kind: "refusal", request: get("/api/notes/1", ["Authorization", "Bearer not-a-real-token"]), expect: refused(401, "invalid_token", "invalid_token") },
  {
    name: "a forged JWT",
    kind: "refusal",
    request: get("/api/notes/1", ["Authorization", "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"]),
    expect: refused(401, "invalid_token", "invalid_token"),
  },
  { name: "a revoked token (RFC 7009)", kind: "refusal", request: get("/api/notes/1", bearer("revoked")), expect: refused(401, "invalid_token", "invalid_token") },
  { name: "an expired token", kind: "refusal", request: get("/api/notes/1", bearer("expired")), expect: refused(401, "invalid_token", "invalid_token") },
  { name: "a refresh token is not a bearer token", kind: "refusal", request: get("/api/notes/1", bearer("refresh")), expect: refused(401, "invalid_token", "invalid_token") },
  { name: "RFC 6750 §3.1 insufficient_scope: a live token without the scope", kind: "refusal", request: get("/api/notes/1", bearer("write")), expect: refused(403, "insufficient_scope", "insufficient_scope") },
  { name: "scopeMode all: one of two scopes is not enough", kind: "refusal", request: get("/api/report", bearer("read")), expect: refused(403, "insufficient_scope", "insufficient_scope") },
  {
    name: "issue 12: the scope, but the resource owner outside the route's group: 403 without an RFC 6750 code",
    kind: "refusal",
    request: get("/api/ops/x", bearer("read")),
    expect: refused(403, undefined, "insufficient_rights"),
  },
  {
    name: "issue 12: the same refusal on a problem+json route",
    kind: "refusal",
    request: get("/api/ops-problem/x", bearer("read")),
    expect: refused(403, undefined, "insufficient_rights"),
  },
  { name: "issue 12: groupMode all: one of two groups is not enough", kind: "refusal", request: get("/api/both/x", bearer("read")), expect: refused(403, undefined, "insufficient_rights") },
  {
    name: "issue 12: in the route's group but without its scope is insufficient_scope (both must hold)",
    kind: "refusal",
    request: get("/api/staff/x", bearer("write")),
    expect: refused(403, "insufficient_scope", "insufficient_scope"),
  },
  {
    name: "issue 12: neither scope nor group: insufficient_scope, which the client can mend, is said first",
    kind: "refusal",
    request: get("/api/ops/x", bearer("write")),
    expect: refused(403, "insufficient_scope", "insufficient_scope"),
  },
  { name: "RFC 9068 §4: a token for another audience is invalid_token", kind: "refusal", request: get("/api/partner/x", bearer("read")), expect: refused(401, "invalid_token", "invalid_token") },
  {
    name: "RFC 9728 §5.1: no token at a protected resource: 401 naming its metadata and the scope",
    kind: "refusal",
    request: get("/mcp/tools"),
    expect: { ...refused(401, undefined, "missing_token"), challengeParams: { scope: "read", resource_metadata: TABLE_MCP_METADATA } },
  },
  {
    name: "RFC 8707 §2, RFC 9068 §4: a token not issued for the resource is invalid_token there (no token passthrough)",
    kind: "refusal",
    request: get("/mcp/tools", bearer("read")),
    expect: { ...refused(401, "invalid_token", "invalid_token"), challengeParams: { scope: "read", resource_metadata: TABLE_MCP_METADATA } },
  },
  {
    name: "RFC 9728 §5.1: the resource's token without the route's scope: 403 insufficient_scope with the scope and the metadata",
    kind: "refusal",
    request: get("/mcp-admin/x", bearer("mcp")),
    expect: { ...refused(403, "insufficient_scope", "insufficient_scope"), challengeParams: { scope: "admin", resource_metadata: TABLE_MCP_METADATA } },
  },
  { name: "a token for the protected resource is invalid_token at a route of another audience", kind: "refusal", request: get("/api/mine/x", bearer("mcp")), expect: refused(401, "invalid_token", "invalid_token") },
  { name: "no route: deny by default", kind: "refusal", request: get("/nothing/here", bearer("readAdmin")), expect: refused(404, "not_found", "not_found") },
  { name: "a method no route lists for the path is no route", kind: "refusal", request: { method: "DELETE", target: "/api/report", headers: [bearer("readAdmin")] }, expect: refused(404, "not_found", "not_found") },
  { name: "two routes cover the request: denied (a configuration problem)", kind: "refusal", request: get("/api/overlap/x", bearer("readAdmin")), expect: refused(500, "server_error", "ambiguous_route") },
  { name: "a case variant of a case-sensitive route", kind: "refusal", request: get("/API/notes/1", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },

  // --- path tricks (a read token must never reach /api/admin) ---------------------------------
  { name: "dot segments resolve before matching: notes/../admin needs admin", kind: "path trick", request: get("/api/notes/../admin/users", bearer("read")), expect: refused(403, "insufficient_scope", "insufficient_scope") },
  { name: "dot segments that resolve to a read route pass as the normal form", kind: "path trick", request: get("/api/admin/../notes/1", bearer("read")), expect: allowed("/api/notes/1") },
  { name: "empty segments collapse", kind: "path trick", request: get("//api///notes//1", bearer("read")), expect: allowed("/api/notes/1") },
  { name: "escaped unreserved characters are decoded", kind: "path trick", request: get("/api/%6eotes/%31", bearer("read")), expect: allowed("/api/notes/1") },
  { name: "an encoded dot segment (%2e%2e)", kind: "path trick", request: get("/api/notes/%2e%2e/admin/users", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "a half-encoded dot segment (.%2E)", kind: "path trick", request: get("/api/notes/.%2E/admin/users", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "an encoded slash (%2f)", kind: "path trick", request: get("/api/notes/..%2fadmin/users", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "an encoded slash between segments (%2F)", kind: "path trick", request: get("/api/notes%2F1", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "double encoding (%252e)", kind: "path trick", request: get("/api/notes/%252e%252e/admin/users", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "a raw backslash", kind: "path trick", request: get("/api/notes/..\\admin/users", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "an encoded backslash (%5c)", kind: "path trick", request: get("/api/notes/..%5cadmin/users", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "an overlong UTF-8 dot (%c0%ae)", kind: "path trick", request: get("/api/notes/%c0%ae%c0%ae/admin/users", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "a path parameter (;)", kind: "path trick", request: get("/api/admin;/users", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "a segment ending in a dot", kind: "path trick", request: get("/api/admin./users", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "an encoded NUL", kind: "path trick", request: get("/api/notes/%00", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "climbing above the root", kind: "path trick", request: get("/../api/notes/1", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  { name: "the gateway's own endpoint spelled differently", kind: "path trick", request: get("/oauth2/tok%65n", bearer("read")), expect: refused(400, "invalid_request", "bad_request") },
  {
    name: "NFKC: fullwidth full stops (U+FF0E, %EF%BC%8E) as a dot segment",
    kind: "path trick",
    request: get("/api/notes/%EF%BC%8E%EF%BC%8E/admin/x", bearer("read")),
    expect: refused(400, "invalid_request", "bad_request"),
  },
  {
    name: "NFKC: a fullwidth solidus (U+FF0F) as a slash",
    kind: "path trick",
    request: get("/api/notes/..%EF%BC%8Fadmin/x", bearer("read")),
    expect: refused(400, "invalid_request", "bad_request"),
  },
  {
    name: "NFKC: one dot leaders (U+2024) as a dot segment",
    kind: "path trick",
    request: get("/api/notes/%E2%80%A4%E2%80%A4/admin/x", bearer("read")),
    expect: refused(400, "invalid_request", "bad_request"),
  },
  {
    name: "NFKC: a fullwidth reverse solidus (U+FF3C) as a backslash",
    kind: "path trick",
    request: get("/api/notes/..%EF%BC%BCadmin/x", bearer("read")),
    expect: refused(400, "invalid_request", "bad_request"),
  },

  // --- header tricks ---------------------------------------------------------------------------------
  {
    name: "RFC 6750 §3.1: two Authorization fields are invalid_request",
    kind: "header trick",
    request: get("/api/notes/1", bearer("write"), bearer("read")),
    expect: refused(400, "invalid_request", "bad_request"),
  },
  { name: "RFC 6750 §2.3 is not accepted: a token in the query is invalid_request", kind: "header trick", request: get("/api/notes/1?access_token={read}"), expect: refused(400, "invalid_request", "bad_request") },
  {
    name: "a token in the query next to one in the header is invalid_request too",
    kind: "header trick",
    request: get("/api/notes/1?x=1&access_token={read}", bearer("read")),
    expect: refused(400, "invalid_request", "bad_request"),
  },
  ...ALL_OVERRIDE_HEADERS.map(
    (name): DecisionCase => ({
      name: `${name} (a path or method override) does not reach the upstream`,
      kind: "header trick",
      request: get("/api/notes/1", bearer("read"), [name, name.includes("method") ? "DELETE" : "/api/admin/users"]),
      expect: allowed("/api/notes/1", { notForwarded: [name] }),
    }),
  ),
  {
    name: "an override header spelled with underscores does not reach the upstream",
    kind: "header trick",
    request: get("/api/notes/1", bearer("read"), ["X_Original_URL", "/api/admin/users"]),
    expect: allowed("/api/notes/1", { notForwarded: ["x_original_url"] }),
  },
  {
    name: "RFC 9110 §7.6.1: Connection may not name Host",
    kind: "header trick",
    request: get("/api/notes/1", bearer("read"), ["Connection", "host"]),
    expect: refused(400, "invalid_request", "bad_request"),
    connectionOption: true,
  },
  {
    name: "Connection may not name Authorization (on a route that forwards it)",
    kind: "header trick",
    request: get("/api/forward/x", bearer("read"), ["Connection", "keep-alive, Authorization"]),
    expect: refused(400, "invalid_request", "bad_request"),
    connectionOption: true,
  },
  {
    name: "Connection may not name an identity header",
    kind: "header trick",
    request: get("/api/notes/1", bearer("read"), ["Connection", "X-Gatehouse-Subject"]),
    expect: refused(400, "invalid_request", "bad_request"),
    connectionOption: true,
  },
  {
    name: "a caller's identity headers are replaced by the verified ones",
    kind: "header trick",
    request: get("/api/notes/1", bearer("read"), ["X-Gatehouse-Subject", "admin"], ["X-Gatehouse-Client", "evil"], ["X-Gatehouse-Scope", "admin"]),
    expect: allowed("/api/notes/1"),
  },
  {
    name: "a caller's identity header spelled with underscores does not reach the upstream",
    kind: "header trick",
    request: get("/api/notes/1", bearer("read"), ["X_Gatehouse_Subject", "admin"]),
    expect: allowed("/api/notes/1", { notForwarded: ["x_gatehouse_subject"] }),
  },
  {
    name: "a caller's identity headers on a refused request reach nothing",
    kind: "header trick",
    request: get("/api/admin/users", bearer("read"), ["X-Gatehouse-Scope", "admin"]),
    expect: refused(403, "insufficient_scope", "insufficient_scope"),
  },
];

/** A response as an entrance test observed it, and what the upstream received for it. */
export interface ObservedDecision {
  readonly status: number;
  /** The WWW-Authenticate field, if any. */
  readonly wwwAuthenticate: string | undefined;
  /** The refusal's body (JSON); "" when allowed or not observed. */
  readonly body: string;
  /** What the upstream received (undefined: nothing). */
  readonly upstream: ReceivedRequest | undefined;
}

export interface GuardDecisionFixture {
  readonly authz: TestAuthz;
  /** The echo upstream every route points at; clear `received` before each case. */
  readonly upstream: EchoUpstream;
  readonly redisUrl: string;
  readonly tokens: Readonly<Record<TokenName, string>>;
  /** The table's additions to a configuration file (routes, guard section, authz audience). */
  patch(file: Record<string, unknown>): void;
  /** A gateway configuration listening on `port`, with the table's routes and this authz service. */
  gatewayConfig(port: number, patch?: (file: Record<string, unknown>) => void): Promise<GatewayConfig>;
  /** The request of a case with the tokens filled in. */
  resolve(c: DecisionCase): DecisionRequest;
  /** Asserts the table's verdict on what an entrance answered and what reached the upstream. */
  verify(c: DecisionCase, observed: ObservedDecision): void;
  close(): Promise<void>;
}

/**
 * Starts what the table needs, all real: an authz service on Redis (tokens
 * carry aud TABLE_AUDIENCE), an echo upstream, and the table's tokens (one
 * expired, issued while the authz service's clock stood two hours back; one
 * revoked; a refresh token).
 */
export async function startGuardDecisionFixture(options: { redisUrl: string }): Promise<GuardDecisionFixture> {
  const upstream = await startEchoUpstream();
  let offset = 0;
  const patch = (file: Record<string, unknown>) => {
    const clients = file.clients as Array<Record<string, unknown>>;
    clients.find((c) => c.id === "web")!.scopes = ["read", "write", "admin"];
    (file.users as Array<Record<string, unknown>>).find((u) => u.username === "alice")!.groups = TABLE_GROUPS;
    file.requireHttps = false;
    (file.authz as Record<string, unknown>).audience = TABLE_AUDIENCE;
    file.routes = decisionTableRoutes(upstream.url);
    file.resources = [{ uri: TABLE_MCP_RESOURCE, name: "Decision table MCP server" }];
    const gateway = (file.gateway as Record<string, unknown> | undefined) ?? {};
    file.gateway = { ...gateway, guard: { ...((gateway.guard as Record<string, unknown> | undefined) ?? {}), realm: REALM, upstreamTimeoutMs: 5_000 } };
  };
  const authz = await startTestAuthz({
    redisUrl: options.redisUrl,
    patch: (file) => {
      file.issuer = "http://127.0.0.1";
      patch(file);
    },
    overrides: { clock: () => Date.now() + offset },
  });
  const issue = async (scope: string) => issueTokens(authz, { scope });
  const [read, write, admin, readAdmin, revoked, mcp] = await Promise.all([
    issue("read"),
    issue("write"),
    issue("admin"),
    issue("read admin"),
    issue("read"),
    issueTokens(authz, { scope: "read", resource: [TABLE_MCP_RESOURCE] }),
  ]);
  // Access tokens live 600 s; one issued two hours ago is long expired.
  offset = -2 * 3_600_000;
  const expired = await issue("read");
  offset = 0;
  await authz.authz.revoke({ token: revoked.accessToken }, basic("web", SECRETS.web));
  const tokens: Record<TokenName, string> = {
    read: read.accessToken,
    write: write.accessToken,
    admin: admin.accessToken,
    readAdmin: readAdmin.accessToken,
    expired: expired.accessToken,
    revoked: revoked.accessToken,
    refresh: read.refreshToken,
    mcp: mcp.accessToken,
  };
  const fill = (text: string) => text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in tokens ? tokens[name as TokenName] : whole));
  const scopeOf: Record<string, string> = { [tokens.read]: "read", [tokens.write]: "write", [tokens.admin]: "admin", [tokens.readAdmin]: "read admin", [tokens.mcp]: "read" };

  return {
    authz,
    upstream,
    redisUrl: options.redisUrl,
    tokens,
    patch,
    async gatewayConfig(port, extra) {
      const file = baseConfigFile();
      file.issuer = `http://127.0.0.1:${port}`;
      patch(file);
      const gateway = file.gateway as Record<string, unknown>;
      file.gateway = { ...gatewaySection(authz.running.url, port), ...gateway };
      extra?.(file);
      return parseGatewayConfig(stringify(file), await testEnvironment(options.redisUrl));
    },
    resolve(c) {
      return { method: c.request.method, target: fill(c.request.target), headers: c.request.headers.map(([name, value]) => [name, fill(value)] as const) };
    },
    verify(c, observed) {
      const e = c.expect;
      const label = `${c.name}: ${observed.status} ${observed.body}`;
      expect(observed.status, label).toBe(e.status);
      if (e.challenge) {
        expect(observed.wwwAuthenticate, label).toMatch(new RegExp(`^Bearer realm="${REALM}"`));
        const params = Object.entries(e.challengeParams ?? {});
        if (e.outcome === "missing_token" && e.error === undefined && params.length === 0) expect(observed.wwwAuthenticate, label).toBe(`Bearer realm="${REALM}"`);
        else if (e.outcome === "missing_token" && e.error === undefined) expect(observed.wwwAuthenticate, label).not.toContain("error=");
        else if (e.error === undefined) {
          // Issue 12: missing rights: a challenge (RFC 6750 §3) with a description and no error code.
          expect(observed.wwwAuthenticate, label).toMatch(new RegExp(`^Bearer realm="${REALM}", error_description="[^"]+"$`));
        } else expect(observed.wwwAuthenticate, label).toContain(`error="${e.error}"`);
        for (const [name, value] of params) expect(observed.wwwAuthenticate, label).toContain(`${name}="${value}"`);
      } else {
        expect(observed.wwwAuthenticate, label).toBeUndefined();
      }
      if (e.status !== 200 && observed.body !== "") {
        const body = JSON.parse(observed.body) as { error?: string; error_description?: string; detail?: string };
        expect(body.error, label).toBe(e.error);
        // A refusal for missing rights names no group (guard/authorize.ts).
        if (e.outcome === "insufficient_rights") expect(body.error_description ?? body.detail, label).not.toMatch(/ops|staff/);
      }
      if (!e.identity) {
        expect(observed.upstream, `${label}: nothing may reach the upstream`).toBeUndefined();
        return;
      }
      const received = observed.upstream;
      expect(received, `${label}: the upstream must see the request`).toBeDefined();
      const headers = received!.headers;
      expect(headers[IDENTITY_HEADERS.subject], label).toBe(TABLE_SUBJECT);
      expect(headers[IDENTITY_HEADERS.client], label).toBe(TABLE_CLIENT);
      const authorization = c.request.headers.find(([name]) => name.toLowerCase() === "authorization")?.[1];
      const token = authorization === undefined ? undefined : fill(authorization).slice("Bearer ".length);
      if (token !== undefined && scopeOf[token] !== undefined) expect(headers[IDENTITY_HEADERS.scope], label).toBe(scopeOf[token]);
      // Only the verified identity: exactly one value of each, in no other spelling.
      for (const name of Object.values(IDENTITY_HEADERS)) {
        const spellings = received!.rawHeaders.filter((raw, i) => i % 2 === 0 && raw.toLowerCase().replace(/_/g, "-") === name);
        expect(spellings, `${label}: ${name}`).toHaveLength(1);
      }
      for (const name of e.notForwarded ?? []) expect(headers[name], `${label}: ${name} must not reach the upstream`).toBeUndefined();
      for (const name of e.forwarded ?? []) expect(headers[name], `${label}: ${name} must reach the upstream`).toBeDefined();
      if (e.forwarded?.includes("authorization") !== true) expect(headers.authorization, label).toBeUndefined();
    },
    async close() {
      await authz.close();
      await upstream.close();
    },
  };
}

/** The response to a raw HTTP/1.1 request over its own connection. */
export interface RawResponse {
  readonly status: number;
  /** Lower-case names; repeated fields joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * Sends a request exactly as written (target and header fields, repeats
 * included) over a new TCP connection, and reads the response to its end
 * (`Connection: close` is added unless the case sends its own Connection,
 * in which case the connection is closed after the response). fetch() and
 * http.request would normalise the target or merge the fields first.
 */
export function sendRawRequest(baseUrl: string, request: DecisionRequest): Promise<RawResponse> {
  const url = new URL(baseUrl);
  const ownConnection = request.headers.some(([name]) => name.toLowerCase() === "connection");
  const lines = [`${request.method} ${request.target} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  if (!ownConnection) lines.push("Connection: close");
  const head = `${lines.join("\r\n")}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(head));
    let buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (ended = false) => {
      const parsed = parseResponse(buffer, ended);
      if (parsed === undefined) return false;
      settled = true;
      socket.destroy();
      resolve(parsed);
      return true;
    };
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      finish();
    });
    socket.on("end", () => {
      if (!settled && !finish(true)) reject(new Error(`incomplete response: ${buffer.toString("latin1")}`));
    });
    socket.on("error", (error) => {
      if (!settled) reject(error);
    });
  });
}

/** A complete response (Content-Length, chunked, or up to the end of the connection), or undefined while bytes are missing. */
function parseResponse(buffer: Buffer, ended: boolean): RawResponse | undefined {
  const end = buffer.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const [statusLine, ...fields] = buffer.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1]);
  const headers: Record<string, string> = {};
  for (const field of fields) {
    const colon = field.indexOf(":");
    const name = field.slice(0, colon).trim().toLowerCase();
    const value = field.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const rest = buffer.subarray(end + 4);
  if (status === 100) return parseResponse(rest, ended);
  if (headers["content-length"] !== undefined) {
    const length = Number(headers["content-length"]);
    return rest.length < length ? undefined : { status, headers, body: rest.subarray(0, length).toString("utf8") };
  }
  if (headers["transfer-encoding"]?.toLowerCase().includes("chunked")) {
    let offset = 0;
    const chunks: Buffer[] = [];
    for (;;) {
      const lineEnd = rest.indexOf("\r\n", offset);
      if (lineEnd === -1) return undefined;
      const size = parseInt(rest.subarray(offset, lineEnd).toString("latin1"), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(chunks).toString("utf8") };
      if (rest.length < lineEnd + 2 + size + 2) return undefined;
      chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      offset = lineEnd + 2 + size + 2;
    }
  }
  if (status === 204 || status === 304) return { status, headers, body: "" };
  // Delimited by the end of the connection (RFC 9112 §6.3).
  return ended ? { status, headers, body: rest.toString("utf8") } : undefined;
}

/** gatehouse_guard_requests_total in a /metrics text, summed over routes, for one outcome: each entrance's test checks the pipeline counted its verdict. */
export function guardOutcomeCount(text: string, outcome: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("gatehouse_guard_requests_total{") && line.includes(`outcome="${outcome}"`)) sum += Number(line.split(" ").at(-1));
  }
  return sum;
}
