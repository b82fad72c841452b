import { createHash } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { freePort } from "../support/redis-server.js";
import { bearer, eventually, startGuardStack, type GuardStack } from "./guard-fixtures.js";

/**
 * Proxying through the guard: bodies stream both ways without buffering,
 * upstream connections are kept alive, an upstream that is down or slow gets
 * 502/504 in the route's style, and WebSocket handshakes take the same check.
 */

let s: GuardStack;
let flaky: EchoUpstream;
let read: string;
let write: string;
const deadPort = await freePort();

beforeAll(async () => {
  flaky = await startEchoUpstream();
  s = await startGuardStack({
    redisUrl: inject("redisUrl"),
    patch: (file, upstream) => {
      file.routes = [
        { name: "files", path: "/files/**", scopes: ["write"], upstream },
        { name: "read", methods: ["GET"], path: "/read/**", scopes: ["read"], upstream },
        { name: "slow", path: "/slow/**", scopes: ["read"], upstream, errorStyle: "problem+json" },
        { name: "dead", path: "/dead/**", scopes: ["read"], upstream: `http://127.0.0.1:${deadPort}` },
        { name: "flaky", path: "/flaky/**", scopes: ["read"], upstream: flaky.url },
        { name: "ws", methods: ["GET"], path: "/ws/**", scopes: ["read"], upstream },
        { name: "ws-dead", methods: ["GET"], path: "/ws-dead/**", scopes: ["read"], upstream: `http://127.0.0.1:${deadPort}` },
      ];
      // bodyLimitBytes (16 KiB by default) is for the gateway's own endpoints; proxied bodies are never read.
      file.gateway = { guard: { upstreamTimeoutMs: 1_000 } };
    },
  });
  [read, write] = await Promise.all([s.tokens("read").then((t) => t.accessToken), s.tokens("write").then((t) => t.accessToken)]);
});
afterAll(async () => {
  await s.close();
  await flaky.close();
});
beforeEach(() => {
  s.upstream.received.length = 0;
});

function send(path: string, options: { method?: string; headers?: Record<string, string> } = {}): { request: ReturnType<typeof httpRequest>; response: Promise<IncomingMessage> } {
  const url = new URL(s.gateway.url);
  let request!: ReturnType<typeof httpRequest>;
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    request = httpRequest({ host: url.hostname, port: url.port, path, method: options.method ?? "GET", headers: options.headers }, resolve);
    request.on("error", reject);
  });
  return { request, response };
}

const readAll = (response: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on("data", (c: Buffer) => chunks.push(c));
    response.on("end", () => resolve(Buffer.concat(chunks)));
    response.on("error", reject);
  });

