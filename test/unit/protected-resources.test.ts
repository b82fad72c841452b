import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseGatewayConfig } from "../../gateway/config.js";
import { parseAuthzConfig } from "../../services/authz/config.js";
import { parseForm, FormError, REPEATABLE_PARAMETERS } from "../../gateway/parse-form.js";
import { parseResumedAuthorizationRequest, serializeAuthorizationRequest } from "../../gateway/authorization-request.js";
import { OAuthError } from "../../services/authz/oauth/errors.js";
import { narrowResources, resolveResourceIndicators, MAX_RESOURCE_INDICATORS } from "../../services/authz/oauth/resource.js";
import { resourceUriProblem } from "../../startup/resource-uri.js";
import { configErrorOf } from "../support/config-error-of.js";

/** Issue 15: RFC 8707 resource indicators and RFC 9728 protected resources, the pure parts. */

const KNOWN = new Set(["https://a.example/mcp", "https://b.example/mcp"]);
const targetError = (call: () => unknown) => {
  try {
    call();
  } catch (error) {
    return error instanceof OAuthError ? error.code : String(error);
  }
  return "no error";
};

describe("RFC 8707 §2 resource indicators", () => {
  it.each([
    [[], []],
    [["https://a.example/mcp"], ["https://a.example/mcp"]],
    [["https://b.example/mcp", "https://a.example/mcp"], ["https://b.example/mcp", "https://a.example/mcp"]],
    [["https://a.example/mcp", "https://a.example/mcp"], ["https://a.example/mcp"]],
  ])("known resources %j are granted as %j (in order, once each)", (values, expected) => {
    expect(resolveResourceIndicators(values, KNOWN)).toEqual(expected);
  });

  it.each([
    ["an unknown resource", ["https://c.example/mcp"]],
    ["a relative reference", ["/mcp"]],
    ["a fragment", ["https://a.example/mcp#x"]],
    ["one known, one not", ["https://a.example/mcp", "https://c.example/"]],
    ["more than the bound", Array.from({ length: MAX_RESOURCE_INDICATORS + 1 }, () => "https://a.example/mcp")],
  ])("%s is invalid_target", (_, values) => {
    expect(targetError(() => resolveResourceIndicators(values, KNOWN))).toBe("invalid_target");
  });

  it.each([
    [[], ["https://a.example/mcp", "https://b.example/mcp"], ["https://a.example/mcp", "https://b.example/mcp"]],
    [["https://b.example/mcp"], ["https://a.example/mcp", "https://b.example/mcp"], ["https://b.example/mcp"]],
    [[], undefined, undefined],
    [[], [], undefined],
  ])("§2.2: the token request %j narrows the grant %j to %j (undefined: the default audience)", (requested, granted, expected) => {
    expect(narrowResources(requested, granted)).toEqual(expected);
  });

  it("§2.2: a resource outside the grant (or a grant of none) is invalid_target", () => {
    expect(targetError(() => narrowResources(["https://c.example/mcp"], ["https://a.example/mcp"]))).toBe("invalid_target");
    expect(targetError(() => narrowResources(["https://a.example/mcp"], undefined))).toBe("invalid_target");
  });

  it.each([
    ["https://a.example/mcp", true, undefined],
    ["http://localhost:8080/mcp", false, undefined],
    ["http://localhost:8080/mcp", true, /https/],
    ["mcp", false, /absolute/],
    ["https://a.example/mcp#x", false, /fragment/],
    ["https://a.example/mcp?x=1", false, /query/],
    ["https://user@a.example/mcp", false, /user/],
  ])("a configured resource URI %j (requireHttps %j): %s", (uri, requireHttps, problem) => {
    const found = resourceUriProblem(uri, requireHttps);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });
});

describe("RFC 8707 §2: resource may repeat in a form, nothing else may", () => {
  it("repeated resource values are kept in order; one is an array of one", () => {
    expect({ ...parseForm("resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&x=1", { repeatable: REPEATABLE_PARAMETERS }) }).toEqual({ resource: ["https://a", "https://b"], x: "1" });
    expect({ ...parseForm("resource=https%3A%2F%2Fa", { repeatable: REPEATABLE_PARAMETERS }) }).toEqual({ resource: ["https://a"] });
  });

  it("RFC 6749 §3.1: any other repeated parameter is still refused, and without the option resource too", () => {
    expect(() => parseForm("scope=a&scope=b&resource=x", { repeatable: REPEATABLE_PARAMETERS })).toThrow(FormError);
    expect(() => parseForm("resource=a&resource=b")).toThrow(/more than once/);
  });

  it("an authorization request resumed after the login page keeps every resource", () => {
    const resumed = serializeAuthorizationRequest({ client_id: "c", resource: ["https://a.example/mcp", "https://b.example/mcp"] });
    expect(resumed).toBe("client_id=c&resource=https%3A%2F%2Fa.example%2Fmcp&resource=https%3A%2F%2Fb.example%2Fmcp");
    expect(parseResumedAuthorizationRequest(resumed)).toBe(resumed);
  });
});

