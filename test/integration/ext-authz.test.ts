import * as http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CheckRequestSchema, CheckResponseSchema, type CheckResponse } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { SECRETS, basic } from "../support/authz.js";
import { createExtAuthzClient, envoyCheckRequest, type ExtAuthzClient } from "../support/ext-authz-client.js";
import { freePort } from "../support/redis-server.js";
import { pino } from "pino";
import { buildApp } from "../../gateway/app.js";
import { createGatewayDeps } from "../../gateway/deps.js";
import { bearer, eventually, startGuardGateway, startGuardStack, type GuardStack } from "./guard-fixtures.js";

/**
 * Entrance 3 end to end, without an Envoy binary: a real authz service on
 * Redis and a real gateway with `guard.extAuthz`, called the way Envoy's
 * ext_authz filter calls it (gRPC over h2c, @grpc/grpc-js, the request shapes
 * Envoy sends: attributes.request.http.{method, path, host, headers}).
 */

let s: GuardStack;
let port: number;
let client: ExtAuthzClient;
let tokens: Record<"read" | "write", string>;

beforeAll(async () => {
  port = await freePort();
  s = await startGuardStack({
    redisUrl: inject("redisUrl"),
    patch: (file, upstream) => {
      file.routes = [
        { name: "notes-read", methods: ["GET"], path: "/api/notes/**", scopes: ["read"], upstream },
        { name: "notes-write", methods: ["POST"], path: "/api/notes/**", scopes: ["write"], upstream },
        { name: "forwarded", path: "/api/forward/**", scopes: ["read"], upstream, forwardAuthorization: true },
      ];
      file.gateway = { guard: { realm: "notes-api", extAuthz: { host: "127.0.0.1", port } } };
    },
  });
  client = createExtAuthzClient(`127.0.0.1:${port}`);
  const [read, write] = await Promise.all([s.tokens("read"), s.tokens("write")]);
  tokens = { read: read.accessToken, write: write.accessToken };
});
afterAll(async () => {
  client?.close();
  await s?.close();
});

type Denied = Extract<CheckResponse["httpResponse"], { case: "deniedResponse" }>["value"];
type Ok = Extract<CheckResponse["httpResponse"], { case: "okResponse" }>["value"];
const deniedOf = (response: CheckResponse): Denied => {
  expect(response.httpResponse.case).toBe("deniedResponse");
  return response.httpResponse.value as Denied;
};
const okOf = (response: CheckResponse): Ok => {
  expect(response.status?.code).toBe(0);
  expect(response.httpResponse.case).toBe("okResponse");
  return response.httpResponse.value as Ok;
};
const headerOf = (options: { header?: { key: string; value: string } }[], name: string) => options.find((o) => o.header?.key === name)?.header?.value;
const check = (init: Parameters<typeof envoyCheckRequest>[0]) => client.check(envoyCheckRequest(init));

