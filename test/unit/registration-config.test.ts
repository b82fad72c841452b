import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseAuthzConfig } from "../../services/authz/config.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { configErrorOf } from "../support/config-error-of.js";

const TOKEN = "initial-access-token-0123456789abcdef";
const base = (registration: unknown, tenantRegistration?: unknown) =>
  stringify({
    issuer: "https://as.example",
    scopes: [{ name: "read", description: "Read" }],
    registration,
    tenants: tenantRegistration === undefined ? [] : [{ name: "acme", scopes: [{ name: "acme-read", description: "Read" }], registration: tenantRegistration }],
  });

describe("registration policy configuration (issue 15)", () => {
  it("absent: no policy (off); given: built with defaults, the initial access tokens as digests only", () => {
    expect(parseAuthzConfig(base(undefined), {}).registration).toBeUndefined();
    const config = parseAuthzConfig(base({ policy: "initialAccessToken", initialAccessTokens: [{ env: "IAT" }], scopes: ["read"] }), { IAT: `${TOKEN}\n` });
    expect(config.registration).toEqual({
      mode: "initial-access-token",
      initialAccessTokenHashes: [hashSecret(TOKEN)],
      rateLimit: { max: 10, windowSeconds: 3_600 },
      allowConfidential: false,
      scopes: ["read"],
      unusedClientTtlSeconds: 30 * 86_400,
      touchIntervalSeconds: 3_600,
      clientIdMetadataDocuments: false,
    });
    expect(JSON.stringify(config.registration)).not.toContain(TOKEN);
  });

  it("per tenant: each tenant's own policy, checked against its own scopes", () => {
    const config = parseAuthzConfig(base(undefined, { policy: "open", scopes: ["acme-read"] }), {});
    expect(config.tenants.get("acme")?.registration?.mode).toBe("open");
    expect(config.registration).toBeUndefined();
  });

  it("every problem at its path: no token for the token policy, a short token, unknown scopes, a touch interval too long, an unknown policy", () => {
    const problems = configErrorOf(() => parseAuthzConfig(base({ policy: "initialAccessToken", scopes: ["write"], unusedClientTtlSeconds: 600, touchIntervalSeconds: 400 }, { policy: "open", initialAccessTokens: [{ env: "SHORT" }], scopes: ["read"] }), { SHORT: "short" })).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^registration\.initialAccessTokens: the initialAccessToken policy needs at least one token/),
        expect.stringMatching(/^registration\.scopes\[0\]: unknown scope "write"/),
        expect.stringMatching(/^registration\.touchIntervalSeconds: must be at most half/),
        expect.stringMatching(/^tenants\[0\]\.registration\.initialAccessTokens\[0\]: the referenced token must be at least 22 characters/),
        expect.stringMatching(/^tenants\[0\]\.registration\.scopes\[0\]: unknown scope "read"/),
      ]),
    );
    expect(configErrorOf(() => parseAuthzConfig(base({ policy: "anyone" }), {})).problems.join("\n")).toMatch(/registration\.policy/);
  });
});
