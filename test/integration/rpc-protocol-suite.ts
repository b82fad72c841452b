import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { decodeJwt } from "jose";
import * as http from "node:http";
import * as http2 from "node:http2";
import { connect as netConnect } from "node:net";
import { brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { CallNotSentError } from "../../gateway/rpc/call-not-sent-error.js";
import { createAuthzClient } from "../../gateway/rpc/authz-client.js";
import { createConnectEsTransport } from "../../gateway/rpc/connect-es-transport.js";
import { createConnectUnaryTransport } from "../../gateway/rpc/connect-unary-transport.js";
import {
  AuthorizationService,
  IntrospectRequestSchema,
  IntrospectResponseSchema,
  WatchRevocationsRequestSchema,
  WatchRevocationsResponseSchema,
} from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { OAuthErrorDetailSchema } from "../../gen/gatehouse/v1/errors_pb.js";
import { LoginRequestSchema, SessionService } from "../../gen/gatehouse/v1/session_service_pb.js";
import { ISSUER, SECRETS, WEB_REDIRECT, basic, failureOf, issueTokens, pkcePair, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { freePort } from "../support/redis-server.js";

/**
 * One protocol suite for both of gatehouse's RPC paths, so that they cannot
 * drift apart: run it with `authz.rpc.fastPath` on (the hand-written Connect
 * unary path takes what it can, services/authz/transport/connect-unary.ts) and
 * off (connect-node's adapter serves everything), and every client speaks to
 * each: connect-node's Connect (JSON and binary), gRPC and gRPC-Web transports
 * over HTTP/1.1 and h2c, @grpc/grpc-js, and the gateway's two transports
 * (`gateway.authz.transport`: lean and connect). What it covers: unary and
 * server streaming (WatchRevocations), deadlines (connect-timeout-ms,
 * grpc-timeout), size limits, errors with their OAuthErrorDetail, cancellation,
 * compression, and what the gateway's failover needs from its transports.
 */
export function defineProtocolSuite(options: { fastPath: boolean }): void {
  describe(`authz.rpc.fastPath: ${options.fastPath}`, () => {
    let t: TestAuthz;
    const gate = createGate();
    beforeAll(async () => {
      t = await startTestAuthz({
        redisUrl: inject("redisUrl"),
        patch: (file) => {
          (file.authz as Record<string, unknown>).rpc = { fastPath: options.fastPath };
          // From the second failure on, a failed login waits (ctx.sleep): the gate holds such a call
          // in its handler for as long as a test needs, so no test waits for time to pass.
          file.attempts = { windowSeconds: 600, maxFailuresPerUser: 1_000_000, maxFailuresPerAddress: 1_000_000, delayPerFailureMs: 1, maxDelayMs: 1 };
          // Enough scopes that the metadata document is past the compression threshold (1 KiB).
          (file.scopes as unknown[]).push(...Array.from({ length: 80 }, (_, i) => ({ name: `extra:scope-${i}`, description: `Extra scope ${i}` })));
        },
        overrides: { sleep: () => gate.sleep() },
      });
      await failureOf(t.sessions.login({ username: "alice", password: "wrong", clientAddress: HELD_ADDRESS }, t.asGateway));
    });
    afterEach(() => gate.release());
    afterAll(() => t.close());

    /** A login that the server holds in its handler until the gate is released. */
    const heldLogin = { username: "alice", password: "wrong", clientAddress: HELD_ADDRESS };
    /** The server holds no more calls than before the test began. */
    let baseline = 0;
    beforeEach(() => void (baseline = t.running.openCalls()));
    const idle = () => expect.poll(() => t.running.openCalls(), { timeout: 10_000 }).toBeLessThanOrEqual(baseline);

    describe.each(CLIENTS)("$name", (client) => {
      const clients = (transport = client.transport(t.running.url)) => ({
        authz: createClient(AuthorizationService, transport),
        sessions: createClient(SessionService, transport),
      });

      it("unary: answers, with the client's Basic credentials read from metadata", async () => {
        const { authz } = clients();
        expect((await authz.getMetadata({})).issuer).toBe(ISSUER);
        const tokens = await issueTokens(t);
        const introspection = await authz.introspect({ token: tokens.accessToken }, basic("resource-server", SECRETS.resourceServer));
        expect(introspection).toMatchObject({ active: true, clientId: "web" });
      });

      it("errors: the code and the OAuthErrorDetail survive the protocol (RFC 6749 §5.2)", async () => {
        const { authz } = clients();
        const invalidClient = await failureOf(authz.exchangeCode({ code: "x".repeat(43), redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier }, basic("web", "wrong")));
        expect(invalidClient.code).toBe(Code.Unauthenticated);
        expect(invalidClient.oauth).toMatchObject({ error: "invalid_client" });
        // RFC 6749 §4.1.2.1: an error for a valid redirect URI travels to it.
        const redirect = await failureOf(authz.authorize({ responseType: "code", clientId: "spa", scope: "admin", state: "s" }, t.asGateway));
        expect(new URL(redirect.oauth!.redirectUrl).searchParams.get("error")).toBe("invalid_scope");
      });

      it("server streaming: WatchRevocations says subscribed, then delivers a revocation", async () => {
        const { authz } = clients();
        // Ended by aborting, as the gateway's revocation feed ends it: connect-es's return() does not cancel the call.
        const abort = new AbortController();
        const stream = authz.watchRevocations({}, { ...basic("resource-server", SECRETS.resourceServer), signal: abort.signal })[Symbol.asyncIterator]();
        try {
          expect((await stream.next()).value?.event.case).toBe("subscribed");
          const tokens = await issueTokens(t);
          await t.authz.revoke({ token: tokens.accessToken }, basic("web", SECRETS.web));
          let event = (await stream.next()).value?.event;
          while (event?.case === "heartbeat") event = (await stream.next()).value?.event;
          expect(event).toMatchObject({ case: "revocation", value: { target: { case: "jti", value: decodeJwt(tokens.accessToken).jti } } });
        } finally {
          abort.abort();
        }
        await idle();
      });

      it("deadlines: a call held past its deadline is DeadlineExceeded, and the server lets go of it", async () => {
        const { sessions } = clients();
        gate.arm();
        const failure = await failureOf(sessions.login(heldLogin, { ...t.asGateway, timeoutMs: 300 }));
        expect(failure.code).toBe(Code.DeadlineExceeded);
        await idle();
        expect((await clients().authz.getMetadata({}, { timeoutMs: 5_000 })).issuer).toBe(ISSUER);
      });

      it("size limits: a request over readMaxBytes is ResourceExhausted, and the server keeps serving", async () => {
        const { authz } = clients();
        const failure = await failureOf(authz.introspect({ token: "x".repeat(100_000) }, basic("resource-server", SECRETS.resourceServer)));
        expect(failure.code).toBe(Code.ResourceExhausted);
        expect((await authz.getMetadata({})).issuer).toBe(ISSUER);
      });

      it("cancellation: a client's abort ends a unary call at once, and the server lets go of it", async () => {
        const transport = client.transport(t.running.url);
        const { sessions, authz } = clients(transport);
        const abort = new AbortController();
        gate.arm();
        const call = failureOf(sessions.login(heldLogin, { ...t.asGateway, signal: abort.signal }));
        await expect.poll(() => gate.waiting).toBe(1); // the call is in its handler
        abort.abort();
        expect((await call).code).toBe(Code.Canceled);
        await idle();
        gate.release(); // the handler finishes; its answer has nowhere to go
        expect((await authz.getMetadata({})).issuer).toBe(ISSUER); // the same transport still works
      });

      it("cancellation: a client's abort ends a stream, and the server lets go of it", async () => {
        const { authz } = clients();
        const abort = new AbortController();
        const stream = authz.watchRevocations({}, { ...basic("resource-server", SECRETS.resourceServer), signal: abort.signal })[Symbol.asyncIterator]();
        expect((await stream.next()).value?.event.case).toBe("subscribed");
        expect(t.running.openCalls()).toBeGreaterThan(0);
        abort.abort();
        expect(ConnectError.from(await stream.next().catch((error: unknown) => error)).code).toBe(Code.Canceled);
        await idle();
      });

      if (client.compression) {
        it("compression: gzip requests and gzip responses", async () => {
          const { authz } = clients(client.transport(t.running.url, { sendCompression: compressionGzip, acceptCompression: [compressionGzip], compressMinBytes: 0 }));
          const tokens = await issueTokens(t);
          expect((await authz.introspect({ token: tokens.accessToken }, basic("resource-server", SECRETS.resourceServer))).active).toBe(true);
          const metadata = await authz.getMetadata({});
          expect(metadata.issuer).toBe(ISSUER);
          expect(metadata.scopesSupported).toContain("extra:scope-79");
        });
      }
    });

    describe("the Connect protocol on the wire", () => {
      const post = (path: string, init: { headers?: Record<string, string>; body: string | Uint8Array }) =>
        fetch(`${t.running.url}/gatehouse.v1.${path}`, { method: "POST", ...init, headers: { "content-type": "application/json", ...init.headers } });

      it("connect-timeout-ms: the server itself answers deadline_exceeded (504) when a call outlives it", async () => {
        // No client-side timer: only the header, so the answer can only be the server's.
        gate.arm();
        const response = await post("SessionService/Login", { headers: { "connect-timeout-ms": "200", ...t.asGateway.headers }, body: JSON.stringify(heldLogin) });
        expect(response.status).toBe(504);
        expect(await response.json()).toMatchObject({ code: "deadline_exceeded" });
      });

      it("a malformed connect-timeout-ms is refused as the Connect protocol says (400 invalid_argument)", async () => {
        const response = await post("AuthorizationService/GetMetadata", { headers: { "connect-timeout-ms": "soon" }, body: "{}" });
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({ code: "invalid_argument" });
      });

      it("an error is JSON with its code, message and the OAuthErrorDetail in details", async () => {
        const response = await post("AuthorizationService/Introspect", { body: JSON.stringify({ token: "x" }) });
        expect(response.status).toBe(401);
        const body = (await response.json()) as { code: string; details: Array<{ type: string; value: string }> };
        expect(body.code).toBe("unauthenticated");
        expect(body.details.map((d) => d.type)).toEqual(["gatehouse.v1.OAuthErrorDetail"]);
        expect(fromBinary(OAuthErrorDetailSchema, Buffer.from(body.details[0]!.value, "base64")).error).toBe("invalid_client");
      });

      it.each([
        ["gzip", "gzip", gunzipSync],
        ["br", "br", brotliDecompressSync],
        ["gzip preferred in the client's order", "gzip, br", gunzipSync],
      ] as const)("a response of 1 KiB or more is compressed with an encoding the client accepts (%s)", async (_name, accept, decompress) => {
        const response = await h2Request(t.running.url, { ":path": "/gatehouse.v1.AuthorizationService/GetMetadata", "content-type": "application/json", "accept-encoding": accept }, Buffer.from("{}"));
        expect(response.status).toBe(200);
        expect(response.headers["content-encoding"]).toBe(accept.split(",")[0]);
        expect(JSON.parse(decompress(response.body).toString())).toMatchObject({ issuer: ISSUER });
      });

      it("a small response, or one to a client that accepts no encoding, is not compressed", async () => {
        const small = await h2Request(t.running.url, { ":path": "/gatehouse.v1.AuthorizationService/Introspect", "content-type": "application/json", "accept-encoding": "gzip" }, Buffer.from('{"token":"x"}'));
        expect(small.headers["content-encoding"]).toBeUndefined();
        const plain = await h2Request(t.running.url, { ":path": "/gatehouse.v1.AuthorizationService/GetMetadata", "content-type": "application/json" }, Buffer.from("{}"));
        expect(plain.headers["content-encoding"]).toBeUndefined();
        expect(JSON.parse(plain.body.toString())).toMatchObject({ issuer: ISSUER });
      });

      it("a gzip request is read, and its size is checked after decompression", async () => {
        const ok = await post("AuthorizationService/GetMetadata", { headers: { "content-encoding": "gzip" }, body: gzipSync("{}") });
        expect(ok.status).toBe(200);
        const bomb = await post("AuthorizationService/Introspect", { headers: { "content-encoding": "gzip" }, body: gzipSync(JSON.stringify({ token: "x".repeat(200_000) })) });
        expect(await bomb.json()).toMatchObject({ code: "resource_exhausted" });
      });

      it.each([
        ["with its length declared", true],
        ["with no length declared", false],
      ])("a request body over readMaxBytes is resource_exhausted (%s)", async (_name, declared) => {
        const body = Buffer.from(JSON.stringify({ token: "x".repeat(100_000) }));
        const response = await h2Request(
          t.running.url,
          { ":path": "/gatehouse.v1.AuthorizationService/Introspect", "content-type": "application/json", "content-length": declared ? String(body.length) : undefined },
          body,
        );
        expect(JSON.parse(response.body.toString())).toMatchObject({ code: "resource_exhausted" });
        expect((await t.authz.getMetadata({})).issuer).toBe(ISSUER);
      });

      it("bad JSON is invalid_argument (400), and garbage bytes on the port do not hurt the server", async () => {
        await new Promise<void>((resolve) => {
          const socket = netConnect(t.running.address.port, "127.0.0.1", () => socket.end(Buffer.from([0, 1, 2, 255, 13, 10, 13, 10])));
          socket.resume(); // read the server's 400 so the connection can finish
          socket.on("close", () => resolve());
          socket.on("error", () => resolve());
        });
        const response = await post("AuthorizationService/GetMetadata", { body: "{" });
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({ code: "invalid_argument" });
        expect((await t.authz.getMetadata({})).issuer).toBe(ISSUER);
      });
    });

    describe("gRPC on the wire", () => {
      it("grpc-timeout: the server itself answers DEADLINE_EXCEEDED when a call outlives it", async () => {
        gate.arm();
        const response = await h2Request(
          t.running.url,
          { ":path": "/gatehouse.v1.SessionService/Login", "content-type": "application/grpc+proto", te: "trailers", "grpc-timeout": "200m", ...t.asGateway.headers },
          envelope(toBinary(LoginRequestSchema, create(LoginRequestSchema, heldLogin))),
        );
        expect(response.trailers["grpc-status"] ?? response.headers["grpc-status"]).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      });

      it("grpc-accept-encoding: a large response message is gzip-compressed", async () => {
        const response = await h2Request(
          t.running.url,
          { ":path": "/gatehouse.v1.AuthorizationService/GetMetadata", "content-type": "application/grpc+proto", te: "trailers", "grpc-accept-encoding": "gzip" },
          envelope(new Uint8Array()),
        );
        expect(response.headers["grpc-encoding"]).toBe("gzip");
        expect(response.body[0]).toBe(1); // the compressed flag of the message's envelope
        expect(response.trailers["grpc-status"]).toBe("0");
      });
    });

    describe("@grpc/grpc-js, as internal services call", () => {
      let grpcClient: grpc.Client;
      beforeAll(() => void (grpcClient = new grpc.Client(`127.0.0.1:${t.running.address.port}`, grpc.credentials.createInsecure())));
      afterAll(() => grpcClient.close());
      const introspect = (token: string, metadata: grpc.Metadata, options: grpc.CallOptions = {}) =>
        new Promise<ReturnType<typeof fromBinary<typeof IntrospectResponseSchema>>>((resolve, reject) => {
          grpcClient.makeUnaryRequest(
            "/gatehouse.v1.AuthorizationService/Introspect",
            (message: ReturnType<typeof create<typeof IntrospectRequestSchema>>) => Buffer.from(toBinary(IntrospectRequestSchema, message)),
            (bytes: Buffer) => fromBinary(IntrospectResponseSchema, bytes),
            create(IntrospectRequestSchema, { token }),
            metadata,
            options,
            (error, value) => (error ? reject(error) : resolve(value!)),
          );
        });
      const metadataOf = (headers: Record<string, string>) => {
        const metadata = new grpc.Metadata();
        for (const [name, value] of Object.entries(headers)) metadata.set(name, value);
        return metadata;
      };

      it("unary: Introspect with the client's credentials in Basic metadata", async () => {
        const tokens = await issueTokens(t);
        const response = await introspect(tokens.accessToken, metadataOf(basic("resource-server", SECRETS.resourceServer).headers));
        expect(response).toMatchObject({ active: true, clientId: "web" });
      });

      it("errors: the gRPC status, and the OAuthErrorDetail in grpc-status-details-bin", async () => {
        const error = (await introspect("x", new grpc.Metadata()).catch((e: unknown) => e)) as grpc.ServiceError;
        expect(error.code).toBe(grpc.status.UNAUTHENTICATED);
        const trailer = new Headers({ "grpc-status": String(error.code), "grpc-message": encodeURIComponent(error.details) });
        trailer.set("grpc-status-details-bin", (error.metadata.get("grpc-status-details-bin")[0] as Buffer).toString("base64"));
        expect(findTrailerError(trailer)?.findDetails(OAuthErrorDetailSchema)[0]?.error).toBe("invalid_client");
      });

      it("server streaming, and cancelling it lets the server go", async () => {
        const call = grpcClient.makeServerStreamRequest(
          "/gatehouse.v1.AuthorizationService/WatchRevocations",
          (message: ReturnType<typeof create<typeof WatchRevocationsRequestSchema>>) => Buffer.from(toBinary(WatchRevocationsRequestSchema, message)),
          (bytes: Buffer) => fromBinary(WatchRevocationsResponseSchema, bytes),
          create(WatchRevocationsRequestSchema, {}),
          metadataOf(basic("resource-server", SECRETS.resourceServer).headers),
        );
        call.on("error", () => {}); // the cancellation below ends it with CANCELLED
        const first = await new Promise<ReturnType<typeof fromBinary<typeof WatchRevocationsResponseSchema>>>((resolve) => call.once("data", resolve));
        expect(first.event.case).toBe("subscribed");
        call.cancel();
        await idle();
      });

      it("deadlines: a call held past its deadline is DEADLINE_EXCEEDED", async () => {
        gate.arm();
        const error = await new Promise<grpc.ServiceError>((resolve) => {
          grpcClient.makeUnaryRequest(
            "/gatehouse.v1.SessionService/Login",
            (message: ReturnType<typeof create<typeof LoginRequestSchema>>) => Buffer.from(toBinary(LoginRequestSchema, message)),
            (bytes: Buffer) => bytes,
            create(LoginRequestSchema, heldLogin),
            metadataOf(t.asGateway.headers),
            { deadline: Date.now() + 300 },
            (failure) => resolve(failure!),
          );
        });
        expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
        await idle();
      });
    });

    describe("draining", () => {
      it.each([
        ["Connect", (baseUrl: string) => createConnectTransport({ baseUrl, httpVersion: "2" })],
        ["gRPC", (baseUrl: string) => createGrpcTransport({ baseUrl })],
      ])("a unary call in flight when the server drains is answered, not cut off (%s)", async (_name, transport) => {
        const held = createGate();
        const own = await startTestAuthz({
          redisUrl: inject("redisUrl"),
          patch: (file) => {
            (file.authz as Record<string, unknown>).rpc = { fastPath: options.fastPath };
            file.attempts = { windowSeconds: 600, maxFailuresPerUser: 1_000_000, maxFailuresPerAddress: 1_000_000, delayPerFailureMs: 1, maxDelayMs: 1 };
          },
          overrides: { sleep: () => held.sleep() },
        });
        const sessions = createClient(SessionService, transport(own.running.url));
        await failureOf(sessions.login(heldLogin, own.asGateway));
        held.arm();
        const call = failureOf(sessions.login(heldLogin, own.asGateway));
        await expect.poll(() => held.waiting).toBe(1);
        const closed = own.close(); // drains: the shutdown signal aborts, the call must still finish
        await expect.poll(() => own.running.deps.health.draining).toBe(true);
        held.release();
        // The login's own answer (a wrong password), not Canceled or Unavailable.
        expect((await call).code).toBe(Code.Unauthenticated);
        await closed;
      });
    });

    describe("the gateway's lean transport over HTTP/1.1, for its failover", () => {
      it("a refused connection is a CallNotSentError: Unavailable, with ECONNREFUSED in its cause", async () => {
        const failure = await createClient(AuthorizationService, leanOverHttp1(`http://127.0.0.1:${await freePort()}`))
          .getMetadata({})
          .catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(CallNotSentError);
        expect((failure as ConnectError).code).toBe(Code.Unavailable);
        expect(causeCodes(failure)).toContain("ECONNREFUSED");
      });

      it("a call the server took and then dropped is Unavailable and not a CallNotSentError: it may have happened", async () => {
        await withH1Server(
          (request) => request.resume().on("end", () => request.socket.destroy()),
          async (url) => {
            const failure = await createClient(AuthorizationService, leanOverHttp1(url)).getMetadata({}).catch((error: unknown) => error);
            expect(failure).toBeInstanceOf(ConnectError);
            expect((failure as ConnectError).code).toBe(Code.Unavailable);
            expect(failure).not.toBeInstanceOf(CallNotSentError);
          },
        );
      });

      it("a call past its deadline on a server that never answers is DeadlineExceeded, and its connection is closed", async () => {
        let closed = false;
        await withH1Server(
          (request) => request.socket.on("close", () => (closed = true)),
          async (url) => {
            const failure = await failureOf(createClient(AuthorizationService, leanOverHttp1(url)).getMetadata({}, { timeoutMs: 100 }));
            expect(failure.code).toBe(Code.DeadlineExceeded);
            await expect.poll(() => closed, { timeout: 10_000 }).toBe(true);
          },
        );
      });

      it("the answer's header fields reach the caller as header and trailer, a field sent twice combined as Headers combines it", async () => {
        await withH1Server(
          (request, response) => {
            request.resume();
            request.on("end", () => {
              response.setHeader("x-twice", ["a", "b"]);
              response.writeHead(200, { "content-type": "application/proto", "Trailer-X-Done": "yes" }).end();
            });
          },
          async (url) => {
            const header: Array<[string, string]> = [];
            const trailer: Array<[string, string]> = [];
            await createClient(AuthorizationService, leanOverHttp1(url)).getMetadata(
              {},
              { onHeader: (h) => h.forEach((v, k) => header.push([k, v])), onTrailer: (t) => t.forEach((v, k) => trailer.push([k, v])) },
            );
            expect(header).toEqual(expect.arrayContaining([["x-twice", "a, b"], ["content-type", "application/proto"]]));
            expect(trailer).toEqual([["x-done", "yes"]]);
          },
        );
      });

      it("calls in turn reuse one kept-alive connection", async () => {
        const sockets = new Set<string>();
        await withH1Server(
          (request, response) => {
            sockets.add(`${request.socket.remotePort}`);
            response.writeHead(200, { "content-type": "application/proto" }).end();
          },
          async (url) => {
            const local = createClient(AuthorizationService, leanOverHttp1(url));
            for (let i = 0; i < 3; i++) await local.getMetadata({});
          },
        );
        expect(sockets.size).toBe(1);
      });
    });

    describe.each(GATEWAY_TRANSPORTS)("the gateway's $name transport, for its failover", (gateway) => {
      it("a refused connection is a CallNotSentError: Unavailable, with ECONNREFUSED in its cause", async () => {
        const failure = await createClient(AuthorizationService, gateway.transport(`http://127.0.0.1:${await freePort()}`))
          .getMetadata({})
          .catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(CallNotSentError);
        expect((failure as ConnectError).code).toBe(Code.Unavailable);
        expect(causeCodes(failure)).toContain("ECONNREFUSED");
      });

      it(`a stream the server refused (RFC 9113 §8.7 REFUSED_STREAM) ${gateway.name === "lean" ? "is a CallNotSentError" : "is Unavailable, and not known to be unsent"}`, async () => {
        await withH2Server(
          (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM),
          async (url) => {
            const failure = await createClient(AuthorizationService, gateway.transport(url)).getMetadata({}).catch((error: unknown) => error);
            expect(failure).toBeInstanceOf(ConnectError);
            expect(failure instanceof CallNotSentError).toBe(gateway.name === "lean");
          },
        );
      });

      it.each([
        ["each field once", false],
        ["set-cookie twice", true],
      ])("the answer's header fields reach the caller as header and trailer (Connect unary: `trailer-` fields): %s", async (_case, cookies) => {
        await withH2Server(
          (stream) => {
            stream.resume();
            stream.on("end", () => {
              stream.respond({
                ":status": 200,
                "content-type": "application/proto",
                "x-answer": "42",
                "trailer-x-done": "yes",
                ...(cookies ? { "set-cookie": ["a=1", "b=2"] } : {}),
              });
              stream.end();
            });
          },
          async (url) => {
            const header: Array<[string, string]> = [];
            const trailer: Array<[string, string]> = [];
            await createClient(AuthorizationService, gateway.transport(url)).getMetadata(
              {},
              { onHeader: (h) => h.forEach((v, k) => header.push([k, v])), onTrailer: (t) => t.forEach((v, k) => trailer.push([k, v])) },
            );
            expect(header).toEqual(expect.arrayContaining([["x-answer", "42"], ["content-type", "application/proto"]]));
            if (cookies) expect(header).toEqual(expect.arrayContaining([["set-cookie", "a=1"], ["set-cookie", "b=2"]]));
            expect(header.map(([k]) => k)).not.toContain("trailer-x-done");
            expect(trailer).toEqual([["x-done", "yes"]]);
          },
        );
      });

      it("a call the server took and then dropped is not a CallNotSentError: it may have happened", async () => {
        await withH2Server(
          (stream) => {
            stream.resume();
            stream.on("end", () => stream.session?.destroy());
          },
          async (url) => {
            const failure = await createClient(AuthorizationService, gateway.transport(url)).getMetadata({}).catch((error: unknown) => error);
            expect(failure).toBeInstanceOf(ConnectError);
            expect(failure).not.toBeInstanceOf(CallNotSentError);
          },
        );
      });

      it("a call past its deadline on a server that never answers is DeadlineExceeded, and its stream is cancelled", async () => {
        let cancelled = false;
        await withH2Server(
          (stream) => stream.on("close", () => (cancelled = true)),
          async (url) => {
            const failure = await failureOf(createClient(AuthorizationService, gateway.transport(url)).getMetadata({}, { timeoutMs: 100 }));
            expect(failure.code).toBe(Code.DeadlineExceeded);
            await expect.poll(() => cancelled, { timeout: 10_000 }).toBe(true);
          },
        );
      });

      it("the failover sends a call that was never sent to the next replica, even one that changes something", async () => {
        const client = createAuthzClient({
          endpoints: [`http://127.0.0.1:${await freePort()}`, t.running.url],
          serviceCredential: SECRETS.service,
          clientId: "gatehouse-gateway",
          clientSecret: SECRETS.gateway,
          timeoutMs: 5_000,
          transport: gateway.name,
        });
        // Round robin: of two calls, one starts at the refused endpoint.
        for (let i = 0; i < 2; i++) {
          const pending = await client.authz.authorize({ responseType: "code", clientId: "spa", scope: "read", codeChallenge: pkcePair().challenge, codeChallengeMethod: "S256" });
          expect(pending.clientName).toBe("Single Page App");
        }
      });

      it("the failover does not resend a call that changes something once a replica took it; a read goes elsewhere", async () => {
        let taken = 0;
        await withH2Server(
          (stream) => {
            stream.resume();
            stream.on("end", () => (taken++, stream.session?.destroy()));
          },
          async (url) => {
            const client = createAuthzClient({ endpoints: [url, t.running.url], serviceCredential: SECRETS.service, clientId: "gatehouse-gateway", clientSecret: SECRETS.gateway, timeoutMs: 5_000, transport: gateway.name });
            const outcomes = new Set<string>();
            for (let i = 0; i < 2; i++) {
              outcomes.add(
                await client.authz.authorize({ responseType: "code", clientId: "spa", scope: "read", codeChallenge: pkcePair().challenge, codeChallengeMethod: "S256" }).then(
                  () => "answered",
                  () => "failed",
                ),
              );
            }
            // The call that reached the dropping replica first failed; the other was answered.
            expect([...outcomes].sort()).toEqual(["answered", "failed"]);
            expect(taken).toBe(1);
            if (gateway.name === "lean") {
              // The lean transport reports a connection lost after the request as Unavailable, which
              // an idempotent read may retry; connect-es reports it as Canceled, which none retries.
              for (let i = 0; i < 2; i++) expect((await client.authz.getMetadata({})).issuer).toBe(ISSUER);
              expect(taken).toBe(2);
            }
          },
        );
      });
    });
  });
}

/** Every client the suite runs, with its transport factory; `compression` when it can compress. */
interface ClientCase {
  name: string;
  transport(baseUrl: string, extra?: { sendCompression?: typeof compressionGzip; acceptCompression?: Array<typeof compressionGzip>; compressMinBytes?: number }): Transport;
  compression: boolean;
}

const CLIENTS: ClientCase[] = [
  { name: "Connect binary over HTTP/1.1", transport: (baseUrl, extra) => createConnectTransport({ baseUrl, httpVersion: "1.1", ...extra }), compression: true },
  { name: "Connect binary over h2c", transport: (baseUrl, extra) => createConnectTransport({ baseUrl, httpVersion: "2", ...extra }), compression: true },
  { name: "Connect JSON over HTTP/1.1", transport: (baseUrl, extra) => createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, ...extra }), compression: true },
  { name: "Connect JSON over h2c", transport: (baseUrl, extra) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false, ...extra }), compression: true },
  { name: "gRPC over h2c", transport: (baseUrl, extra) => createGrpcTransport({ baseUrl, ...extra }), compression: true },
  { name: "gRPC-Web over HTTP/1.1", transport: (baseUrl, extra) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", ...extra }), compression: true },
  { name: "gRPC-Web over h2c", transport: (baseUrl, extra) => createGrpcWebTransport({ baseUrl, httpVersion: "2", ...extra }), compression: true },
  ...gatewayTransports().map(({ name, transport }) => ({ name: `the gateway's ${name} transport`, transport, compression: false })),
  { name: "the gateway's lean transport over HTTP/1.1", transport: (baseUrl) => leanOverHttp1(baseUrl), compression: false },
];