describe("Check: the guard's verdicts as Envoy takes them", () => {
  it("a live token with the route's scope: OK, the verified identity set over the caller's copy, the token and the copies removed", async () => {
    const response = await check({ path: "/api/notes/1?view=full", headers: { ...bearer(tokens.read), "x-gatehouse-subject": "admin", x_gatehouse_client: "evil" } });
    const ok = okOf(response);
    expect(headerOf(ok.headers, "x-gatehouse-client")).toBe("web");
    expect(headerOf(ok.headers, "x-gatehouse-scope")).toBe("read");
    expect(headerOf(ok.headers, "x-gatehouse-subject")).not.toBe("admin");
    expect(ok.headers.every((h) => h.append === false)).toBe(true);
    expect(ok.headersToRemove).toContain("authorization");
    expect(ok.headersToRemove).toContain("x_gatehouse_client");
    // Envoy removes after it sets: the verified subject must not be removed with the caller's.
    expect(ok.headersToRemove).not.toContain("x-gatehouse-subject");
    // The path was already in normal form: Envoy forwards it as it is.
    expect(headerOf(ok.headers, ":path")).toBeUndefined();
  });

  it("a route that forwards Authorization keeps it", async () => {
    const ok = okOf(await check({ path: "/api/forward/x", headers: bearer(tokens.read) }));
    expect(ok.headersToRemove).not.toContain("authorization");
  });

  it("RFC 6750 §3.1: no token: 401 with a challenge without an error code, UNAUTHENTICATED", async () => {
    const response = await check({ path: "/api/notes/1" });
    expect(response.status?.code).toBe(Code.Unauthenticated);
    const denied = deniedOf(response);
    expect(denied.status?.code).toBe(401);
    expect(headerOf(denied.headers, "www-authenticate")).toBe('Bearer realm="notes-api"');
  });

  it("RFC 6750 §3.1: an unknown token: 401 invalid_token with a JSON body", async () => {
    const denied = deniedOf(await check({ path: "/api/notes/1", headers: bearer("not-a-token") }));
    expect(denied.status?.code).toBe(401);
    expect(headerOf(denied.headers, "www-authenticate")).toContain('error="invalid_token"');
    expect(JSON.parse(denied.body)).toMatchObject({ error: "invalid_token" });
  });

  it("RFC 6750 §3.1: a token without the route's scope: 403 insufficient_scope, PERMISSION_DENIED", async () => {
    const response = await check({ method: "POST", path: "/api/notes/1", headers: bearer(tokens.read) });
    expect(response.status?.code).toBe(Code.PermissionDenied);
    const denied = deniedOf(response);
    expect(denied.status?.code).toBe(403);
    expect(headerOf(denied.headers, "www-authenticate")).toContain('error="insufficient_scope"');
    expect(headerOf(denied.headers, "www-authenticate")).toContain('scope="write"');
  });

  it("an unmatched path is refused (404), never let through", async () => {
    const denied = deniedOf(await check({ path: "/elsewhere", headers: bearer(tokens.read) }));
    expect(denied.status?.code).toBe(404);
  });

  it("RFC 7009: a revoked token is refused within a second, through the same cache and revocation feed as the sidecar", async () => {
    const { accessToken, refreshToken } = await s.tokens("read");
    okOf(await check({ path: "/api/notes/1", headers: bearer(accessToken) }));
    await s.authz.authz.revoke({ token: refreshToken }, basic("web", SECRETS.web));
    await eventually(async () => (await check({ path: "/api/notes/1", headers: bearer(accessToken) })).status?.code === Code.Unauthenticated, 1_000);
  });
});

describe("path and header tricks inside `path`, as Envoy passes it (undecoded, with the query)", () => {
  it.each([
    ["/api/notes/%2e%2e/admin", 400],
    ["/api/notes/..%2fadmin", 400],
    ["/api/notes/x%00", 400],
    ["/api/notes/%252e%252e/x", 400],
    ["/api/notes;x=1/1", 400],
    ["/API/notes/1", 400],
    ["/api/notes/1?access_token=abc", 400],
    ["http://evil.example/api/notes/1", 400],
    ["", 400],
  ])("%j is refused with %i", async (path, status) => {
    const denied = deniedOf(await check({ path, headers: bearer(tokens.read) }));
    expect(denied.status?.code).toBe(status);
    // RFC 6750 §3: every refusal of a bearer request carries the challenge.
    expect(headerOf(denied.headers, "www-authenticate")).toMatch(/^Bearer /);
  });

  it("a path that normalises to a guarded one is decided on its normal form, and Envoy is told to forward that form", async () => {
    const ok = okOf(await check({ path: "/api/x/../notes/%31?q=%2e", headers: bearer(tokens.read) }));
    expect(headerOf(ok.headers, ":path")).toBe("/api/notes/1?q=%2e");
  });

  it("RFC 6750 §3.1: a second Authorization header (encode_raw_headers: header_map) is invalid_request", async () => {
    const request = create(CheckRequestSchema, envoyCheckRequest({ path: "/api/notes/1" }));
    const http = request.attributes!.request!.http!;
    http.headers = {};
    http.headerMap = {
      $typeName: "envoy.config.core.v3.HeaderMap",
      headers: [
        { $typeName: "envoy.config.core.v3.HeaderValue", key: "authorization", value: "", rawValue: Buffer.from(`Bearer ${tokens.read}`) },
        { $typeName: "envoy.config.core.v3.HeaderValue", key: "authorization", value: "", rawValue: Buffer.from("Bearer other") },
      ],
    };
    const denied = deniedOf(fromBinary(CheckResponseSchema, await client.checkBytes(toBinary(CheckRequestSchema, request))));
    expect(denied.status?.code).toBe(400);
  });

  it("path-rewriting headers sent along with an allowed request are removed (X-Original-URL, X-HTTP-Method-Override)", async () => {
    const ok = okOf(await check({ path: "/api/notes/1", headers: { ...bearer(tokens.read), "x-original-url": "/api/admin/x", "x-http-method-override": "DELETE" } }));
    expect(ok.headersToRemove).toEqual(expect.arrayContaining(["x-original-url", "x-http-method-override"]));
  });
});

