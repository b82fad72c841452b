import { ConfigError } from "../../startup/config-error.js";
import type { AuthzConfig } from "./config.js";
import { fetchJson, type OutboundFetchOptions } from "./outbound-fetch.js";

/**
 * OpenID Connect Core §8.1 and Registration §5: a pairwise client that names
 * a `sectorIdentifierUri` has its document fetched (through the one outbound
 * fetcher: https, no redirects, 64 KiB, 5 s, public addresses only outside
 * development) and checked to be a JSON array listing every redirect URI of
 * the client. Run at start and on every reload; a failure refuses the
 * configuration with a problem per client, as any configuration problem.
 */
export async function verifySectorIdentifierUris(
  config: Pick<AuthzConfig, "clients" | "requireHttps">,
  fetch: (url: string, options: OutboundFetchOptions) => Promise<unknown> = fetchJson,
): Promise<void> {
  const checks = [...config.clients.values()]
    .filter((client) => client.sectorIdentifierUri !== undefined)
    .map(async (client) => {
      const at = `clients[id=${client.id}].sectorIdentifierUri`;
      let document: unknown;
      try {
        document = await fetch(client.sectorIdentifierUri!, { development: !config.requireHttps });
      } catch (error) {
        return `${at}: ${client.sectorIdentifierUri} could not be fetched: ${(error as Error).message}`;
      }
      if (!Array.isArray(document) || !document.every((entry) => typeof entry === "string")) {
        return `${at}: the document must be a JSON array of URIs`;
      }
      const missing = client.redirectUris.filter((uri) => !document.includes(uri));
      return missing.length === 0 ? undefined : `${at}: the document does not list ${missing.join(", ")}`;
    });
  const problems = (await Promise.all(checks)).filter((problem): problem is string => problem !== undefined);
  if (problems.length > 0) throw new ConfigError(problems);
}
