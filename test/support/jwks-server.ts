import type { JWK } from "jose";
import { startLocalHttpsServer } from "./local-https-server.js";

/**
 * A real https server on loopback that publishes a JWK Set, as a client's
 * `jwks_uri` or a cluster's JWKS endpoint would, with a self-signed
 * certificate for `localhost` and 127.0.0.1 (local-https-server.ts). Its key set can
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
  let fetches = 0;
  const state = { keys: [] as JWK[], cacheControl: "max-age=300" };
  const server = await startLocalHttpsServer("jwks", (request, response) => {
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
  return {
    port: server.port,
    url: `${server.base}/jwks.json`,
    certificate: server.certificate,
    certificateFile: server.certificateFile,
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
    close: () => server.close(),
  };
}