describe("the wire, as Envoy encodes it", () => {
  /** Protobuf wire format by hand, with the field numbers of Envoy's published definitions (not our proto). */
  const varint = (n: number): number[] => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return out;
  };
  const field = (number: number, body: Uint8Array | string): number[] => {
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    return [...varint((number << 3) | 2), ...varint(bytes.length), ...bytes];
  };
  const message = (...fields: number[][]) => Uint8Array.from(fields.flat());

  it("a CheckRequest encoded with Envoy's field numbers is read, and the answer decodes with them", async () => {
    // HttpRequest: id 1, method 2, headers 3 (map entry: key 1, value 2), path 4, host 5.
    const header = (key: string, value: string) => field(3, message(field(1, key), field(2, value)));
    const http = message(field(1, "req-1"), field(2, "GET"), header(":path", "/api/notes/1"), header("authorization", `Bearer ${tokens.read}`), field(4, "/api/notes/1"), field(5, "notes.example"));
    // AttributeContext.request 4 → Request.http 2; source 1 → Peer.address 1 → Address.socket_address 1 → address 2.
    const source = message(field(1, message(field(1, message(field(2, "198.51.100.9"))))));
    const checkRequest = message(field(1, message(field(1, source), field(4, message(field(2, http))))));
    const response = Buffer.from(await client.checkBytes(checkRequest));
    // CheckResponse: status 1 (google.rpc.Status, code 1 absent = OK), ok_response 3 → headers 2 → HeaderValueOption.header 1 → key 1.
    /** Length-delimited fields as bytes, varint fields as numbers, by field number. */
    const read = (bytes: Buffer) => {
      const fields = new Map<number, (Buffer | number)[]>();
      let i = 0;
      const readVarint = () => {
        let value = 0;
        let shift = 0;
        for (;;) {
          const b = bytes[i++]!;
          value += (b & 0x7f) * 2 ** shift;
          shift += 7;
          if (b < 0x80) return value;
        }
      };
      while (i < bytes.length) {
        const tag = readVarint();
        const wireType = tag & 7;
        expect([0, 2]).toContain(wireType);
        let value: Buffer | number;
        if (wireType === 0) value = readVarint();
        else {
          const length = readVarint();
          value = bytes.subarray(i, i + length);
          i += length;
        }
        fields.set(tag >>> 3, [...(fields.get(tag >>> 3) ?? []), value]);
      }
      return fields;
    };
    const sub = (fields: Map<number, (Buffer | number)[]>, n: number, k = 0) => read(fields.get(n)![k] as Buffer);
    const top = read(response);
    expect(sub(top, 1).has(1)).toBe(false); // google.rpc.Status.code 0 is not written: OK
    expect(top.has(2)).toBe(false);
    const ok = sub(top, 3);
    const options = ok.get(2)!.map((option) => read(option as Buffer));
    const byKey = new Map(options.map((option) => [sub(option, 1).get(1)![0]!.toString(), option]));
    expect([...byKey.keys()]).toEqual(expect.arrayContaining(["x-gatehouse-subject", "x-gatehouse-client", "x-gatehouse-scope"]));
    const subject = byKey.get("x-gatehouse-client")!;
    expect(sub(subject, 1).get(2)![0]!.toString()).toBe("web"); // HeaderValue.value 2
    expect(subject.get(2)![0]).toHaveLength(0); // BoolValue append 2, present and false (empty message)
    expect(subject.get(3)![0]).toBe(2); // append_action 3: OVERWRITE_IF_EXISTS_OR_ADD
    expect(ok.get(5)!.map((b) => b.toString())).toContain("authorization"); // headers_to_remove 5
  });
});

