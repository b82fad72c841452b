import * as http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { createRpcServer, type RpcServer } from "../../services/authz/transport/server.js";

/**
 * The authz service's port (services/authz/transport/server.ts) drains on
 * SIGTERM: in-flight calls finish, idle connections close. HTTP/1.1
 * connections are handed to a server that never listens, so Node's own idle
 * tracking does not see them; these hold the server's own.
 */

let server: RpcServer | undefined;
afterEach(async () => {
  await server?.close(0);
  server = undefined;
});

/** A server whose HTTP/1.1 answers wait for `release` when the path is /slow. */
function startServer() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const rpc = createRpcServer({
    node: (request, response) => {
      const answer = () => response.writeHead(200, { "content-type": "text/plain" }).end("ok");
      if (request.url === "/slow") void released.then(answer);
      else answer();
    },
    stream: (stream) => {
      stream.respond({ ":status": 200 });
      stream.end("ok");
    },
  });
  return { rpc, release };
}

function get(port: number, path: string, agent: http.Agent): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, body }));
      })
      .on("error", reject);
  });
}

describe("the RPC port drains HTTP/1.1 keep-alive connections", () => {
  it("an idle kept-alive connection does not hold the drain: close() returns without waiting out its grace, and the connection is closed", async () => {
    const { rpc } = startServer();
    server = rpc;
    const { port } = await rpc.listen(0, "127.0.0.1");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect((await get(port, "/ready", agent)).status).toBe(200);
    const [socket] = Object.values(agent.freeSockets).flat();
    expect(socket).toBeDefined();
    const socketClosed = new Promise<void>((resolve) => socket!.once("close", () => resolve()));
    // A grace far beyond the test's timeout: only closing the idle connection lets close() return in time.
    await rpc.close(60 * 60_000);
    await socketClosed;
    agent.destroy();
  });

  it("a request in flight when the drain starts is answered, with Connection: close, and then its connection ends", async () => {
    const { rpc, release } = startServer();
    server = rpc;
    const { port } = await rpc.listen(0, "127.0.0.1");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const slow = get(port, "/slow", agent);
    await new Promise<void>((resolve) => {
      const poll = () => (rpc.openCalls() === 1 ? resolve() : setImmediate(poll));
      poll();
    });
    const closing = rpc.close(60 * 60_000);
    release();
    const answer = await slow;
    expect(answer).toMatchObject({ status: 200, body: "ok", connection: "close" });
    await closing;
    expect(rpc.openCalls()).toBe(0);
    agent.destroy();
  });
});
