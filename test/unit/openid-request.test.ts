import fc from "fast-check";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { parseAuthzConfig } from "../../services/authz/config.js";
import {
  checkDisplay,
  decideInteraction,
  MAX_NONCE_LENGTH,
  parseMaxAge,
  parseNonce,
  parsePrompt,
  refuseRequestObjects,
} from "../../services/authz/oauth/authentication-request.js";
import { OAuthError } from "../../services/authz/oauth/errors.js";
import { accessTokenHash } from "../../services/authz/oauth/id-token.js";
import type { Client } from "../../services/authz/oauth/model.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { sectorIdentifierOf, subjectFor } from "../../services/authz/oauth/subject-identifier.js";
import { claimsForScopes } from "../../services/authz/oauth/user-claims.js";
import { configErrorOf } from "../support/config-error-of.js";

const codeOf = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return error instanceof OAuthError ? error.code : `not an OAuthError: ${String(error)}`;
  }
};

describe("OpenID Connect Core §3.1.2.1 authentication request parameters", () => {
  it.each([
    ["", undefined],
    ["none", undefined],
    ["login", undefined],
    ["consent", undefined],
    ["select_account", undefined],
    ["login consent", undefined],
    ["none login", "invalid_request"],
    ["consent none", "invalid_request"],
    ["sometimes", "invalid_request"],
    ["Login", "invalid_request"],
    ["login  consent", "invalid_request"],
    [" login", "invalid_request"],
  ])("prompt %j → %s", (prompt, code) => {
    expect(codeOf(() => parsePrompt(prompt))).toBe(code);
  });

  it("prompt: any string is parsed or refused with invalid_request, never anything else", () => {
    fc.assert(fc.property(fc.string({ maxLength: 64 }), (prompt) => [undefined, "invalid_request"].includes(codeOf(() => parsePrompt(prompt)))));
  });

  it.each([
    ["", undefined],
    ["0", 0],
    ["3600", 3600],
    ["-1", "invalid_request"],
    ["1.5", "invalid_request"],
    ["1e3", "invalid_request"],
    [" 5", "invalid_request"],
    ["ten", "invalid_request"],
    ["99999999999", "invalid_request"],
  ])("max_age %j → %s", (maxAge, expected) => {
    if (typeof expected === "string") expect(codeOf(() => parseMaxAge(maxAge))).toBe(expected);
    else expect(parseMaxAge(maxAge)).toBe(expected);
  });

  it("max_age: any string is a non-negative integer or invalid_request", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 16 }), (maxAge) => {
        const code = codeOf(() => parseMaxAge(maxAge));
        if (code !== undefined) return code === "invalid_request";
        const value = parseMaxAge(maxAge);
        return value === undefined || (Number.isInteger(value) && value >= 0);
      }),
    );
  });

  it("nonce: kept exactly up to its bound, refused beyond it", () => {
    expect(parseNonce("")).toBeUndefined();
    expect(parseNonce("n-0 ü")).toBe("n-0 ü");
    expect(parseNonce("n".repeat(MAX_NONCE_LENGTH))).toHaveLength(MAX_NONCE_LENGTH);
    expect(codeOf(() => parseNonce("n".repeat(MAX_NONCE_LENGTH + 1)))).toBe("invalid_request");
  });

  it("display: the four defined values; request objects refused with their own codes", () => {
    for (const display of ["", "page", "popup", "touch", "wap"]) expect(codeOf(() => checkDisplay(display))).toBeUndefined();
    expect(codeOf(() => checkDisplay("hologram"))).toBe("invalid_request");
    expect(codeOf(() => refuseRequestObjects("x.y.z", ""))).toBe("request_not_supported");
    expect(codeOf(() => refuseRequestObjects("", "https://x"))).toBe("request_uri_not_supported");
    expect(codeOf(() => refuseRequestObjects("", ""))).toBeUndefined();
  });

  const session = { subject: "alice", authTime: 1_000 };
  const base = { prompt: new Set<never>(), maxAge: undefined, session, now: 1_010, hintMismatch: false, consentKnown: true };
  it.each([
    ["no session", { session: { subject: "", authTime: 0 } }, { login: true, consent: false }],
    ["a session", {}, { login: false, consent: false }],
    ["prompt=login", { prompt: new Set(["login"]) }, { login: true, consent: false }],
    ["prompt=select_account (served as login)", { prompt: new Set(["select_account"]) }, { login: true, consent: false }],
    ["prompt=consent", { prompt: new Set(["consent"]) }, { login: false, consent: true }],
    ["max_age not yet reached", { maxAge: 10 }, { login: false, consent: false }],
    ["max_age exceeded", { maxAge: 9 }, { login: true, consent: false }],
    ["id_token_hint for another user", { hintMismatch: true }, { login: true, consent: false }],
    ["prompt=none with a session and consent", { prompt: new Set(["none"]) }, { login: false, consent: false }],
    ["prompt=none without a session", { prompt: new Set(["none"]), session: { subject: "", authTime: 0 } }, "login_required"],
    ["prompt=none past max_age", { prompt: new Set(["none"]), maxAge: 5 }, "login_required"],
    ["prompt=none, hint for another user", { prompt: new Set(["none"]), hintMismatch: true }, "login_required"],
    ["prompt=none without consent", { prompt: new Set(["none"]), consentKnown: false }, "consent_required"],
  ] as const)("Core §3.1.2.3: %s", (_name, change, expected) => {
    const input = { ...base, ...change } as Parameters<typeof decideInteraction>[0];
    if (typeof expected === "string") expect(codeOf(() => decideInteraction(input))).toBe(expected);
    else expect(decideInteraction(input)).toEqual(expected);
  });
});