describe("bodies stream through", () => {
  it("a 24 MiB upload (far over bodyLimitBytes) reaches the upstream intact, and starts arriving before the client has sent it all", async () => {
    const chunk = Buffer.alloc(256 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7) & 0xff;
    const total = 96;
    const hash = createHash("sha256");
    const { request, response } = send("/files/upload", { method: "PUT", headers: { ...bearer(write), "content-type": "application/octet-stream" } });
    const seenBefore = s.upstream.bodyBytesSeen;
    // Half of it, then wait until the upstream has bytes: a buffering proxy would hold them until the end.
    for (let i = 0; i < total / 2; i++) {
      request.write(chunk);
      hash.update(chunk);
    }
    await eventually(() => s.upstream.bodyBytesSeen - seenBefore > 0, 10_000);
    for (let i = total / 2; i < total; i++) {
      request.write(chunk);
      hash.update(chunk);
    }
    request.end();
    const answer = await response;
    expect(answer.statusCode).toBe(200);
    await readAll(answer);
    const seen = s.upstream.last()!;
    expect(seen.bodyLength).toBe(total * chunk.length);
    expect(seen.bodySha256).toBe(hash.digest("hex"));
    expect(seen.headers["transfer-encoding"]).toBe("chunked");
  });

  it("an upload to a refused request is not read: 401 comes back and nothing reaches the upstream", async () => {
    const { request, response } = send("/files/upload", { method: "PUT", headers: { "content-length": String(64 * 1024 * 1024) } });
    request.write(Buffer.alloc(64 * 1024));
    const answer = await response;
    expect(answer.statusCode).toBe(401);
    request.destroy();
    expect(s.upstream.received).toHaveLength(0);
  });

  it("RFC 9110 §10.1.1 Expect: 100-continue: a refused upload gets its 401 without a 100; an allowed one gets 100, then sends its body", async () => {
    const attempt = (headers: Record<string, string>) =>
      new Promise<{ continued: boolean; status: number }>((resolve, reject) => {
        let continued = false;
        const { request, response } = send("/files/expect", { method: "PUT", headers: { ...headers, expect: "100-continue", "content-length": "5" } });
        request.on("continue", () => {
          continued = true;
          request.end("hello");
        });
        response.then(async (answer) => {
          await readAll(answer);
          if (!continued) request.destroy();
          resolve({ continued, status: answer.statusCode ?? 0 });
        }, reject);
      });
    expect(await attempt({})).toEqual({ continued: false, status: 401 });
    expect(s.upstream.received).toHaveLength(0);
    expect(await attempt(bearer(write))).toEqual({ continued: true, status: 200 });
    expect(s.upstream.last()!.body.toString()).toBe("hello");
    expect(s.upstream.last()!.headers.expect).toBeUndefined();
  });

  it("a large response streams back intact", async () => {
    const { request, response } = send("/read/big?echo-bytes=8388608", { headers: bearer(read) });
    request.end();
    const answer = await response;
    expect(answer.statusCode).toBe(200);
    expect(answer.headers["content-length"]).toBe("8388608");
    const body = await readAll(answer);
    const { patternBytes } = await import("../support/echo-upstream.js");
    expect(body.equals(patternBytes(8_388_608))).toBe(true);
  });

  it("a response streams: the first chunk arrives while the upstream is still sending; a stall then cuts the client off rather than ending cleanly", async () => {
    const { request, response } = send("/slow/stall?echo-stall=1", { headers: bearer(read) });
    request.end();
    const answer = await response;
    expect(answer.statusCode).toBe(200);
    const first = await new Promise<string>((resolve) => answer.once("data", (c: Buffer) => resolve(c.toString())));
    expect(first).toBe("first chunk;");
    // upstreamTimeoutMs (1 s) of silence: the upstream connection is dropped, and so is the client's.
    const ending = await new Promise<string>((resolve) => {
      answer.on("end", () => resolve("ended cleanly"));
      answer.on("error", () => resolve("aborted"));
      answer.on("aborted", () => resolve("aborted"));
    });
    expect(ending).toBe("aborted");
  });
});

describe("upstream failures", () => {
  it("an upstream that does not answer within upstreamTimeoutMs: 504, in the route's style (problem+json)", async () => {
    const response = await fetch(`${s.gateway.url}/slow/x?echo-delay=5000`, { headers: bearer(read) });
    expect(response.status).toBe(504);
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toMatchObject({ status: 504 });
    expect(await s.gateway.metric("gatehouse_guard_upstream_failures_total", { route: "slow", kind: "timeout" })).toBeGreaterThanOrEqual(1);
  });

  it("an upstream that refuses connections: 502 (RFC 6750 style JSON), no challenge", async () => {
    const response = await fetch(`${s.gateway.url}/dead/x`, { headers: bearer(read) });
    expect(response.status).toBe(502);
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await s.gateway.metric("gatehouse_guard_upstream_failures_total", { route: "dead", kind: "unreachable" })).toBeGreaterThanOrEqual(1);
  });

  it("an upstream that goes away and comes back: 502 while it is gone, 200 again after (kept-alive sockets to it are not reused dead)", async () => {
    expect((await fetch(`${s.gateway.url}/flaky/a`, { headers: bearer(read) })).status).toBe(200);
    await flaky.refuse();
    expect((await fetch(`${s.gateway.url}/flaky/a`, { headers: bearer(read) })).status).toBe(502);
    await flaky.accept();
    expect((await fetch(`${s.gateway.url}/flaky/a`, { headers: bearer(read) })).status).toBe(200);
  });
});

