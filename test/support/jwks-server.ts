import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JWK } from "jose";

/**
 * A real https server on loopback that publishes a JWK Set, as a client's
 * `jwks_uri` or a cluster's JWKS endpoint would, with a self-signed
 * certificate for `localhost` and 127.0.0.1 made by openssl. Its key set can
 * be replaced (key rotation), and it counts the fetches. Other paths answer
 * the cases a safe fetcher must refuse: a redirect, an oversized body.
 */
export interface JwksServer {
  readonly port: number;
  /** https://localhost:<port>/jwks.json */
  readonly url: string;
  /** The certificate (PEM), to be trusted as a CA. */
  readonly certificate: string;
  /** Its path on disk, for a `{file: ...}` secret reference. */
  readonly certificateFile: string;
  keys: JWK[];
  cacheControl: string;
  readonly fetches: number;
  close(): Promise<void>;
}

export async function startJwksServer(): Promise<JwksServer> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-jwks-"));
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
  const certificate = readFileSync(certificateFile, "utf8");
  let fetches = 0;
  const state = { keys: [] as JWK[], cacheControl: "max-age=300" };
  const server: Server = createServer({ key: readFileSync(keyFile), cert: certificate }, (request, response) => {
    switch (request.url) {
      case "/jwks.json":
        fetches += 1;
        response.writeHead(200, { "content-type": "application/jwk-set+json", "cache-control": state.cacheControl });
        response.end(JSON.stringify({ keys: state.keys }));
        return;
      case "/redirect":
        response.writeHead(302, { location: "/jwks.json" });
        response.end();
        return;
      case "/big":
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ keys: [], padding: "x".repeat(200_000) }));
        return;
      default:
        response.writeHead(404);
        response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://localhost:${port}/jwks.json`,
    certificate,
    certificateFile,
    get keys() {
      return state.keys;
    },
    set keys(keys) {
      state.keys = keys;
    },
    get cacheControl() {
      return state.cacheControl;
    },
    set cacheControl(value) {
      state.cacheControl = value;
    },
    get fetches() {
      return fetches;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