describe("OpenID Connect claims and subjects", () => {
  it("Core §3.1.3.6: at_hash is the left half of the alg's hash, base64url (the spec's example value)", () => {
    // OpenID Connect Core 1.0 Appendix A.3/A.4 use this access token; its RS256 at_hash is given there.
    expect(accessTokenHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256")).toBe("77QmUPtjPfzWtF2AnpK9RQ");
    expect(accessTokenHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "ES384")).toHaveLength(32);
    expect(accessTokenHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "EdDSA")).toHaveLength(43);
  });

  it("Core §5.4: scopes release their claims and nothing else; absent claims stay absent", () => {
    const claims = { name: "A", email: "a@x.test", email_verified: true, phone_number: "+1", address: { country: "GB" } };
    expect(claimsForScopes(claims, ["openid"])).toEqual({});
    expect(claimsForScopes(claims, ["openid", "email"])).toEqual({ email: "a@x.test", email_verified: true });
    expect(claimsForScopes(claims, ["profile", "address"])).toEqual({ name: "A", address: { country: "GB" } });
    expect(claimsForScopes(claims, ["phone"])).toEqual({ phone_number: "+1" });
    expect(claimsForScopes(undefined, ["profile"])).toEqual({});
  });

  it("Core §8.1: pairwise subs differ per sector, are stable, and are not the subject; public clients see the subject", () => {
    const client = (sector: string | undefined, subjectType: "public" | "pairwise") => ({ id: "c", subjectType, sectorIdentifier: sector }) as Client;
    const policy = { pairwiseSalt: "salt-0123456789abcdefghijklmnopqrstuvwxyz" };
    const a = subjectFor(policy, client("a.test", "pairwise"), "alice");
    expect(a).not.toBe("alice");
    expect(subjectFor(policy, client("a.test", "pairwise"), "alice")).toBe(a);
    expect(subjectFor(policy, client("b.test", "pairwise"), "alice")).not.toBe(a);
    expect(subjectFor(policy, client("a.test", "pairwise"), "bob")).not.toBe(a);
    expect(subjectFor({ pairwiseSalt: "another salt" }, client("a.test", "pairwise"), "alice")).not.toBe(a);
    expect(subjectFor(policy, client(undefined, "public"), "alice")).toBe("alice");
  });

  it("Core §8.1: the sector is the one redirect host, or must be named when there are several", () => {
    expect(sectorIdentifierOf(["https://a.test/cb", "https://a.test/other"], undefined)).toEqual({ sector: "a.test" });
    expect(sectorIdentifierOf(["https://a.test/cb", "https://b.test/cb"], undefined)).toMatchObject({ problem: expect.stringContaining("several hosts") });
    expect(sectorIdentifierOf(["https://a.test/cb", "https://b.test/cb"], "example.test")).toEqual({ sector: "example.test" });
  });
});

