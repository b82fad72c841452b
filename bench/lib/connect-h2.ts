import * as http2 from "node:http2";

/**
 * A lean Connect-protocol unary client for load generation: HTTP/2 POSTs of
 * pre-encoded binary messages (application/proto, RFC-less but per the
 * Connect protocol spec), over a few kept-alive sessions. It skips
 * everything the connect-es client does for safety and ergonomics, so that on
 * a two-core machine the load generator does not eat the server's core.
 */
export interface ConnectH2Client {
  /** POSTs `body` to `/<service>/<method>`; resolves with the response body, rejects on a non-200. */
  call(path: string, body: Uint8Array, headers?: Record<string, string>): Promise<Buffer>;
  close(): void;
}

export function createConnectH2Client(baseUrl: string, options: { sessions?: number } = {}): ConnectH2Client {
  const connect = () => {
    const session = http2.connect(baseUrl, { settings: { initialWindowSize: 1 << 20 } });
    session.on("error", () => {});
    return session;
  };
  const sessions = Array.from({ length: options.sessions ?? 4 }, connect);
  let next = 0;
  return {
    call(path, body, headers = {}) {
      const slot = next++ % sessions.length;
      // A session that failed or was closed (server restart) is replaced on next use.
      if (sessions[slot]!.closed || sessions[slot]!.destroyed) sessions[slot] = connect();
      const session = sessions[slot]!;
      return new Promise((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": path,
          "content-type": "application/proto",
          "connect-protocol-version": "1",
          ...headers,
        });
        let status = 0;
        const chunks: Buffer[] = [];
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          const payload = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          if (status === 200) resolve(payload);
          else reject(new Error(`HTTP ${status}: ${payload.toString("utf8").slice(0, 200)}`));
        });
        stream.on("error", reject);
        stream.end(body);
      });
    },
    close() {
      for (const session of sessions) session.close();
    },
  };
}
