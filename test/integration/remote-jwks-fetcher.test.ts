import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheSeconds, createRemoteJwksFetcher } from "../../services/authz/fetch/remote-jwks-fetcher.js";
import { isForbiddenAddress } from "../../services/authz/fetch/safe-https-get.js";
import { RemoteJwksError } from "../../services/authz/oauth/remote-jwks.js";
import { startJwksServer, type JwksServer } from "../support/jwks-server.js";

/**
 * The fetcher of key sets named by clients (jwks_uri) against a real https
 * server on loopback: what it fetches, how long it keeps it, and every way
 * of pointing it somewhere it must not go (SSRF).
 */
let server: JwksServer;
let now = 1_800_000_000_000;
const limits = { timeoutMs: 2_000, maxBytes: 64 * 1024, minCacheSeconds: 60, maxCacheSeconds: 3_600, refetchCooldownSeconds: 10 };
const fetcher = (overrides: Partial<Parameters<typeof createRemoteJwksFetcher>[0]> = {}) =>
  createRemoteJwksFetcher({ ...limits, allowPrivateHosts: ["localhost"], ca: server.certificate, clock: () => now, ...overrides });

beforeAll(async () => {
  server = await startJwksServer();
  server.keys = [{ kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", kid: "k1" }];
});
afterAll(() => server.close());

describe("remote JWK Sets (jwks_uri)", () => {
  it("fetches an allow-listed development host over https, and keeps the set as long as max-age says", async () => {
    const jwks = fetcher();
    const before = server.fetches;
    expect((await jwks.get(server.url, { refresh: false })).keys.map((k) => k.kid)).toEqual(["k1"]);
    await jwks.get(server.url, { refresh: false });
    expect(server.fetches).toBe(before + 1);
    now += 301_000; // past max-age=300
    await jwks.get(server.url, { refresh: false });
    expect(server.fetches).toBe(before + 2);
  });

  it("an unknown kid refetches once the cooldown has passed, not before: a rotated key is picked up", async () => {
    const jwks = fetcher();
    await jwks.get(server.url, { refresh: false });
    const before = server.fetches;
    server.keys = [...server.keys, { ...server.keys[0]!, kid: "k2" }];
    expect((await jwks.get(server.url, { refresh: true })).keys.map((k) => k.kid)).toEqual(["k1"]);
    expect(server.fetches).toBe(before);
    now += 10_000;
    expect((await jwks.get(server.url, { refresh: true })).keys.map((k) => k.kid)).toEqual(["k1", "k2"]);
    expect(server.fetches).toBe(before + 1);
  });

  it.each<[string, () => string, Parameters<typeof fetcher>[0], string]>([
    ["plain http", () => server.url.replace("https:", "http:"), {}, "https"],
    ["a loopback IP literal not on the allow-list", () => server.url.replace("localhost", "127.0.0.1"), {}, "private"],
    ["a name that resolves to loopback, not on the allow-list", () => server.url, { allowPrivateHosts: [] }, "resolves to a private"],
    ["the cloud metadata address", () => "https://169.254.169.254/latest/meta-data", {}, "private"],
    ["a redirect", () => server.url.replace("/jwks.json", "/redirect"), {}, "redirects"],
    ["a body over the size limit", () => server.url.replace("/jwks.json", "/big"), {}, "larger than"],
    ["an untrusted certificate", () => server.url, { ca: undefined }, "certificate"],
    ["credentials in the URL", () => server.url.replace("https://", "https://user:pw@"), {}, "credentials"],
  ])("SSRF: %s is refused", async (_name, url, overrides, why) => {
    const attempt = fetcher(overrides).get(url(), { refresh: false });
    await expect(attempt).rejects.toBeInstanceOf(RemoteJwksError);
    await expect(attempt).rejects.toThrow(why);
  });

  it.each<[string, boolean]>([
    ["10.1.2.3", true],
    ["172.16.0.1", true],
    ["192.168.1.1", true],
    ["169.254.169.254", true],
    ["100.64.0.1", true],
    ["0.0.0.0", true],
    ["::1", true],
    ["::", true],
    ["fe80::1", true],
    ["fd00::1", true],
    ["::ffff:127.0.0.1", true],
    ["::ffff:10.0.0.1", true],
    ["8.8.8.8", false],
    ["2606:4700:4700::1111", false],
    ["::ffff:8.8.8.8", false],
  ])("%s is forbidden: %s", (address, forbidden) => {
    expect(isForbiddenAddress(address)).toBe(forbidden);
  });

  it.each<[string, string | undefined, number]>([
    ["max-age within bounds", "public, max-age=600", 600],
    ["max-age below the minimum", "max-age=5", 60],
    ["max-age above the maximum", "max-age=999999", 3_600],
    ["no-store counts as the minimum", "no-store", 60],
    ["no-cache counts as the minimum", "no-cache, max-age=600", 60],
    ["no header", undefined, 60],
  ])("RFC 9111 §5.2.2: %s", (_name, header, seconds) => {
    expect(cacheSeconds(header, { minCacheSeconds: 60, maxCacheSeconds: 3_600 })).toBe(seconds);
  });

  it("whatever Cache-Control says, the cache lifetime stays within its bounds", () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 1, max: 100_000 }), (header, min, span) => {
        const seconds = cacheSeconds(header, { minCacheSeconds: min, maxCacheSeconds: min + span });
        return Number.isInteger(seconds) && seconds >= min && seconds <= min + span;
      }),
    );
  });
});
