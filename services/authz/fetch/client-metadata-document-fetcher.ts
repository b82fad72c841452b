import type { Clock } from "../oauth/clock.js";
import { ClientMetadataDocumentError, type ClientMetadataDocuments } from "../oauth/metadata-documents.js";
import { cacheSeconds } from "./remote-jwks-fetcher.js";
import { safeHttpsGet, type SafeGetOptions } from "./safe-https-get.js";

/** The draft's advice and gatehouse's limit: a metadata document is small. */
export const METADATA_DOCUMENT_MAX_BYTES = 5 * 1024;

export interface ClientMetadataDocumentFetcherOptions extends Omit<SafeGetOptions, "maxBytes" | "accept"> {
  clock: Clock;
  /** Bounds of a document's cache lifetime, whatever its Cache-Control says. */
  minCacheSeconds: number;
  maxCacheSeconds: number;
  /** A failed fetch is answered from memory for this long: a client_id that fails cannot make every request fetch again. */
  failureCacheSeconds: number;
  /** Most documents cached at once; the oldest are forgotten first. */
  maxEntries?: number;
}

type Entry = { ok: true; document: unknown; freshUntil: number } | { ok: false; error: ClientMetadataDocumentError; freshUntil: number };

/**
 * The core's ClientMetadataDocuments port over safeHttpsGet (https only, no
 * redirects, 5 KB, a timeout, no private or loopback address after DNS
 * resolution and on connect, unless allow-listed for development), cached
 * per the response's Cache-Control (RFC 9111 §5.2.2) clamped to
 * [minCacheSeconds, maxCacheSeconds]. Concurrent fetches of one URL share
 * one request.
 */
export function createClientMetadataDocumentFetcher(options: ClientMetadataDocumentFetcherOptions): ClientMetadataDocuments {
  const entries = new Map<string, Entry>();
  const inFlight = new Map<string, Promise<Entry>>();
  const maxEntries = options.maxEntries ?? 1_000;

  const remember = (url: string, entry: Entry): Entry => {
    if (entries.size >= maxEntries && !entries.has(url)) entries.delete(entries.keys().next().value!);
    entries.set(url, entry);
    return entry;
  };

  const fetchDocument = async (url: string): Promise<Entry> => {
    try {
      let response;
      try {
        response = await safeHttpsGet(url, { ...options, maxBytes: METADATA_DOCUMENT_MAX_BYTES, accept: "application/json" });
      } catch (error) {
        throw new ClientMetadataDocumentError((error as Error).message);
      }
      if (response.status !== 200) throw new ClientMetadataDocumentError(`answered ${response.status}`);
      let document: unknown;
      try {
        document = JSON.parse(response.body);
      } catch {
        throw new ClientMetadataDocumentError("is not JSON");
      }
      if (typeof document !== "object" || document === null || Array.isArray(document)) throw new ClientMetadataDocumentError("is not a JSON object");
      return remember(url, { ok: true, document, freshUntil: options.clock() + cacheSeconds(response.headers["cache-control"], options) * 1000 });
    } catch (error) {
      return remember(url, { ok: false, error: error as ClientMetadataDocumentError, freshUntil: options.clock() + options.failureCacheSeconds * 1000 });
    }
  };

  return {
    async get(url) {
      let entry = entries.get(url);
      if (entry === undefined || entry.freshUntil <= options.clock()) {
        let pending = inFlight.get(url);
        if (pending === undefined) {
          pending = fetchDocument(url).finally(() => inFlight.delete(url));
          inFlight.set(url, pending);
        }
        entry = await pending;
      }
      if (!entry.ok) throw entry.error;
      return structuredClone(entry.document);
    },
  };
}
