import { request as httpRequest, createServer, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createUpstreamPool, keepAliveHintMs, type UpstreamPool } from "../../gateway/upstream-pool.js";
import { startLocalHttpsServer } from "../support/local-https-server.js";
import { waitFor } from "../support/wait-for.js";

/**
 * The guard's upstream connections (gateway/upstream-pool.ts) against real
 * node:http servers on loopback: kept alive and reused newest first, a
 * request bounded by the pool's timeout and never by the upstream's
 * Keep-Alive hint, an idle connection reused only while the upstream keeps
 * it, and nothing reused that cannot carry another request.
 */

interface Upstream {
  readonly port: number;
  /** Server-side sockets, in the order they were accepted. */
  readonly sockets: Socket[];
  close(): Promise<void>;
}

/** A node:http upstream; `?delay=ms` answers late, `?hint=s` announces `Keep-Alive: timeout=s` itself. */
async function startUpstream(options: { keepAliveTimeout?: number; handler?: (req: IncomingMessage, res: ServerResponse) => void } = {}): Promise<Upstream> {
  const sockets: Socket[] = [];
  const server: Server = createServer({ keepAliveTimeout: options.keepAliveTimeout ?? 60_000 }, (req, res) => {
    if (options.handler !== undefined) return options.handler(req, res);
    const url = new URL(req.url ?? "/", "http://upstream");
    const hint = url.searchParams.get("hint");
    // A response that sets Connection itself gets no Keep-Alive field from node:http: this one is the only hint.
    if (hint !== null) res.setHeader("connection", "keep-alive").setHeader("keep-alive", `timeout=${hint}`);
    const delay = Number(url.searchParams.get("delay") ?? 0);
    setTimeout(() => res.end(`ok ${req.url}`), delay);
  });
  server.on("connection", (socket: Socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly reused: boolean;
}

/** One GET through the pool, as the guard's proxy sends it (headers as a list; 'timeout' ends the request). */
function get(pool: UpstreamPool, port: number, path: string, extra: { protocol?: string; hostname?: string; onRequest?: (request: ClientRequest) => void } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ protocol: extra.protocol ?? "http:", hostname: extra.hostname ?? "127.0.0.1", port, path, agent: pool.agent, headers: ["host", `upstream:${port}`] });
    request.once("timeout", () => request.destroy(Object.assign(new Error("upstream silent"), { code: "TIMEOUT" })));
    request.on("error", reject);
    request.on("response", (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body, reused: request.reusedSocket }));
      response.on("error", reject);
      response.on("aborted", () => reject(new Error("response aborted")));
    });
    extra.onRequest?.(request);
    request.end();
  });
}

const pools: UpstreamPool[] = [];
const upstreams: Upstream[] = [];
afterEach(async () => {
  for (const pool of pools.splice(0)) pool.destroy();
  for (const upstream of upstreams.splice(0)) await upstream.close();
});

async function setUp(upstreamOptions: Parameters<typeof startUpstream>[0] = {}, timeoutMs = 10_000, now?: () => number): Promise<{ upstream: Upstream; pool: UpstreamPool }> {
  const upstream = await startUpstream(upstreamOptions);
  upstreams.push(upstream);
  const pool = createUpstreamPool({ secure: false, hostname: "127.0.0.1", port: upstream.port }, { timeoutMs, ...(now === undefined ? {} : { now }) });
  pools.push(pool);
  return { upstream, pool };
}

/** Waits until every connection of the pool is idle again ('free' comes a tick after the response ends). */
const settled = (pool: UpstreamPool, idle: number) => waitFor(() => pool.idleConnections === idle && pool.openConnections === idle, { budgetMs: 2_000, what: `${idle} idle connections` });

describe("keep-alive", () => {
  it("requests in a row share one connection: the first opens it, every other reuses it", async () => {
    const { upstream, pool } = await setUp();
    const answers: Answer[] = [];
    for (let i = 0; i < 20; i++) answers.push(await get(pool, upstream.port, `/n${i}`));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(answers[7]!.body).toBe("ok /n7");
    expect(answers.map((a) => a.reused)).toEqual([false, ...Array(19).fill(true)]);
    expect(upstream.sockets).toHaveLength(1);
    await settled(pool, 1);
  });

  it("requests at once get a connection each; afterwards they are all idle and reused, none opened again", async () => {
    const { upstream, pool } = await setUp();
    const first = await Promise.all(Array.from({ length: 8 }, (_, i) => get(pool, upstream.port, `/a${i}?delay=50`)));
    expect(first.every((a) => a.status === 200 && !a.reused)).toBe(true);
    await settled(pool, 8);
    const second = await Promise.all(Array.from({ length: 8 }, (_, i) => get(pool, upstream.port, `/b${i}`)));
    expect(second.every((a) => a.status === 200 && a.reused)).toBe(true);
    expect(upstream.sockets).toHaveLength(8);
  });

  it("the newest idle connection goes first (LIFO): the others can reach the upstream's idle timeout and close", async () => {
    const { upstream, pool } = await setUp();
    await Promise.all([get(pool, upstream.port, "/x?delay=30"), get(pool, upstream.port, "/y?delay=60")]);
    await settled(pool, 2);
    const [early, late] = upstream.sockets;
    // The connection whose response ended last is the one reused.
    let answer!: Promise<Answer>;
    const lastFreed = await new Promise<Socket>((resolve) => {
      for (const socket of [early!, late!]) socket.once("data", () => resolve(socket));
      answer = get(pool, upstream.port, "/z");
    });
    expect(lastFreed).toBe(late);
    expect(await answer).toMatchObject({ status: 200, reused: true });
  });

  it("at most maxIdle connections wait; more are closed when their response ends", async () => {
    const upstream = await startUpstream();
    upstreams.push(upstream);
    const pool = createUpstreamPool({ secure: false, hostname: "127.0.0.1", port: upstream.port }, { timeoutMs: 10_000, maxIdle: 3 });
    pools.push(pool);
    await Promise.all(Array.from({ length: 6 }, (_, i) => get(pool, upstream.port, `/m${i}?delay=40`)));
    await settled(pool, 3);
    await waitFor(() => upstream.sockets.filter((s) => !s.destroyed).length === 3, { budgetMs: 2_000, what: "the upstream to see 3 connections closed" });
  });
});