describe("OpenID Connect configuration", () => {
  const client = (extra: Record<string, unknown>) => ({
    id: "rp",
    name: "RP",
    type: "confidential",
    secretHashes: [`sha256:${hashSecret("s")}`],
    redirectUris: ["https://a.test/cb", "https://b.test/cb"],
    ...extra,
  });
  const parse = (document: Record<string, unknown>) => parseAuthzConfig(stringify({ issuer: "https://as.example", ...document }), { SALT: "salt-0123456789abcdefghijklmnopqrstuvwxyz" });

  it("a pairwise client needs the salt, and a named sector when its redirect URIs are on several hosts", () => {
    expect(configErrorOf(() => parse({ clients: [client({ subjectType: "pairwise" })] })).problems).toEqual([
      "clients[0].subjectType: pairwise needs authz.openid.pairwiseSalt",
      "clients[0].sectorIdentifier: redirect URIs on several hosts: name the sectorIdentifier (OpenID Connect Core §8.1)",
    ]);
    const config = parse({ authz: { openid: { pairwiseSalt: { env: "SALT" }, acr: "urn:x" } }, clients: [client({ subjectType: "pairwise", sectorIdentifier: "rp.test" })] });
    expect(config.clients.get("rp")).toMatchObject({ subjectType: "pairwise", sectorIdentifier: "rp.test" });
    expect(config.pairwiseSalt).toBe("salt-0123456789abcdefghijklmnopqrstuvwxyz");
    expect(config.acr).toBe("urn:x");
  });

  it("logout registration: post-logout redirect URIs are checked like redirect URIs, the back-channel URI needs https and no fragment", () => {
    const problems = configErrorOf(() =>
      parse({ clients: [client({ postLogoutRedirectUris: ["http://rp.test/bye", "https://rp.test/ok"], backchannelLogoutUri: "https://rp.test/bcl#frag" })] }),
    ).problems;
    expect(problems.map((p) => p.slice(0, p.indexOf(": ")))).toEqual(["clients[0].postLogoutRedirectUris[0]", "clients[0].backchannelLogoutUri"]);
    const config = parse({ clients: [client({ postLogoutRedirectUris: ["https://rp.test/ok"], backchannelLogoutUri: "https://rp.test/bcl", revokeOnLogout: true })] });
    expect(config.clients.get("rp")).toMatchObject({ postLogoutRedirectUris: ["https://rp.test/ok"], backchannelLogoutUri: "https://rp.test/bcl", revokeOnLogout: true });
  });

  it("a sector_identifier_uri must be https, is for pairwise clients only, and excludes a named sector", () => {
    const problems = configErrorOf(() =>
      parse({
        authz: { openid: { pairwiseSalt: { env: "SALT" } } },
        clients: [
          client({ subjectType: "pairwise", sectorIdentifierUri: "http://rp.test/sector.json" }),
          { ...client({ sectorIdentifierUri: "https://rp.test/sector.json" }), id: "public-rp" },
          { ...client({ subjectType: "pairwise", sectorIdentifierUri: "https://rp.test/s.json", sectorIdentifier: "rp.test" }), id: "both" },
        ],
      }),
    ).problems;
    expect(problems).toEqual([
      "clients[0].sectorIdentifierUri: must use https",
      "clients[1].sectorIdentifierUri: only for subjectType pairwise",
      "clients[2].sectorIdentifier: name either sectorIdentifier or sectorIdentifierUri",
    ]);
    const config = parse({ authz: { openid: { pairwiseSalt: { env: "SALT" } } }, clients: [client({ subjectType: "pairwise", sectorIdentifierUri: "https://sector.rp.test/s.json" })] });
    expect(config.clients.get("rp")).toMatchObject({ sectorIdentifier: "sector.rp.test", sectorIdentifierUri: "https://sector.rp.test/s.json" });
  });

  it("users' standard claims are typed (Core §5.1): a wrong type is a problem at its path", () => {
    const user = (claims: Record<string, unknown>) => ({ username: "a", passwordHash: "scrypt$1024$8$1$h5TaKObEbJo3xXUDW8Figw$8IF-h9pg5RIrVc-jVHLBd-u1orz47DEPExxlF-5YZoY", claims });
    expect(parse({ users: [user({ name: "A", email: "a@x.test", email_verified: true, address: { country: "GB" }, updated_at: 1 })] }).users.get("a")?.claims).toEqual({
      name: "A",
      email: "a@x.test",
      email_verified: true,
      address: { country: "GB" },
      updated_at: 1,
    });
    const problems = configErrorOf(() => parse({ users: [user({ email_verified: "yes", nickname: 3 })] })).problems;
    expect(problems.map((p) => p.slice(0, p.indexOf(": ")))).toEqual(expect.arrayContaining(["users[0].claims.email_verified", "users[0].claims.nickname"]));
  });
});

