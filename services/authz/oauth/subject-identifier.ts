import { createHmac } from "node:crypto";
import { OAuthError } from "./errors.js";
import type { Client, ServerPolicy } from "./model.js";

/**
 * The `sub` a client sees (OpenID Connect Core §8): the user's subject for a
 * public client, or a pairwise identifier (§8.1) that differs per sector and
 * cannot be correlated across sectors without the server's salt:
 * HMAC-SHA-256(salt, sector identifier NUL subject), base64url.
 */
export function subjectFor(policy: Pick<ServerPolicy, "pairwiseSalt">, client: Client, subject: string): string {
  if (client.subjectType !== "pairwise") return subject;
  if (policy.pairwiseSalt === undefined || client.sectorIdentifier === undefined) {
    // The configuration check refuses such a client; reaching here is a bug, never a public sub in disguise.
    throw new OAuthError("server_error", "pairwise subject identifiers are not configured");
  }
  return createHmac("sha256", policy.pairwiseSalt).update(`${client.sectorIdentifier}\u0000${subject}`, "utf8").digest("base64url");
}

/**
 * §8.1: the sector identifier of a pairwise client is "the host component of
 * the registered redirect_uri" when it has one host; with several hosts an
 * explicit sector identifier is required (dynamic registration would fetch a
 * sector_identifier_uri; here the operator, who is trusted, names it).
 * Returns the sector, or a problem.
 */
export function sectorIdentifierOf(redirectUris: readonly string[], configured: string | undefined): { sector: string } | { problem: string } {
  if (configured !== undefined) return { sector: configured };
  const hosts = new Set<string>();
  for (const uri of redirectUris) {
    try {
      hosts.add(new URL(uri).host);
    } catch {
      // Reported by the redirect URI check.
    }
  }
  if (hosts.size === 1) return { sector: [...hosts][0]! };
  return { problem: hosts.size === 0 ? "a pairwise client needs a redirect URI or a sectorIdentifier" : "redirect URIs on several hosts: name the sectorIdentifier (OpenID Connect Core §8.1)" };
}
