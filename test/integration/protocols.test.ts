import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  AuthorizationService,
  IntrospectRequestSchema,
  IntrospectResponseSchema,
} from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { ISSUER, SECRETS, basic, issueTokens, startTestAuthz, type TestAuthz } from "../support/authz.js";

let t: TestAuthz;
beforeAll(async () => {
  t = await startTestAuthz({ redisUrl: inject("redisUrl") });
});
afterAll(() => t.close());

describe("one port answers Connect, gRPC and gRPC-Web, over HTTP/1.1 and h2c", () => {
  it.each([
    ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: t.running.url, httpVersion: "1.1" })],
    ["Connect over HTTP/2", () => createConnectTransport({ baseUrl: t.running.url, httpVersion: "2" })],
    ["Connect JSON over HTTP/1.1", () => createConnectTransport({ baseUrl: t.running.url, httpVersion: "1.1", useBinaryFormat: false })],
    ["gRPC over HTTP/2", () => createGrpcTransport({ baseUrl: t.running.url })],
    ["gRPC-Web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: t.running.url, httpVersion: "1.1" })],
    ["gRPC-Web over HTTP/2", () => createGrpcWebTransport({ baseUrl: t.running.url, httpVersion: "2" })],
  ])("%s", async (_name, transport) => {
    const client = createClient(AuthorizationService, transport());
    expect((await client.getMetadata({})).issuer).toBe(ISSUER);
  });
});

describe("internal services can use plain gRPC (@grpc/grpc-js)", () => {
  it("Introspect with client credentials in Basic metadata", async () => {
    const tokens = await issueTokens(t);
    const client = new grpc.Client(`127.0.0.1:${t.running.address.port}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", basic("resource-server", SECRETS.resourceServer).headers.authorization!);
    try {
      const response = await new Promise<ReturnType<typeof fromBinary<typeof IntrospectResponseSchema>>>((resolve, reject) => {
        client.makeUnaryRequest(
          "/gatehouse.v1.AuthorizationService/Introspect",
          (message: ReturnType<typeof create<typeof IntrospectRequestSchema>>) => Buffer.from(toBinary(IntrospectRequestSchema, message)),
          (bytes: Buffer) => fromBinary(IntrospectResponseSchema, bytes),
          create(IntrospectRequestSchema, { token: tokens.accessToken }),
          metadata,
          (error, value) => (error ? reject(error) : resolve(value!)),
        );
      });
      expect(response.active).toBe(true);
      expect(response.clientId).toBe("web");
    } finally {
      client.close();
    }
  });

  it("an error carries its gRPC status", async () => {
    const client = new grpc.Client(`127.0.0.1:${t.running.address.port}`, grpc.credentials.createInsecure());
    try {
      const error = await new Promise<grpc.ServiceError>((resolve) => {
        client.makeUnaryRequest(
          "/gatehouse.v1.AuthorizationService/Introspect",
          (message: ReturnType<typeof create<typeof IntrospectRequestSchema>>) => Buffer.from(toBinary(IntrospectRequestSchema, message)),
          (bytes: Buffer) => fromBinary(IntrospectResponseSchema, bytes),
          create(IntrospectRequestSchema, { token: "x" }),
          new grpc.Metadata(),
          (failure) => resolve(failure!),
        );
      });
      expect(error.code).toBe(grpc.status.UNAUTHENTICATED);
      // The OAuth error rides in grpc-status-details-bin for clients that want it.
      expect(error.metadata.get("grpc-status-details-bin")).toHaveLength(1);
    } finally {
      client.close();
    }
  });
});

describe("bad input", () => {
  it("a message over the size limit is refused and the server stays healthy", async () => {
    const failure = await t.authz.introspect({ token: "x".repeat(100_000) }, basic("resource-server", SECRETS.resourceServer)).catch((e: unknown) => e);
    expect(String(failure)).toMatch(/resource_exhausted|message size/i);
    expect((await t.authz.getMetadata({})).issuer).toBe(ISSUER);
  });

  it("garbage bytes on the port do not hurt the server", async () => {
    const { connect } = await import("node:net");
    await new Promise<void>((resolve) => {
      const socket = connect(t.running.address.port, "127.0.0.1", () => socket.end(Buffer.from([0, 1, 2, 255, 13, 10, 13, 10])));
      socket.resume(); // read the server's 400 so the connection can finish
      socket.on("close", () => resolve());
      socket.on("error", () => resolve());
    });
    const response = await fetch(`${t.running.url}/gatehouse.v1.AuthorizationService/GetMetadata`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    expect(response.status).toBe(400);
    expect((await t.authz.getMetadata({})).issuer).toBe(ISSUER);
  });
});
