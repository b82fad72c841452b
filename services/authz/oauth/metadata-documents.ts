/**
 * The port through which the core reads Client ID Metadata Documents
 * (draft-ietf-oauth-client-id-metadata-document): implemented over the one
 * SSRF-guarded fetcher (fetch/client-metadata-document-fetcher.ts), cached
 * per the document's HTTP caching headers within bounds.
 */
export interface ClientMetadataDocuments {
  /** The JSON document at `url`; throws ClientMetadataDocumentError when it cannot be had. */
  get(url: string): Promise<unknown>;
}

/** A document that could not be fetched or is not a JSON object; the message says why (no secrets in it). */
export class ClientMetadataDocumentError extends Error {
  override readonly name = "ClientMetadataDocumentError";
}
