import { startLocalHttpsServer } from "./local-https-server.js";

/**
 * A real https server on loopback serving JSON documents by path (an OpenID
 * Connect sector_identifier_uri, ...), with a self-signed certificate for
 * `localhost` (local-https-server.ts).
 */
export interface HttpsDocumentServer {
  /** https://localhost:<port> */
  readonly base: string;
  /** The certificate's path on disk, for `authz.fetch.trustedCa: { file }`. */
  readonly certificateFile: string;
  /** Path → JSON body; anything else answers 404. */
  readonly documents: Map<string, unknown>;
  close(): Promise<void>;
}

export async function startHttpsDocumentServer(): Promise<HttpsDocumentServer> {
  const documents = new Map<string, unknown>();
  const server = await startLocalHttpsServer("documents", (request, response) => {
    const document = documents.get(request.url ?? "");
    if (document === undefined) return response.writeHead(404).end();
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(document));
  });
  return { base: server.base, certificateFile: server.certificateFile, documents, close: () => server.close() };
}