/** The gateway's lean transport with `gateway.authz.httpVersion: "1.1"`. */
function leanOverHttp1(baseUrl: string): Transport {
  return createConnectUnaryTransport({
    baseUrl,
    defaultTimeoutMs: 5_000,
    header: {},
    httpVersion: "1.1",
    streams: createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
  });
}

const GATEWAY_TRANSPORTS = gatewayTransports();

/** The gateway's two unary transports (`gateway.authz.transport`), as the gateway builds them but with no default header. */
function gatewayTransports(): Array<{ name: "lean" | "connect"; transport: (baseUrl: string) => Transport }> {
  return [
    {
      name: "lean",
      transport: (baseUrl) =>
        createConnectUnaryTransport({ baseUrl, defaultTimeoutMs: 5_000, header: {}, streams: createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }) }),
    },
    { name: "connect", transport: (baseUrl) => createConnectEsTransport({ baseUrl, defaultTimeoutMs: 5_000, header: {}, pingIntervalMs: 10_000 }) },
  ];
}

/** The address whose failed logins the gate holds. */
const HELD_ADDRESS = "10.9.0.1";

/**
 * The server's `sleep` (the delay after a failed login or client
 * authentication): while armed, it holds the call until released, and tests
 * see how many wait; disarmed, it returns at once.
 */