describe("timeouts", () => {
  it("a request on a reused connection gets the pool's timeout, not the upstream's Keep-Alive hint (http.Agent cut it at hint - 1 s)", async () => {
    // Node's http.Agent: with `Keep-Alive: timeout=2` the freed socket's timeout became 1 s and stayed so when reused,
    // so this request failed at 1 s of silence although the timeout is 10 s.
    const { upstream, pool } = await setUp({ keepAliveTimeout: 2_000 });
    const first = await get(pool, upstream.port, "/first");
    expect(first.reused).toBe(false);
    const slow = await get(pool, upstream.port, "/slow?delay=1500");
    expect(slow).toEqual({ status: 200, body: "ok /slow?delay=1500", reused: true });
  });

  it("an upstream silent for timeoutMs: the request is told ('timeout') and fails; the connection is not kept", async () => {
    const { upstream, pool } = await setUp({}, 300);
    await expect(get(pool, upstream.port, "/never?delay=5000")).rejects.toMatchObject({ code: "TIMEOUT" });
    await waitFor(() => pool.openConnections === 0, { budgetMs: 2_000, what: "the timed-out connection to be closed" });
    expect((await get(pool, upstream.port, "/next")).status).toBe(200);
  });

  it("a request nobody listens to 'timeout' for is ended by the pool, not left hanging", async () => {
    const { upstream, pool } = await setUp({}, 300);
    const failure = await new Promise<Error>((resolve) => {
      const request = httpRequest({ hostname: "127.0.0.1", port: upstream.port, path: "/never?delay=5000", agent: pool.agent, headers: ["host", "upstream"] });
      request.on("error", resolve);
      request.end();
    });
    expect(failure.message).toMatch(/silent for 300 ms/);
  });

  it("an idle connection silent for timeoutMs is closed", async () => {
    const { upstream, pool } = await setUp({}, 300);
    await get(pool, upstream.port, "/once");
    await waitFor(() => pool.openConnections === 0 && upstream.sockets[0]!.destroyed, { budgetMs: 3_000, what: "the idle connection to be closed by the pool" });
  });
});