describe("routes[].resource (RFC 9728)", () => {
  const base = (extra: Record<string, unknown>) =>
    stringify({
      issuer: "https://gateway.example",
      gateway: { authz: { clientId: "gateway", clientSecret: { env: "SECRET" } } },
      scopes: [],
      ...extra,
    });
  const parse = (text: string) => parseGatewayConfig(text, { SECRET: "s" });
  const route = (extra: Record<string, unknown>) => ({ path: "/mcp", scopes: ["tools"], upstream: "http://127.0.0.1:3002", ...extra });

  it("RFC 9728 §3.1: a route's resource gets its document at the path-inserted URL; audience is its URI", () => {
    const config = parse(base({ resources: [{ uri: "https://mcp.example/tools/mcp", name: "Tools" }], routes: [route({ resource: "https://mcp.example/tools/mcp" })] }));
    expect(config.routes[0]!.audience).toEqual(["https://mcp.example/tools/mcp"]);
    expect(config.routes[0]!.resource).toEqual({
      uri: "https://mcp.example/tools/mcp",
      name: "Tools",
      scopes: ["tools"],
      authorizationServers: ["https://gateway.example"],
      metadataPath: "/.well-known/oauth-protected-resource/tools/mcp",
      metadataUrl: "https://mcp.example/.well-known/oauth-protected-resource/tools/mcp",
    });
  });

  it("a resource at the root has its metadata at the well-known URL itself; a tenant's route names the tenant's issuer", () => {
    const config = parse(
      base({
        tenants: [{ name: "acme", resources: [{ uri: "https://mcp.example/" }] }],
        routes: [route({ path: "/api/**", resource: "https://mcp.example/", tenants: ["acme"] })],
      }),
    );
    expect(config.routes[0]!.resource).toMatchObject({ metadataPath: "/.well-known/oauth-protected-resource", authorizationServers: ["https://gateway.example/acme"] });
  });

  it("refuses, at their paths: an undeclared resource, a resource beside audience, a bad URI, and one declared twice", () => {
    const problems = configErrorOf(() =>
      parse(
        base({
          resources: [{ uri: "https://mcp.example/a" }, { uri: "https://mcp.example/a" }, { uri: "http://mcp.example/b" }],
          routes: [route({ resource: "https://mcp.example/z" }), route({ path: "/other", resource: "https://mcp.example/a", audience: "https://x.example" })],
        }),
      ),
    ).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^resources\[1\]\.uri: duplicate resource/),
        expect.stringMatching(/^resources\[2\]\.uri: must use https/),
        expect.stringMatching(/^routes\[0\]\.resource: "https:\/\/mcp\.example\/z" is not declared under resources/),
        expect.stringMatching(/^routes\[1\]\.audience: a route with a resource/),
      ]),
    );
  });
});

describe("resources in the authz service's configuration (RFC 8707: what clients may name)", () => {
  const authzText = (document: Record<string, unknown>) => stringify({ issuer: "https://as.example", ...document });

  it("the top level's and each tenant's resources become their policies' known resources, by URI", () => {
    const config = parseAuthzConfig(
      authzText({ resources: [{ uri: "https://mcp.example/mcp", name: "MCP" }], tenants: [{ name: "acme", resources: [{ uri: "https://acme.example/mcp" }] }] }),
      {},
    );
    expect([...config.resources!.values()]).toEqual([{ uri: "https://mcp.example/mcp", name: "MCP" }]);
    expect([...config.tenants.get("acme")!.resources!.values()]).toEqual([{ uri: "https://acme.example/mcp", name: "" }]);
  });

  it("refuses, at their paths, a URI with a fragment, plain http under requireHttps, and a duplicate", () => {
    const problems = configErrorOf(() =>
      parseAuthzConfig(
        authzText({
          resources: [{ uri: "https://mcp.example/mcp#x" }, { uri: "https://mcp.example/a" }, { uri: "https://mcp.example/a" }],
          tenants: [{ name: "acme", resources: [{ uri: "http://acme.example/mcp" }] }],
        }),
        {},
      ),
    ).problems;
    expect([...problems].sort()).toEqual([
      expect.stringMatching(/^resources\[0\]\.uri: must not include a fragment/),
      expect.stringMatching(/^resources\[2\]\.uri: duplicate resource/),
      expect.stringMatching(/^tenants\[0\]\.resources\[0\]\.uri: must use https/),
    ]);
  });
});
