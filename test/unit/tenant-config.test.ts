import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseGatewayConfig } from "../../gateway/config.js";
import { createGatewayTenants } from "../../gateway/tenants.js";
import { parseAuthzConfig } from "../../services/authz/config.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { createKeySchema } from "../../services/authz/store/keys.js";
import { configErrorOf } from "../support/config-error-of.js";
import { parsePlainYaml } from "../../startup/plain-yaml.js";

/**
 * Issue 11, "Bad input and limits": tenant names that are not slugs,
 * duplicates, issuer paths that collide, and routes naming unknown tenants
 * are refused, each problem at its path, by both processes (they read the
 * same file); and a file without `tenants:` is one default tenant.
 */
const ISSUER = "https://id.example";
const WEB_HASH = `sha256:${hashSecret("web-secret")}`;
const ENV = { GW_SECRET: "gateway-secret" };

const tenant = (name: unknown, extra: Record<string, unknown> = {}) => ({
  name,
  scopes: [{ name: "read", description: "Read" }],
  clients: [{ id: "web", name: "Web", type: "confidential", secretHashes: [WEB_HASH], redirectUris: ["https://web.example/cb"], scopes: ["read"] }],
  ...extra,
});
const file = (extra: Record<string, unknown> = {}) => ({
  issuer: ISSUER,
  gateway: { authz: { clientId: "gateway", clientSecret: { env: "GW_SECRET" } }, guard: { defaultUpstream: "http://127.0.0.1:9000" } },
  ...extra,
});
const authzProblems = (document: Record<string, unknown>) => configErrorOf(() => parseAuthzConfig(stringify(document), ENV)).problems;
const gatewayProblems = (document: Record<string, unknown>) => configErrorOf(() => parseGatewayConfig(stringify(document), ENV)).problems;

