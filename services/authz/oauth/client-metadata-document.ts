import { clientFromMetadata, parseClientMetadata } from "./client-metadata.js";
import type { OAuthContext } from "./context.js";
import type { DirectorySource } from "./directory.js";
import { OAuthError } from "./errors.js";
import type { Client } from "./model.js";
import { ClientMetadataDocumentError } from "./metadata-documents.js";

/** True when `clientId` is meant as a metadata document URL (an https URL), valid or not. */
export function isMetadataDocumentClientId(clientId: string): boolean {
  return clientId.startsWith("https://");
}

/**
 * The draft's §3 rules for a client identifier URL: "MUST have an https
 * scheme and MUST contain a path component, MUST NOT contain single-dot or
 * double-dot path segments, MUST NOT contain a fragment component and MUST
 * NOT contain a username or password"; a query "SHOULD NOT" be included and
 * is refused here. It must also be in the URL parser's own form, so that the
 * document's `client_id` is compared with exactly one spelling.
 * Returns a problem, or undefined.
 */
export function checkClientIdUrl(clientId: string): string | undefined {
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    return "is not a URL";
  }
  if (url.protocol !== "https:") return "must be an https URL";
  if (url.username !== "" || url.password !== "") return "must not contain a username or password";
  if (clientId.includes("#")) return "must not contain a fragment";
  if (url.search !== "" || clientId.includes("?")) return "must not contain a query";
  if (/(^|\/)\.{1,2}(\/|$)/.test(clientId.slice(url.origin.length)) || /%2e/i.test(clientId)) return "must not contain dot segments";
  if (url.pathname === "/" || url.pathname === "") return "must contain a path component";
  if (url.href !== clientId) return "must be written in its normal form (lower-case host, no default port)";
  return undefined;
}

/**
 * The client whose id is the URL of its metadata document, or undefined
 * when the tenant does not resolve such ids (or `clientId` is not an https
 * URL). The document must name itself: its `client_id` equals the URL
 * exactly (§4.1: "the authorization server MUST validate that the client_id
 * in the document matches the URL"); its redirect URIs and other metadata
 * are validated as a registration's (client-metadata.ts), and it is always
 * a public client (§4.1: no shared secrets).
 */
export async function resolveMetadataDocumentClient(ctx: Pick<OAuthContext, "policy" | "metadataDocuments">, clientId: string): Promise<Client | undefined> {
  if (ctx.policy.registration?.clientIdMetadataDocuments !== true || ctx.metadataDocuments === undefined) return undefined;
  if (!isMetadataDocumentClientId(clientId)) return undefined;
  const problem = checkClientIdUrl(clientId);
  if (problem !== undefined) throw new OAuthError("invalid_client", `client_id ${problem} (a client ID metadata document URL)`);
  let document: unknown;
  try {
    document = await ctx.metadataDocuments.get(clientId);
  } catch (error) {
    if (error instanceof ClientMetadataDocumentError) throw new OAuthError("invalid_client", `the client's metadata document could not be used: ${error.message}`, { cause: error });
    throw error;
  }
  if (typeof document !== "object" || document === null || (document as { client_id?: unknown }).client_id !== clientId) {
    throw new OAuthError("invalid_client", "the client's metadata document names another client_id than its URL");
  }
  const metadata = parseClientMetadata(document, ctx.policy.registration, "metadata-document");
  return clientFromMetadata(clientId, metadata, "metadata-document");
}

/** Client ID Metadata Documents as the last source of the tenant's directory (oauth/directory.ts). */
export function metadataDocumentSource(ctx: Pick<OAuthContext, "policy" | "metadataDocuments">): DirectorySource {
  return { findClient: (clientId) => resolveMetadataDocumentClient(ctx, clientId) };
}
