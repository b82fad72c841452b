import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A real https server on loopback serving JSON documents by path (an OpenID
 * Connect sector_identifier_uri, ...), with a self-signed certificate for
 * `localhost` made by openssl, as test/support/jwks-server.ts does.
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
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-documents-"));
  const keyFile = join(dir, "key.pem");
  const certificateFile = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout", keyFile, "-out", certificateFile,
    ],
    { stdio: "ignore" },
  );
  const documents = new Map<string, unknown>();
  const server = createServer({ key: readFileSync(keyFile), cert: readFileSync(certificateFile) }, (request, response) => {
    const document = documents.get(request.url ?? "");
    if (document === undefined) return response.writeHead(404).end();
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(document));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    base: `https://localhost:${(server.address() as AddressInfo).port}`,
    certificateFile,
    documents,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
