import { ConfigError } from "../../startup/config-error.js";
import type { AuthzConfig } from "./config.js";
import { safeHttpsGet } from "./fetch/safe-https-get.js";

/** Fetches a document a client named; the JSON it holds, or a thrown reason. */
export type DocumentFetcher = (url: string) => Promise<unknown>;

/**
 * The one fetcher of URLs others name (fetch/safe-https-get.ts: https only, no
 * redirects, bounded in time and size, private and loopback addresses refused
 * unless `authz.fetch.allowPrivateHosts` names the host), with its
 * configuration, for JSON documents.
 */
export function createDocumentFetcher(fetch: AuthzConfig["fetch"]): DocumentFetcher {
  return async (url) => {
    const response = await safeHttpsGet(url, { timeoutMs: fetch.timeoutMs, maxBytes: fetch.maxBytes, allowPrivateHosts: fetch.allowPrivateHosts, ca: fetch.trustedCa });
    if (response.status !== 200) throw new Error(`answered HTTP ${response.status}`);
    try {
      return JSON.parse(response.body) as unknown;
    } catch {
      throw new Error("the document is not JSON");
    }
  };
}

/**
 * OpenID Connect Core §8.1 and Registration §5: a pairwise client that names
 * a `sectorIdentifierUri` has its document fetched and checked to be a JSON
 * array listing every redirect URI of the client. Run at start and on every
 * reload; a failure refuses the configuration with a problem per client, as
 * any configuration problem.
 */
export async function verifySectorIdentifierUris(
  config: Pick<AuthzConfig, "clients" | "fetch">,
  fetchDocument: DocumentFetcher = createDocumentFetcher(config.fetch),
  /** Where the clients are in the file (a tenant's: `tenants[name=…].`). */
  at = "",
): Promise<void> {
  const checks = [...config.clients.values()]
    .filter((client) => client.sectorIdentifierUri !== undefined)
    .map(async (client) => {
      const path = `${at}clients[id=${client.id}].sectorIdentifierUri`;
      let document: unknown;
      try {
        document = await fetchDocument(client.sectorIdentifierUri!);
      } catch (error) {
        return `${path}: ${client.sectorIdentifierUri} could not be fetched: ${(error as Error).message}`;
      }
      if (!Array.isArray(document) || !document.every((entry) => typeof entry === "string")) {
        return `${path}: the document must be a JSON array of URIs`;
      }
      const missing = client.redirectUris.filter((uri) => !document.includes(uri));
      return missing.length === 0 ? undefined : `${path}: the document does not list ${missing.join(", ")}`;
    });
  const problems = (await Promise.all(checks)).filter((problem): problem is string => problem !== undefined);
  if (problems.length > 0) throw new ConfigError(problems);
}