describe("tenants in the configuration (issue 11)", () => {
  it("a file without tenants is one default tenant at the issuer; with tenants, each has the issuer {issuer}/{name} and its own clients", () => {
    expect(parseAuthzConfig(stringify(file()), ENV).tenants.size).toBe(0);
    expect(parseGatewayConfig(stringify(file()), ENV).tenants).toEqual([]);
    const config = parseAuthzConfig(stringify(file({ tenants: [tenant("acme"), tenant("globex", { lifetimes: { accessToken: 60 } })] })), ENV);
    expect([...config.tenants.keys()]).toEqual(["acme", "globex"]);
    expect(config.tenants.get("acme")).toMatchObject({ issuer: `${ISSUER}/acme`, audience: `${ISSUER}/acme`, lifetimes: config.lifetimes });
    expect(config.tenants.get("globex")!.lifetimes.accessToken).toBe(60);
    expect(config.tenants.get("acme")!.clients.get("web")!.id).toBe("web");
    expect(config.clients.has("web")).toBe(false);
  });

  it("names that are not slugs, duplicates and the reserved name are refused at their paths, by both processes", () => {
    const document = file({ tenants: [tenant("Acme"), tenant("acme"), tenant("acme"), tenant("default"), tenant("a/b"), tenant("-x"), tenant("x".repeat(64)), tenant(7)] });
    for (const problems of [authzProblems(document), gatewayProblems(document)]) {
      const paths = problems.map((p) => p.slice(0, p.indexOf(": ")));
      expect(paths).toEqual(
        expect.arrayContaining(["tenants[0].name", "tenants[2].name", "tenants[3].name", "tenants[4].name", "tenants[5].name", "tenants[6].name", "tenants[7].name"]),
      );
      expect(paths).not.toContain("tenants[1].name");
      expect(problems).toEqual(expect.arrayContaining(['tenants[2].name: duplicate tenant "acme" (its issuer would be another tenant\'s)']));
    }
  });

  it("client ids and usernames are unique per tenant: two tenants may both have web and alice, one tenant may not have two", () => {
    const twice = tenant("acme");
    (twice.clients as unknown[]).push((twice.clients as unknown[])[0]);
    expect(authzProblems(file({ tenants: [twice, tenant("globex")] }))).toEqual(['tenants[0].clients[1].id: duplicate client id "web"']);
    const bad = tenant("acme", { clients: [{ id: "web", name: "Web", type: "confidential", secretHashes: [WEB_HASH], redirectUris: ["https://web.example/cb"], scopes: ["write"] }] });
    expect(authzProblems(file({ tenants: [bad] }))).toEqual(['tenants[0].clients[0].scopes[0]: unknown scope "write" (define it under scopes)']);
  });

  it("a tenant whose issuer path collides with one of the gateway's paths or a route's is refused", () => {
    const problems = gatewayProblems(
      file({ tenants: [tenant("oauth2"), tenant("api"), tenant("healthz")], routes: [{ path: "/api/**", scopes: ["read"] }], gateway: { ...file().gateway } }),
    );
    expect(problems).toEqual([
      "tenants[0].name: the tenant's issuer path /oauth2 collides with the gateway's path /oauth2/authorize (gateway.paths.authorize)",
      'tenants[1].name: the tenant\'s issuer path /api collides with the path /api/** of route "routes[0]"',
      "tenants[2].name: the tenant's issuer path /healthz collides with the gateway's path /healthz (gateway.paths.healthz)",
    ]);
  });

  it("a route that names an unknown tenant is refused; routes accept the default tenant unless they say otherwise", () => {
    const problems = gatewayProblems(file({ tenants: [tenant("acme")], routes: [{ path: "/a/**", scopes: ["read"], tenants: ["acme", "globex"] }, { path: "/b/**", scopes: ["read"], tenants: [] }] }));
    expect(problems).toEqual([
      "routes[1].tenants: a route accepts the tokens of at least one tenant",
      'routes[0].tenants[1]: unknown tenant "globex" (define it under tenants, or "default" for the top level\'s)',
    ]);
    const config = parseGatewayConfig(stringify(file({ tenants: [tenant("acme")], routes: [{ path: "/a/**", scopes: ["read"], tenants: ["acme", "default"] }, { path: "/b/**", scopes: ["read"] }] })), ENV);
    expect(config.routes.map((r) => r.tenants)).toEqual([["acme", "default"], ["default"]]);
  });

  it("the seed's path layout (seed 003): the named tenants' endpoints are /{tenant} + gateway.paths", () => {
    const config = parseGatewayConfig(stringify(file({ tenants: [tenant("acme")], gateway: { ...file().gateway, paths: { authorize: "/oauth2/v1/auth/", token: "/oauth2/v1/token/" } } })), ENV);
    const tenants = createGatewayTenants(config);
    expect(tenants.isOwnPath("/acme/oauth2/v1/auth/")).toBe(true);
    expect(tenants.isOwnPath("/acme/oauth2/v1/token/")).toBe(true);
    expect(tenants.isOwnPath("/.well-known/oauth-authorization-server/acme")).toBe(true);
    expect(tenants.isOwnPath("/globex/oauth2/v1/token/")).toBe(false);
    expect(tenants.isOwnPath("/acme/oauth2/v1/other/")).toBe(false);
    expect(tenants.ofIssuer(`${ISSUER}/acme`)).toBe("acme");
    expect(tenants.ofIssuer(ISSUER)).toBe("default");
  });

  it("1,000 tenants with 10 clients each load (the gateway and the authz service read the same file)", () => {
    const tenants = Array.from({ length: 1_000 }, (_, i) => ({
      name: `tenant-${i}`,
      scopes: [{ name: "read", description: "Read" }],
      clients: Array.from({ length: 10 }, (_, j) => ({ id: `client-${j}`, name: `Client ${j}`, type: "confidential", secretHashes: [WEB_HASH], redirectUris: ["https://web.example/cb"], scopes: ["read"] })),
    }));
    const text = stringify(file({ tenants }));
    const config = parseAuthzConfig(text, ENV);
    expect(config.tenants.size).toBe(1_000);
    expect([...config.tenants.values()].every((t) => t.clients.size === 10)).toBe(true);
    expect(parseGatewayConfig(text, ENV).tenants).toHaveLength(1_000);
    // A 2.5 MB file, parsed twice: generous for a loaded machine; the figure is in the README, not asserted here.
  }, 120_000);

  it("a 1,000-tenant file is read by the fast path (startup/plain-yaml.ts), and both processes build from it what they build from the yaml package's reading", () => {
    const tenants = Array.from({ length: 1_000 }, (_, i) => tenant(`tenant-${i}`, { clients: Array.from({ length: 10 }, (_, j) => ({ id: `client-${j}`, name: `Client ${j}`, type: "confidential", secretHashes: [WEB_HASH], redirectUris: [`https://app-${j}.tenant-${i}.example/cb`], scopes: ["read"] })) }));
    const text = stringify(file({ tenants }));
    expect(parsePlainYaml(text)).toBeDefined();
    // A directive is outside the fast path's subset: this copy is read by the yaml package.
    const viaYaml = `%YAML 1.2\n---\n${text}`;
    expect(parsePlainYaml(viaYaml)).toBeUndefined();
    expect(parseAuthzConfig(text, ENV)).toEqual(parseAuthzConfig(viaYaml, ENV));
    expect(parseGatewayConfig(text, ENV)).toEqual(parseGatewayConfig(viaYaml, ENV));
  }, 120_000);
});

describe("the key schema with tenants (issue 11)", () => {
  it("the default tenant's keys are exactly those of a deployment without tenants; a tenant's start with its own prefix, the hash tag kept per grant", () => {
    const plain = createKeySchema("gatehouse:");
    const fallback = createKeySchema("gatehouse:", undefined);
    const acme = createKeySchema("gatehouse:", "acme");
    expect(fallback.family("g1")).toBe(plain.family("g1"));
    expect(plain.family("g1")).toBe("gatehouse:{g:g1}:family");
    expect(plain.code("h")).toBe("gatehouse:code:h");
    expect(acme.family("g1")).toBe("gatehouse:t:acme:{g:g1}:family");
    expect(acme.grantRevoked("g1")).toBe("gatehouse:t:acme:{g:g1}:revoked");
    expect(acme.session("h")).toBe("gatehouse:t:acme:session:h");
    expect(acme.revocationChannel).toBe(plain.revocationChannel);
    expect(() => createKeySchema("gatehouse:", "a}b")).toThrow();
  });
});
