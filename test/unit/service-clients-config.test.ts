import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseAuthzConfig } from "../../services/authz/config.js";
import { configErrorOf } from "../support/config-error-of.js";

/** The configuration of service clients (issue 14): what parses, and every problem at its path. */
const ISSUER = "https://as.example";
const PUBLIC_EC = { kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", kid: "k1", alg: "ES256" };
const TE = "urn:ietf:params:oauth:grant-type:token-exchange";

function file(client: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return stringify({
    issuer: ISSUER,
    scopes: [{ name: "read", description: "Read" }],
    clients: [{ id: "svc", name: "Service", type: "confidential", grantTypes: ["client_credentials"], responseTypes: [], scopes: ["read"], ...client }],
    ...extra,
  });
}
const problemsOf = (text: string) => configErrorOf(() => parseAuthzConfig(text, {})).problems;

describe("service client configuration", () => {
  it("a client with inline keys needs no secret; its policy, the assertion defaults and the fetch limits are in the config", () => {
    const config = parseAuthzConfig(
      file({ service: { jwks: { keys: [PUBLIC_EC] }, audiences: ["https://orders.example"], defaultAudience: "https://orders.example", accessTokenLifetime: 120, tokenRateLimit: { max: 10 } } }),
      {},
    );
    const svc = config.clients.get("svc")!;
    expect([...svc.grantTypes]).toEqual(["client_credentials"]);
    expect(svc.service).toMatchObject({ audiences: ["https://orders.example"], defaultAudience: "https://orders.example", accessTokenLifetime: 120, tokenRateLimit: { max: 10, windowSeconds: 1 } });
    expect(config.clientAssertions).toMatchObject({ maxLifetimeSeconds: 300 });
    expect(config.clientAssertions!.algorithms).not.toContain("none");
    expect(config.fetch).toMatchObject({ timeoutMs: 3_000, allowPrivateHosts: [] });
  });

  it("a token exchange policy's subject audiences default to the server's audience", () => {
    const config = parseAuthzConfig(file({ grantTypes: [TE], secretHashes: [`sha256:${"a".repeat(43)}`], service: { tokenExchange: { audiences: ["https://b.example"], scopes: ["read"] } } }), {});
    expect(config.clients.get("svc")!.service!.tokenExchange).toEqual({ audiences: ["https://b.example"], scopes: ["read"], subjectAudiences: [ISSUER], impersonate: false });
  });

  it.each<[string, Record<string, unknown>, Record<string, unknown>, string]>([
    ["a confidential client with neither secret nor keys", {}, {}, "clients[0].secretHashes"],
    ["a private key in jwks", { service: { jwks: { keys: [{ ...PUBLIC_EC, d: "secret" }] } } }, {}, "clients[0].service.jwks.keys[0]"],
    ["a symmetric key in jwks", { service: { jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } } }, {}, "clients[0].service.jwks.keys[0].kty"],
    ["an HMAC alg on a key", { service: { jwks: { keys: [{ ...PUBLIC_EC, alg: "HS256" }] } } }, {}, "clients[0].service.jwks.keys[0].alg"],
    ["a jwksUri over http", { service: { jwksUri: "http://keys.example/jwks.json" } }, {}, "clients[0].service.jwksUri"],
    ["jwks and jwksUri together", { service: { jwks: { keys: [PUBLIC_EC] }, jwksUri: "https://keys.example/jwks.json" } }, {}, "clients[0].service"],
    ["a resource that is not an absolute URI", { service: { jwks: { keys: [PUBLIC_EC] }, audiences: ["orders"] } }, {}, "clients[0].service.audiences[0]"],
    ["a default audience outside the audiences", { service: { jwks: { keys: [PUBLIC_EC] }, audiences: ["https://a.example"], defaultAudience: "https://b.example" } }, {}, "clients[0].service.defaultAudience"],
    ["client_credentials for a public client", { type: "public", redirectUris: [], responseTypes: [] }, {}, "clients[0].grantTypes"],
    ["the token exchange grant without a policy", { grantTypes: [TE], service: { jwks: { keys: [PUBLIC_EC] } } }, {}, "clients[0].service.tokenExchange"],
    ["a policy carrying a scope the client lacks", { grantTypes: [TE], service: { jwks: { keys: [PUBLIC_EC] }, tokenExchange: { audiences: ["x"], scopes: ["write"] } } }, {}, "clients[0].service.tokenExchange.scopes[0]"],
    ["a service account of an unknown cluster", { service: { serviceAccount: { issuer: "https://k8s.example", subject: "system:serviceaccount:ns:sa" } } }, {}, "clients[0].service.serviceAccount.issuer"],
    ["a malformed service account subject", { service: { serviceAccount: { issuer: "https://k8s.example", subject: "worker" } } }, { serviceAccountIssuers: [{ issuer: "https://k8s.example", jwks: { keys: [PUBLIC_EC] } }] }, "clients[0].service.serviceAccount.subject"],
    ["a cluster with no keys", { service: { jwks: { keys: [PUBLIC_EC] } } }, { serviceAccountIssuers: [{ issuer: "https://k8s.example" }] }, "serviceAccountIssuers[0]"],
    ["alg none allowed for assertions", { service: { jwks: { keys: [PUBLIC_EC] } } }, { authz: { clientAssertions: { algorithms: ["none"] } } }, "authz.clientAssertions.algorithms[0]"],
  ])("%s is a problem at its path", (_name, client, extra, path) => {
    const problems = problemsOf(file(client, extra));
    expect(problems.some((problem) => problem.startsWith(`${path}:`) || problem.startsWith(`${path}.`)), problems.join("\n")).toBe(true);
  });
});
