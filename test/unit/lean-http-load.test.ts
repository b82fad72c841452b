import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { frame, runLeanHttpLoad } from "../../bench/lib/lean-http-load.js";

// bench:peers' lean load generator: how it frames answers, and what it sends and counts against a real
// server. Nothing here is timed: its speed is the benchmark's to show.

describe("frame", () => {
  const answer = (head: string, body: string) => Buffer.from(`HTTP/1.1 ${head}\r\n\r\n${body}`);

  it("reads an answer framed by Content-Length, and leaves what follows it", () => {
    const bytes = Buffer.concat([answer('200 OK\r\nContent-Type: application/json\r\nContent-Length: 15', '{"active":true}'), Buffer.from("HTTP/1.1")]);
    const framed = frame(bytes);
    expect(framed).toMatchObject({ status: 200, body: '{"active":true}', close: false });
    expect(typeof framed === "object" && framed.rest.toString()).toBe("HTTP/1.1");
  });

  it("waits for the rest of a header or a body", () => {
    expect(frame(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"))).toBeUndefined();
    expect(frame(answer("200 OK\r\nContent-Length: 4", "ab"))).toBeUndefined();
  });

  it("reads a chunked answer with extensions and a trailer section (RFC 9112 §7.1)", () => {
    const bytes = answer("200 OK\r\nTransfer-Encoding: chunked", "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    expect(frame(bytes)).toMatchObject({ status: 200, body: "hello world" });
    expect(frame(answer("200 OK\r\nTransfer-Encoding: chunked", "0\r\n\r\n"))).toMatchObject({ status: 200, body: "" });
  });

  it("says when an answer closes its connection, and reads 204 and 304 without a body", () => {
    expect(frame(answer("401 Unauthorized\r\nConnection: close\r\nContent-Length: 2", "no"))).toMatchObject({ status: 401, body: "no", close: true });
    expect(frame(answer("204 No Content\r\nContent-Length: 10", ""))).toMatchObject({ status: 204, body: "" });
    expect(frame(answer("304 Not Modified", ""))).toMatchObject({ status: 304, body: "" });
  });

  it("names what it cannot frame", () => {
    expect(frame(answer("200 OK", "body"))).toBe("an answer framed neither by Content-Length nor chunked");
    expect(frame(Buffer.from("SSH-2.0-OpenSSH\r\n\r\n"))).toMatch(/^not an HTTP\/1.1 status line/);
    expect(frame(answer("100 Continue", ""))).toBe("an interim 100 answer");
    expect(frame(answer("200 OK\r\nTransfer-Encoding: chunked", "zz\r\n"))).toBe("a malformed chunk size");
    expect(frame(Buffer.alloc(70 * 1024, "a"))).toBe("an answer's header over 64 KiB");
  });

  it("frames an answer only once all of it has come, however its bytes are cut", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.boolean(), fc.array(fc.nat(), { maxLength: 6 }), (body, chunked, cuts) => {
        const encoded = Buffer.from(body);
        const payload = chunked ? `${encoded.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body;
        const head = chunked ? "200 OK\r\nTransfer-Encoding: chunked" : `200 OK\r\nContent-Length: ${encoded.length}`;
        const whole = encoded.length === 0 && chunked ? answer(head, "0\r\n\r\n") : answer(head, payload);
        for (const cut of cuts.map((n) => n % whole.length)) expect(frame(whole.subarray(0, cut))).toBeUndefined();
        const framed = frame(whole);
        expect(framed).toMatchObject({ status: 200, body: encoded.toString("utf8") });
        expect(typeof framed === "object" && framed.rest.length).toBe(0);
      }),
    );
  });
});

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve()))));

/** A server that gives each request to `handle`, and keeps what it saw. */
async function serve(handle: (n: number, body: string, res: import("node:http").ServerResponse) => void): Promise<{ url: string; bodies: string[]; connections: () => number }> {
  const bodies: string[] = [];
  let connections = 0;
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      bodies.push(`${req.method} ${req.url} ${req.headers.authorization} ${body}`);
      handle(bodies.length, body, res);
    });
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect?x=1`, bodies, connections: () => connections };
}

describe("runLeanHttpLoad", () => {
  it("sends each body once, on keep-alive connections, and hands every answer to the caller", async () => {
    const target = await serve((n, body, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ n, body })));
    let next = 0;
    const answers: Array<{ status: number; body: string; context: Record<string, unknown> }> = [];
    const result = await runLeanHttpLoad({
      url: target.url,
      connections: 4,
      seconds: 60,
      method: "POST",
      headers: { authorization: "Basic YTpi", "content-type": "application/x-www-form-urlencoded" },
      body: () => `token=t${next++}&é=ü`,
      maxRequests: 50,
      onAnswer: (status, body, context, ms) => {
        expect(ms).toBeGreaterThanOrEqual(0);
        context.count = ((context.count as number | undefined) ?? 0) + 1;
        answers.push({ status, body, context });
      },
    });
    expect(result).toMatchObject({ sent: 50, answered: 50, errors: 0 });
    expect(target.connections()).toBe(4);
    expect(target.bodies.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `POST /introspect?x=1 Basic YTpi token=t${i}&é=ü`).sort());
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => (JSON.parse(a.body) as { body: string }).body)).size).toBe(50);
    // One context per connection, the same object for each of its answers.
    expect(new Set(answers.map((a) => a.context)).size).toBe(4);
  });

  it("replaces a connection the server closes with Connection: close, and reads chunked answers", async () => {
    const target = await serve((n, _body, res) => {
      if (n % 3 === 0) res.setHeader("connection", "close");
      res.writeHead(n % 2 === 0 ? 403 : 200);
      res.write("part one, ");
      res.end("part two");
    });
    const statuses: number[] = [];
    const result = await runLeanHttpLoad({
      url: target.url,
      connections: 2,
      seconds: 60,
      method: "GET",
      headers: {},
      maxRequests: 12,
      onAnswer: (status, body) => {
        expect(body).toBe("part one, part two");
        statuses.push(status);
      },
    });
    expect(result).toMatchObject({ sent: 12, answered: 12, errors: 0 });
    expect(statuses.filter((s) => s === 403)).toHaveLength(6);
    expect(target.connections()).toBeGreaterThanOrEqual(5);
  });

  it("counts a connection lost with a request in flight as an error, and goes on", async () => {
    const target = await serve((n, _body, res) => (n === 2 ? res.socket?.destroy() : res.end("ok")));
    const result = await runLeanHttpLoad({ url: target.url, connections: 1, seconds: 60, method: "GET", headers: {}, maxRequests: 5, onAnswer: () => {} });
    expect(result).toMatchObject({ sent: 5, answered: 4, errors: 1, firstError: "the connection closed with a request in flight" });
  });

  it("stops at its time bound, and a server that refuses connections is an error, not a loop", async () => {
    const target = await serve((_n, _body, res) => res.end("ok"));
    const bounded = await runLeanHttpLoad({ url: target.url, connections: 2, seconds: 0.2, method: "GET", headers: {}, onAnswer: () => {} });
    expect(bounded.answered).toBeGreaterThan(0);
    expect(bounded.errors).toBe(0);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const refused = await runLeanHttpLoad({ url: target.url, connections: 3, seconds: 60, method: "GET", headers: {}, onAnswer: () => {} });
    expect(refused).toMatchObject({ sent: 0, answered: 0, errors: 3 });
    expect(refused.firstError).toMatch(/ECONNREFUSED/);
  });
});