describe("upstream connections", () => {
  it("are kept alive: 30 requests in a row use one or two connections, not 30", async () => {
    const before = s.upstream.connections;
    for (let i = 0; i < 30; i++) {
      const response = await fetch(`${s.gateway.url}/read/k${i}`, { headers: bearer(read) });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    expect(s.upstream.connections - before).toBeLessThanOrEqual(2);
  });

  it("an HTTP/1.0 request without Host reaches the upstream with one (the upstream speaks HTTP/1.1, where Host is required)", async () => {
    const url = new URL(s.gateway.url);
    const socket = connect(Number(url.port), url.hostname);
    socket.write(`GET /read/old-client HTTP/1.0\r\nAuthorization: Bearer ${read}\r\n\r\n`);
    const answer = await new Promise<string>((resolve, reject) => {
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(s.upstream.last()?.headers.host).toBe(new URL(s.upstream.url).host);
  });
});

describe("WebSocket upgrades go through the same check", () => {
  const wsUrl = (path: string) => `${s.gateway.url.replace("http:", "ws:")}${path}`;

  /** The HTTP answer to a refused handshake. */
  const refusal = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
      const socket = new WebSocket(wsUrl(path), { headers });
      socket.on("open", () => reject(new Error("the handshake was accepted")));
      socket.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      socket.on("error", () => {});
    });

  it("a token with the scope: the handshake is proxied with the verified identity, and messages flow both ways", async () => {
    const socket = new WebSocket(wsUrl("/ws/chat?room=1"), { headers: { ...bearer(read), "x-gatehouse-subject": "admin" } });
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    const reply = new Promise<string>((resolve) => socket.once("message", (data) => resolve(data.toString())));
    socket.send("hello");
    expect(await reply).toBe("echo:hello");
    const handshake = s.upstream.received.find((r) => r.websocket)!;
    expect(handshake.url).toBe("/ws/chat?room=1");
    expect(handshake.headers["x-gatehouse-subject"]).toBe("user-alice");
    expect(handshake.headers["x-gatehouse-scope"]).toBe("read");
    expect(handshake.headers.authorization).toBeUndefined();
    socket.close();
  });

  it("an open WebSocket is not cut by upstreamTimeoutMs (1 s here): that bounds the handshake, not a quiet connection", async () => {
    const socket = new WebSocket(wsUrl("/ws/idle"), { headers: bearer(read) });
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    let closed = false;
    socket.once("close", () => (closed = true));
    // Idle for longer than the upstream timeout (a socket timer, not the gateway's clock).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(closed).toBe(false);
    const reply = new Promise<string>((resolve) => socket.once("message", (data) => resolve(data.toString())));
    socket.send("still there?");
    expect(await reply).toBe("echo:still there?");
    socket.close();
  });

  it("no token: 401 with the Bearer challenge, and the upstream never sees the handshake", async () => {
    const answer = await refusal("/ws/chat");
    expect(answer.status).toBe(401);
    expect(answer.headers["www-authenticate"]).toBe('Bearer realm="gatehouse"');
    expect(s.upstream.received).toHaveLength(0);
  });

  it("a token without the scope: 403 insufficient_scope", async () => {
    const answer = await refusal("/ws/chat", bearer(write));
    expect(answer.status).toBe(403);
    expect(answer.headers["www-authenticate"]).toContain('error="insufficient_scope"');
    expect(s.upstream.received).toHaveLength(0);
  });

  it("an ambiguous path: 400, like any request", async () => {
    const answer = await refusal("/ws/a%2Fb", bearer(read));
    expect(answer.status).toBe(400);
  });

  it("an upstream that refuses: 502", async () => {
    const answer = await refusal("/ws-dead/chat", bearer(read));
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toMatchObject({ error_description: "the upstream could not be reached" });
  });
});