function createGate() {
  let waiting: Array<() => void> = [];
  let armed = false;
  return {
    sleep: () => (armed ? new Promise<void>((resolve) => waiting.push(resolve)) : Promise.resolve()),
    arm: () => void (armed = true),
    get waiting() {
      return waiting.length;
    },
    release() {
      armed = false;
      for (const resolve of waiting) resolve();
      waiting = [];
    },
  };
}

/** A gRPC length-prefixed message (uncompressed). */
function envelope(message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.byteLength, 1);
  return Buffer.concat([header, message]);
}

/** One raw HTTP/2 POST with prior knowledge; headers left undefined are not sent. */
async function h2Request(
  baseUrl: string,
  headers: Record<string, string | undefined>,
  body: Uint8Array,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }> {
  const session = http2.connect(baseUrl);
  try {
    return await new Promise((resolve, reject) => {
      session.on("error", reject);
      const sent: http2.OutgoingHttpHeaders = { ":method": "POST" };
      for (const [name, value] of Object.entries(headers)) if (value !== undefined) sent[name] = value;
      const stream = session.request(sent);
      let responseHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => (responseHeaders = h));
      stream.on("trailers", (h) => (trailers = h));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => resolve({ status: Number(responseHeaders[":status"]), headers: responseHeaders, trailers, body: Buffer.concat(chunks) }));
      stream.on("error", reject);
      stream.end(body);
    });
  } finally {
    session.close();
  }
}

/** A bare HTTP/2 server on a random port whose streams `onStream` handles, for what a real replica never does on purpose. */
/** A plain HTTP/1.1 server on a random port for `use`, closed afterwards with every connection. */
async function withH1Server(onRequest: (request: http.IncomingMessage, response: http.ServerResponse) => void, use: (url: string) => Promise<void>): Promise<void> {
  const server = http.createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await use(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  } finally {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections(); // the client keeps idle connections open
    await closed;
  }
}

async function withH2Server(onStream: (stream: http2.ServerHttp2Stream) => void, use: (url: string) => Promise<void>): Promise<void> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("stream", (stream) => {
    stream.on("error", () => {}); // a refused or reset stream is the point here
    onStream(stream);
  });
  server.on("session", (session) => {
    sessions.add(session);
    session.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await use(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  } finally {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const session of sessions) session.destroy(); // clients keep idle sessions open
    await closed;
  }
}

/** The Node error codes along an error's cause chain. */
function causeCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 10; cause = cause.cause, depth++) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}