describe("what is reused", () => {
  it("an idle connection is reused until a second before the upstream's announced Keep-Alive timeout, then replaced", async () => {
    let clock = 1_000_000;
    const { upstream, pool } = await setUp({}, 10_000, () => clock);
    expect((await get(pool, upstream.port, "/a?hint=3")).reused).toBe(false);
    await settled(pool, 1);
    clock += 1_900;
    expect((await get(pool, upstream.port, "/b?hint=3")).reused).toBe(true);
    await settled(pool, 1);
    // 2 s after this response: past 3 s - 1 s. The old connection is closed, a new one carries the request.
    clock += 2_000;
    const late = await get(pool, upstream.port, "/c");
    expect(late).toMatchObject({ status: 200, reused: false });
    expect(upstream.sockets).toHaveLength(2);
    await waitFor(() => upstream.sockets[0]!.destroyed, { budgetMs: 2_000, what: "the stale connection to be closed" });
  });

  it("an upstream that keeps idle connections a second or less: none is kept (a request would cross the close)", async () => {
    const { upstream, pool } = await setUp();
    expect((await get(pool, upstream.port, "/a?hint=1")).reused).toBe(false);
    expect((await get(pool, upstream.port, "/b?hint=1")).reused).toBe(false);
    await waitFor(() => pool.openConnections === 0, { budgetMs: 2_000, what: "no connection kept" });
    expect(upstream.sockets).toHaveLength(2);
  });

  it("an idle connection the upstream closed is dropped at once; the next request opens a new one and succeeds", async () => {
    const { upstream, pool } = await setUp();
    await get(pool, upstream.port, "/a");
    await settled(pool, 1);
    upstream.sockets[0]!.destroy();
    await waitFor(() => pool.openConnections === 0, { budgetMs: 2_000, what: "the closed connection to leave the pool" });
    expect(await get(pool, upstream.port, "/b")).toMatchObject({ status: 200, reused: false });
  });

  it("a response with Connection: close, or one cut off, leaves no connection behind", async () => {
    const { upstream, pool } = await setUp({
      handler: (req, res) => {
        if (req.url === "/close") return res.setHeader("connection", "close").end("bye");
        res.writeHead(200, { "content-length": "100" }).write("partial");
        res.socket?.destroy();
      },
    });
    expect(await get(pool, upstream.port, "/close")).toMatchObject({ status: 200, body: "bye" });
    await expect(get(pool, upstream.port, "/cut")).rejects.toThrow();
    await waitFor(() => pool.openConnections === 0, { budgetMs: 2_000, what: "no connection kept" });
  });

  it("a request given up before it had its connection does not leave it half-used", async () => {
    const { upstream, pool } = await setUp();
    await new Promise<void>((resolve) => {
      const request = httpRequest({ hostname: "127.0.0.1", port: upstream.port, path: "/gone", agent: pool.agent, headers: ["host", "upstream"] });
      request.on("error", () => {});
      request.on("close", () => resolve());
      request.destroy();
    });
    await waitFor(() => pool.openConnections === 0, { budgetMs: 2_000, what: "the connection to be closed" });
    expect(await get(pool, upstream.port, "/next")).toMatchObject({ status: 200 });
  });

  it("an upgraded connection (101) leaves the pool", async () => {
    const serverSide: Socket[] = [];
    const server = await new Promise<Server>((resolve) => {
      const s = createServer();
      s.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
        serverSide.push(socket);
        socket.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n");
      });
      s.listen(0, "127.0.0.1", () => resolve(s));
    });
    const port = (server.address() as AddressInfo).port;
    const pool = createUpstreamPool({ secure: false, hostname: "127.0.0.1", port }, { timeoutMs: 10_000 });
    pools.push(pool);
    const upgraded = await new Promise<Socket>((resolve, reject) => {
      const request = httpRequest({ hostname: "127.0.0.1", port, path: "/up", agent: pool.agent, headers: ["host", "upstream", "connection", "Upgrade", "upgrade", "test"] });
      request.on("upgrade", (_res: IncomingMessage, socket: Socket) => resolve(socket));
      request.on("error", reject);
      request.end();
    });
    expect(pool.openConnections).toBe(0);
    // No longer the pool's: its timer (which would close it as idle) is off.
    expect(upgraded.timeout ?? 0).toBe(0);
    expect(upgraded.listenerCount("free")).toBe(0);
    upgraded.destroy();
    // An upgraded connection is no longer the server's to close.
    for (const socket of serverSide) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("destroy() closes idle and busy connections alike", async () => {
    const { upstream, pool } = await setUp();
    const busy = get(pool, upstream.port, "/busy?delay=5000");
    await get(pool, upstream.port, "/idle");
    await waitFor(() => pool.openConnections === 2 && pool.idleConnections === 1, { budgetMs: 2_000, what: "one busy and one idle connection" });
    pool.destroy();
    await expect(busy).rejects.toThrow();
    await waitFor(() => upstream.sockets.every((s) => s.destroyed), { budgetMs: 2_000, what: "the upstream to see both closed" });
  });
});

describe("https origins", () => {
  it("speak TLS with the certificate checked against the hostname: trusted, it is reused; untrusted, the request fails", async () => {
    const server = await startLocalHttpsServer("upstream-pool", (_req, res) => res.end("secure"));
    try {
      const trusted = createUpstreamPool({ secure: true, hostname: "localhost", port: server.port }, { timeoutMs: 10_000, tls: { ca: server.certificate } });
      const untrusted = createUpstreamPool({ secure: true, hostname: "localhost", port: server.port }, { timeoutMs: 10_000 });
      pools.push(trusted, untrusted);
      const https = { protocol: "https:", hostname: "localhost" };
      expect(await get(trusted, server.port, "/a", https)).toEqual({ status: 200, body: "secure", reused: false });
      expect(await get(trusted, server.port, "/b", https)).toEqual({ status: 200, body: "secure", reused: true });
      await expect(get(untrusted, server.port, "/c", https)).rejects.toMatchObject({ code: "DEPTH_ZERO_SELF_SIGNED_CERT" });
    } finally {
      await server.close();
    }
  });
});

describe("keepAliveHintMs", () => {
  it("reads the Keep-Alive field's timeout, in any letter case, and nothing else", () => {
    expect(keepAliveHintMs(["Content-Type", "text/plain", "Keep-Alive", "timeout=5"])).toBe(5_000);
    expect(keepAliveHintMs(["KEEP-ALIVE", " Timeout = 2, max=100"])).toBe(2_000);
    expect(keepAliveHintMs(["keep-alive", "max=100"])).toBeUndefined();
    expect(keepAliveHintMs(["x-keep-alive", "timeout=5"])).toBeUndefined();
    expect(keepAliveHintMs([])).toBeUndefined();
  });
});