describe("KeyRing: ID Tokens (OpenID Connect Core §2, Registration §2)", () => {
  const ring = async () => {
    const { exportJWK, generateKeyPair } = await import("jose");
    const es256 = await generateKeyPair("ES256", { extractable: true });
    const es384 = await generateKeyPair("ES384", { extractable: true });
    const jwks = JSON.stringify({
      keys: [
        { ...(await exportJWK(es256.privateKey)), kid: "k256", alg: "ES256" },
        { ...(await exportJWK(es384.privateKey)), kid: "k384", alg: "ES384" },
      ],
    });
    const { createKeyRing } = await import("../../services/authz/oauth/key-ring.js");
    return createKeyRing({ jwks, activeKid: "k256", issuer: "https://as.example" });
  };
  const claims = { iss: "https://as.example", sub: "u", aud: "c", exp: 2_000_000_000, iat: 1_700_000_000, auth_time: 1_700_000_000, azp: "c", amr: ["pwd"] };

  it("signs with the active key by default and with a key of the client's algorithm when it registered one; never none", async () => {
    const { decodeProtectedHeader } = await import("jose");
    const keys = await ring();
    expect(keys.idTokenAlgorithms).toEqual(["ES256", "ES384"]);
    expect(decodeProtectedHeader(await keys.signIdToken(claims, keys.activeAlg))).toEqual({ alg: "ES256", kid: "k256", typ: "JWT" });
    expect(decodeProtectedHeader(await keys.signIdToken(claims, "ES384"))).toEqual({ alg: "ES384", kid: "k384", typ: "JWT" });
    await expect(keys.signIdToken(claims, "none")).rejects.toThrow(/no signing key/);
    await expect(keys.signIdToken(claims, "RS256")).rejects.toThrow(/no signing key/);
  });

  it("verifies its own ID Tokens as hints, expired ones too, and refuses access tokens, logout tokens and foreign ones", async () => {
    const keys = await ring();
    const expired = await keys.signIdToken({ ...claims, exp: 1_700_000_100 }, "ES384");
    expect((await keys.verifyIdTokenHint(expired)).sub).toBe("u");
    const access = await keys.sign({ iss: "https://as.example", sub: "u", aud: "a", client_id: "c", scope: "", jti: "j", iat: 1_700_000_000, exp: 2_000_000_000, auth_time: 0, gid: "g" });
    await expect(keys.verifyIdTokenHint(access)).rejects.toThrow();
    const logout = await keys.signLogoutToken({ iss: "https://as.example", aud: "c", iat: 1_700_000_000, exp: 2_000_000_000, jti: "j", events: {}, sub: "u" }, "ES256");
    await expect(keys.verifyIdTokenHint(logout)).rejects.toThrow();
    const other = await ring();
    await expect(other.verifyIdTokenHint(await keys.signIdToken(claims, "ES256"))).rejects.toThrow();
  });
});
