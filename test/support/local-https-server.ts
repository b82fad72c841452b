import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A real https server on loopback with a self-signed certificate for `localhost` and 127.0.0.1. */
export interface LocalHttpsServer {
  readonly port: number;
  /** https://localhost:<port> */
  readonly base: string;
  /** The certificate (PEM), to be trusted as a CA. */
  readonly certificate: string;
  /** Its path on disk, for a `{file: ...}` secret reference (`authz.fetch.trustedCa`). */
  readonly certificateFile: string;
  close(): Promise<void>;
}

/**
 * Starts one with `handler`; openssl makes its key and certificate, which
 * close() removes. `dnsNames` are added to the certificate, for tests whose
 * resolver maps other names to this server.
 */
export async function startLocalHttpsServer(name: string, handler: (request: IncomingMessage, response: ServerResponse) => void, dnsNames: readonly string[] = []): Promise<LocalHttpsServer> {
  const dir = mkdtempSync(join(tmpdir(), `gatehouse-${name}-`));
  const keyFile = join(dir, "key.pem");
  const certificateFile = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-addext", `subjectAltName=${["DNS:localhost", ...dnsNames.map((dns) => `DNS:${dns}`), "IP:127.0.0.1"].join(",")}`,
      "-keyout", keyFile, "-out", certificateFile,
    ],
    { stdio: "ignore" },
  );
  const certificate = readFileSync(certificateFile, "utf8");
  const server: Server = createServer({ key: readFileSync(keyFile), cert: certificate }, handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    base: `https://localhost:${port}`,
    certificate,
    certificateFile,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
