import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../startup/config-error.js";
import type { Client } from "../../services/authz/oauth/model.js";
import { fetchJson, isPublicAddress } from "../../services/authz/outbound-fetch.js";
import { verifySectorIdentifierUris } from "../../services/authz/sector-identifiers.js";

/**
 * The one outbound fetcher (DESIGN: anything fetched on a client's say-so)
 * against a real local server, and the sector_identifier_uri check built on
 * it (OpenID Connect Core §8.1).
 */
let server: Server;
let base: string;
/** Never answers: for the time limit. */
const hanging = new Set<import("node:http").ServerResponse>();

beforeAll(async () => {
  server = createServer((request, response) => {
    switch (request.url) {
      case "/sector.json":
        return response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(["https://a.test/cb", "https://b.test/cb"]));
      case "/big.json":
        return response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(["x".repeat(100_000)]));
      case "/redirect":
        return response.writeHead(302, { location: "/sector.json" }).end();
      case "/not-json":
        return response.writeHead(200).end("<html>");
      case "/hang":
        hanging.add(response);
        return;
      default:
        return response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const response of hanging) response.destroy();
  await new Promise((resolve) => server.close(resolve));
});

describe("the outbound fetcher", () => {
  it.each([
    ["8.8.8.8", true],
    ["2606:4700:4700::1111", true],
    ["127.0.0.1", false],
    ["10.1.2.3", false],
    ["172.16.0.1", false],
    ["192.168.1.1", false],
    ["169.254.169.254", false],
    ["100.64.0.1", false],
    ["0.0.0.0", false],
    ["::1", false],
    ["fd00::1", false],
    ["fe80::1", false],
    ["::ffff:127.0.0.1", false],
    ["::ffff:8.8.8.8", true],
    ["not an address", false],
  ])("%s is public: %s", (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  it("fetches a JSON document (development: http and loopback allowed)", async () => {
    expect(await fetchJson(`${base}/sector.json`, { development: true })).toEqual(["https://a.test/cb", "https://b.test/cb"]);
  });

  it("outside development: http is refused, and so is a loopback or private address after resolution", async () => {
    await expect(fetchJson(`${base}/sector.json`, { development: false })).rejects.toThrow(/https/);
    const port = (server.address() as AddressInfo).port;
    await expect(fetchJson(`https://127.0.0.1:${port}/sector.json`, { development: false })).rejects.toThrow(/not a public address/);
    await expect(fetchJson(`https://localhost:${port}/sector.json`, { development: false })).rejects.toThrow(/not a public address/);
  });

  it("refuses redirects, oversized and non-JSON documents, and gives up after its time limit", async () => {
    await expect(fetchJson(`${base}/redirect`, { development: true })).rejects.toThrow(/HTTP 302/);
    await expect(fetchJson(`${base}/big.json`, { development: true, maxBytes: 64 * 1024 })).rejects.toThrow(/larger than/);
    await expect(fetchJson(`${base}/not-json`, { development: true })).rejects.toThrow(/not JSON/);
    await expect(fetchJson(`${base}/hang`, { development: true, timeoutMs: 200 })).rejects.toThrow(/within 200 ms/);
  });
});

describe("OpenID Connect Core §8.1: sector_identifier_uri", () => {
  const client = (redirectUris: string[], sectorIdentifierUri: string) =>
    ({ id: "rp", redirectUris, sectorIdentifierUri, subjectType: "pairwise" }) as unknown as Client;

  it("accepts a document that lists every redirect URI, and refuses one that does not, or cannot be fetched, with a problem per client", async () => {
    await verifySectorIdentifierUris({ requireHttps: false, clients: new Map([["rp", client(["https://a.test/cb", "https://b.test/cb"], `${base}/sector.json`)]]) });
    const missing = verifySectorIdentifierUris({ requireHttps: false, clients: new Map([["rp", client(["https://a.test/cb", "https://c.test/cb"], `${base}/sector.json`)]]) });
    await expect(missing).rejects.toBeInstanceOf(ConfigError);
    await expect(missing).rejects.toMatchObject({ problems: ["clients[id=rp].sectorIdentifierUri: the document does not list https://c.test/cb"] });
    const unreachable = verifySectorIdentifierUris({ requireHttps: true, clients: new Map([["rp", client(["https://a.test/cb"], `${base}/sector.json`)]]) });
    await expect(unreachable).rejects.toMatchObject({ problems: [expect.stringMatching(/could not be fetched: must use https/)] });
  });
});
