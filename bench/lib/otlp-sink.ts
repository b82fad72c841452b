import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface OtlpSink {
  /** http://127.0.0.1:<port>: an OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  /** Export requests and their bytes received so far. */
  stats(): { exports: number; bytes: number };
  close(): Promise<void>;
}

/**
 * An OTLP/HTTP endpoint that reads every export and answers 200 without
 * decoding it: what a collector costs the exporting process (serialising,
 * sending), without a collector's own CPU on the shared cores. Loopback only.
 */
export async function startOtlpSink(): Promise<OtlpSink> {
  let exports = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on("data", (chunk: Buffer) => (bytes += chunk.length));
    req.on("end", () => {
      exports++;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats: () => ({ exports, bytes }),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