describe("the gRPC listener", () => {
  const rawCall = (headers: http2.OutgoingHttpHeaders, body: Buffer) =>
    new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on("error", reject);
      const stream = session.request({ ":method": "POST", ":path": "/envoy.service.auth.v3.Authorization/Check", "content-type": "application/grpc", te: "trailers", ...headers });
      let head: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => (head = h));
      stream.on("trailers", (t) => (trailers = t));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        session.close();
        resolve({ headers: head, trailers, body: Buffer.concat(chunks) });
      });
      stream.on("error", reject);
      stream.end(body);
    });
  const frame = (bytes: Uint8Array, compressed = 0) => {
    const out = Buffer.alloc(5 + bytes.length);
    out[0] = compressed;
    out.writeUInt32BE(bytes.length, 1);
    out.set(bytes, 5);
    return out;
  };
  const valid = toBinary(CheckRequestSchema, create(CheckRequestSchema, envoyCheckRequest({ path: "/api/notes/1" })));

  it("gRPC over HTTP/2: the answer is one message and grpc-status 0 in the trailers", async () => {
    const response = await rawCall({}, frame(valid));
    expect(response.headers[":status"]).toBe(200);
    expect(response.headers["content-type"]).toBe("application/grpc+proto");
    expect(response.trailers["grpc-status"]).toBe("0");
    expect(response.body.readUInt32BE(1)).toBe(response.body.length - 5);
  });

  it("a content type that is not gRPC gets HTTP 415", async () => {
    expect((await rawCall({ "content-type": "application/json" }, Buffer.from("{}"))).headers[":status"]).toBe(415);
  });

  it.each([
    ["another method", { ":path": "/envoy.service.auth.v3.Authorization/Other" }, frame(valid), Code.Unimplemented],
    ["a compressed message (none is accepted)", {}, frame(valid, 1), Code.Unimplemented],
    ["a message that is not a CheckRequest", {}, frame(Uint8Array.from([0xff, 0xff, 0xff])), Code.InvalidArgument],
    ["a truncated frame", {}, frame(valid).subarray(0, 10), Code.InvalidArgument],
    ["two messages in a unary call", {}, Buffer.concat([frame(valid), frame(valid)]), Code.InvalidArgument],
    ["a message over gRPC's 4 MiB default", {}, frame(new Uint8Array(4 * 1024 * 1024 + 1)), Code.ResourceExhausted],
  ])("%s: a gRPC error, never a pass", async (_name, headers, body, code) => {
    const response = await rawCall(headers, body);
    expect(response.headers[":status"]).toBe(200);
    // Trailers-Only: the status comes in the one HEADERS frame.
    expect(Number(response.headers["grpc-status"] ?? response.trailers["grpc-status"])).toBe(code);
  });

  it("grpc-js sees the same: a message that is not a CheckRequest is INVALID_ARGUMENT", async () => {
    const error = await client.checkBytes(Uint8Array.from([0xff])).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(error?.code).toBe(Code.InvalidArgument);
  });
});

describe("the listener's lifecycle", () => {
  it("starts with the gateway and closes with it: afterwards Envoy's call fails (and Envoy denies, failure_mode_allow: false)", async () => {
    const otherPort = await freePort();
    const gateway = await startGuardGateway({
      authzUrl: s.authz.running.url,
      redisUrl: inject("redisUrl"),
      patch: (file) => {
        s.patch(file);
        ((file.gateway as Record<string, Record<string, unknown>>).guard!).extAuthz = { port: otherPort };
      },
    });
    const other = createExtAuthzClient(`127.0.0.1:${otherPort}`);
    try {
      okOf(await other.check(envoyCheckRequest({ path: "/api/notes/1", headers: bearer(tokens.read) })));
      await gateway.close();
      const error = await other.check(envoyCheckRequest({ path: "/api/notes/1", headers: bearer(tokens.read) }), { deadlineMs: 2_000 }).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(error?.code).toBe(Code.Unavailable);
    } finally {
      other.close();
      await gateway.close();
    }
  });

  it("a port that cannot be bound stops the start, as the gateway's own would", async () => {
    const config = { ...s.gateway.config, guard: { ...s.gateway.config.guard, extAuthz: { host: "127.0.0.1", port } } };
    const app = await buildApp(createGatewayDeps(config, pino({ level: "silent" })));
    try {
      await expect(app.ready()).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await app.close();
    }
  });
});
