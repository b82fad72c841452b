import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../startup/config-error.js";
import type { AuthzConfig } from "../../services/authz/config.js";
import type { Client } from "../../services/authz/oauth/model.js";
import { verifySectorIdentifierUris } from "../../services/authz/sector-identifiers.js";
import { startHttpsDocumentServer, type HttpsDocumentServer } from "../support/https-document-server.js";

/**
 * OpenID Connect Core §8.1: a pairwise client's sector_identifier_uri is
 * fetched through the one outbound fetcher (services/authz/fetch/) from a
 * real https server, and must list every redirect URI.
 */
let server: HttpsDocumentServer;
beforeAll(async () => {
  server = await startHttpsDocumentServer();
  server.documents.set("/sector.json", ["https://a.test/cb", "https://b.test/cb"]);
  server.documents.set("/object.json", { redirect_uris: ["https://a.test/cb"] });
});
afterAll(() => server.close());

const client = (redirectUris: string[], path: string) => ({ id: "rp", redirectUris, sectorIdentifierUri: `${server.base}${path}`, subjectType: "pairwise" }) as unknown as Client;
const config = (c: Client, allowPrivateHosts = ["localhost"]): Pick<AuthzConfig, "clients" | "fetch"> => ({
  clients: new Map([["rp", c]]),
  fetch: { timeoutMs: 3_000, maxBytes: 64 * 1024, minCacheSeconds: 60, maxCacheSeconds: 86_400, refetchCooldownSeconds: 10, allowPrivateHosts, trustedCa: readFileSync(server.certificateFile, "utf8") },
});

describe("OpenID Connect Core §8.1: sector_identifier_uri", () => {
  it("a document listing every redirect URI is accepted", async () => {
    await verifySectorIdentifierUris(config(client(["https://a.test/cb", "https://b.test/cb"], "/sector.json")));
  });

  it("one that misses a redirect URI, is not an array, or cannot be fetched refuses the configuration, a problem per client", async () => {
    const missing = verifySectorIdentifierUris(config(client(["https://a.test/cb", "https://c.test/cb"], "/sector.json")));
    await expect(missing).rejects.toBeInstanceOf(ConfigError);
    await expect(missing).rejects.toMatchObject({ problems: ["clients[id=rp].sectorIdentifierUri: the document does not list https://c.test/cb"] });
    await expect(verifySectorIdentifierUris(config(client(["https://a.test/cb"], "/object.json")))).rejects.toMatchObject({
      problems: ["clients[id=rp].sectorIdentifierUri: the document must be a JSON array of URIs"],
    });
    await expect(verifySectorIdentifierUris(config(client(["https://a.test/cb"], "/absent.json")))).rejects.toMatchObject({
      problems: [expect.stringMatching(/could not be fetched: answered HTTP 404/)],
    });
  });

  it("a loopback host is refused unless the development allow-list names it (SSRF)", async () => {
    await expect(verifySectorIdentifierUris(config(client(["https://a.test/cb"], "/sector.json"), []))).rejects.toMatchObject({
      problems: [expect.stringMatching(/could not be fetched/)],
    });
  });
});
