import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { HeaderValueOption_HeaderAppendAction } from "../../gen/envoy/config/core/v3/base_pb.js";
import { CheckRequestSchema, CheckResponseSchema, type CheckResponse } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { createExtAuthzCheck, toCheckAnswer, toGuardRequest } from "../../gateway/entrances/ext-authz.js";
import { decodeCheckRequest, encodeCheckResponse, type CheckAnswer } from "../../gateway/entrances/ext-authz-wire.js";
import type { GuardDecision } from "../../gateway/guard/pipeline.js";
import type { Allowance, Refusal } from "../../gateway/guard/pipeline.js";
import type { Principal } from "../../gateway/guard/introspection-cache.js";
import { envoyCheckRequest } from "../support/ext-authz-client.js";

/**
 * Entrance 3's translation, both ways: the CheckRequest Envoy sends into the
 * pipeline's GuardRequest, and the pipeline's decision into the
 * CheckResponse Envoy acts on (envoy/service/auth/v3/external_auth.proto).
 * The requests are encoded, and the answers decoded, by the code generated
 * from proto/envoy/: the hand-written wire codec must agree with it.
 */

const decoded = (init: MessageInitShape<typeof CheckRequestSchema>) => decodeCheckRequest(toBinary(CheckRequestSchema, create(CheckRequestSchema, init)));
const guardRequestOf = (init: Parameters<typeof envoyCheckRequest>[0], patch: (request: ReturnType<typeof envoyCheckRequest>) => void = () => {}) => {
  const request = envoyCheckRequest(init);
  patch(request);
  const check = decoded(request);
  return toGuardRequest(check.http!, check.peer);
};
const responseOf = (answer: CheckAnswer): CheckResponse => fromBinary(CheckResponseSchema, encodeCheckResponse(answer));
const toCheckResponse = (decision: GuardDecision, target: string) => responseOf(toCheckAnswer(decision, target));

describe("CheckRequest → GuardRequest", () => {
  it("takes method, target (path with query, undecoded), host and lower-case headers; leaves the pseudo-headers out", () => {
    const request = guardRequestOf({ method: "POST", path: "/api/notes/%2e%2e/x?y=1", host: "notes.example", headers: { Authorization: "Bearer abc", "X-Thing": "1" } });
    expect(request).toMatchObject({ method: "POST", target: "/api/notes/%2e%2e/x?y=1", peer: "203.0.113.7", websocket: false, requestId: "7d1c2b8e-0f4a-4d6e-9b1a-2c3d4e5f6a7b" });
    expect(request.headers).toEqual({ host: "notes.example", authorization: "Bearer abc", "x-thing": "1", "x-request-id": "7d1c2b8e-0f4a-4d6e-9b1a-2c3d4e5f6a7b" });
    expect(request.rawHeaders).toBeUndefined();
  });

  it("a field named __proto__ is a field like any other, not the object's prototype", () => {
    const request = guardRequestOf({ path: "/x", headers: { ["__proto__"]: "x", authorization: "Bearer abc" } as Record<string, string> }, (r) => {
      r.attributes!.request!.http!.headers = { ["__proto__"]: "{}", authorization: "Bearer abc" };
    });
    expect(Object.keys(request.headers)).toEqual(expect.arrayContaining(["__proto__", "authorization"]));
    expect(request.headers["__proto__"]).toBe("{}");
  });

  it("a WebSocket handshake is one (GET with Upgrade: websocket)", () => {
    expect(guardRequestOf({ path: "/ws", headers: { upgrade: "WebSocket", connection: "Upgrade" } }).websocket).toBe(true);
  });

  it("encode_raw_headers: header_map keeps repeated fields apart, so a second Authorization reaches the pipeline", () => {
    const check = decoded({
      attributes: {
        request: {
          http: {
            method: "GET",
            path: "/api/x",
            host: "h",
            headerMap: {
              headers: [
                { key: ":path", rawValue: Buffer.from("/api/x") },
                { key: "authorization", rawValue: Buffer.from("Bearer a") },
                { key: "authorization", rawValue: Buffer.from("Bearer b") },
                { key: "accept", value: "text/plain" },
              ],
            },
          },
        },
      },
    });
    const request = toGuardRequest(check.http!, check.peer);
    expect(request.rawHeaders).toEqual(["authorization", "Bearer a", "authorization", "Bearer b", "accept", "text/plain"]);
    expect(request.headers).toMatchObject({ authorization: "Bearer a, Bearer b", accept: "text/plain", host: "h" });
    expect(request.peer).toBe("");
  });

  it("an unusable request id is replaced by a fresh one (it is sent upstream and logged)", () => {
    const request = guardRequestOf({ path: "/x" }, (r) => {
      const http = r.attributes!.request!.http!;
      http.id = "bad id\r\n";
      http.headers!["x-request-id"] = "also bad";
    });
    expect(request.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("what the guard does not read is skipped: metadata, TLS details, fields Envoy adds later", () => {
    const bytes = toBinary(CheckRequestSchema, create(CheckRequestSchema, envoyCheckRequest({ path: "/api/notes/1", headers: { authorization: "Bearer abc" } })));
    // AttributeContext fields 11 (metadata_context), 12 (tls_session) and a future 99 (tag 0x9a 0x06), each a small message.
    const unknown = (field: number) => [(field << 3) | 2, 2, 0x08, 0x01];
    const extra = [...unknown(11), ...unknown(12), ...[0x9a, 0x06, 2, 0x08, 0x01]];
    // A second `attributes` (1) is merged into the first, as protobuf merges a repeated message field.
    const patched = Uint8Array.from([...bytes, 0x0a, extra.length, ...extra]);
    const check = decodeCheckRequest(patched);
    expect(check.http).toMatchObject({ method: "GET", path: "/api/notes/1", headers: { authorization: "Bearer abc" } });
    expect(check.peer).toBe("203.0.113.7");
  });

  it("bytes that are not a CheckRequest are refused, not half-read", () => {
    const bytes = toBinary(CheckRequestSchema, create(CheckRequestSchema, envoyCheckRequest({ path: "/api/notes/1" })));
    expect(() => decodeCheckRequest(bytes.subarray(0, bytes.length - 3))).toThrow();
    expect(() => decodeCheckRequest(Uint8Array.from([0xff, 0xff, 0xff]))).toThrow();
  });
});

const refusal = (over: Partial<Refusal>): Refusal => ({
  kind: "refuse",
  route: "notes",
  outcome: "missing_token",
  status: 401,
  error: undefined,
  description: "a bearer token is required",
  headers: { "content-type": "application/json", "www-authenticate": 'Bearer realm="notes-api"', "cache-control": "no-store", "content-length": "2" },
  body: "{}",
  ...over,
});

const principal: Principal = {
  active: true,
  subject: "user-1",
  clientId: "web",
  scope: "read",
  scopes: new Set(["read"]),
  expiresAt: 1_000_000,
  jti: "jti-1",
  grantId: "grant-1",
  audience: ["https://notes.example"],
  headerValues: { subject: "user-1", client: "web", scope: "read" },
};

const allowance = (over: Partial<Allowance>): Allowance => ({
  kind: "allow",
  route: "notes",
  outcome: "allowed",
  principal,
  expiresAt: 1_000_000,
  path: "/api/notes/1",
  search: "",
  upstream: "http://upstream",
  errorStyle: "rfc6750",
  setHeaders: { "x-gatehouse-subject": "user-1", "x-gatehouse-client": "web", "x-gatehouse-scope": "read" },
  removeHeaders: ["authorization", "x-gatehouse-subject", "x_gatehouse_subject", "x-original-url"],
  ...over,
});

describe("Refusal → DeniedHttpResponse", () => {
  it.each([
    [401, Code.Unauthenticated],
    [403, Code.PermissionDenied],
    [400, Code.PermissionDenied],
    [404, Code.PermissionDenied],
    [503, Code.Unavailable],
  ])("RFC 6750 §3: a %i refusal is denied with that status, the challenge and the JSON body (gRPC status %i)", (status, code) => {
    const headers = { "content-type": "application/json", "www-authenticate": 'Bearer realm="r", error="invalid_token"', "Retry-After": "1" };
    const response = toCheckResponse(refusal({ status, headers, body: '{"error":"invalid_token"}' }), "/x");
    expect(response.status?.code).toBe(code);
    expect(response.httpResponse.case).toBe("deniedResponse");
    const denied = response.httpResponse.value as Extract<typeof response.httpResponse, { case: "deniedResponse" }>["value"];
    expect(denied.status?.code).toBe(status);
    expect(denied.body).toBe('{"error":"invalid_token"}');
    expect(denied.headers.map((h: { header?: { key: string; value: string }; append?: boolean }) => [h.header?.key, h.header?.value, h.append])).toEqual([
      ["content-type", "application/json", false],
      ["www-authenticate", 'Bearer realm="r", error="invalid_token"', false],
      ["retry-after", "1", false],
    ]);
  });

  it("framing fields are left to Envoy (it computes Content-Length for the body it sends)", () => {
    const response = toCheckResponse(refusal({}), "/x");
    const denied = response.httpResponse.value as { headers: { header?: { key: string } }[] };
    expect(denied.headers.map((h) => h.header?.key)).not.toContain("content-length");
  });
});

describe("Allowance → OkHttpResponse", () => {
  it("sets the identity headers, replacing the caller's copies, and removes what the pipeline strips", () => {
    const response = toCheckResponse(allowance({}), "/api/notes/1");
    expect(response.status?.code).toBe(0);
    expect(response.httpResponse.case).toBe("okResponse");
    const ok = response.httpResponse.value as Extract<typeof response.httpResponse, { case: "okResponse" }>["value"];
    expect(ok.headers.map((h) => [h.header?.key, h.header?.value, h.append, h.appendAction])).toEqual([
      ["x-gatehouse-subject", "user-1", false, HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD],
      ["x-gatehouse-client", "web", false, HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD],
      ["x-gatehouse-scope", "read", false, HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD],
    ]);
    // Envoy removes after it sets: a name that is set is not also removed, or the verified value would go too.
    expect(ok.headersToRemove).toEqual(["authorization", "x_gatehouse_subject", "x-original-url"]);
  });

  it("the upstream gets the path that was checked: :path is set when the normal form differs from what was sent", () => {
    const ok = (target: string, path: string, search: string) =>
      (toCheckResponse(allowance({ path, search }), target).httpResponse.value as { headers: { header?: { key: string; value: string } }[] }).headers
        .filter((h) => h.header?.key === ":path")
        .map((h) => h.header?.value);
    expect(ok("/api/notes/%31?a=b", "/api/notes/1", "?a=b")).toEqual(["/api/notes/1?a=b"]);
    expect(ok("/api/notes/1?a=b", "/api/notes/1", "?a=b")).toEqual([]);
  });

  it("a passthrough sets nothing and still removes the caller's identity headers", () => {
    const response = toCheckResponse(allowance({ principal: undefined, expiresAt: undefined, outcome: "passthrough", setHeaders: {}, removeHeaders: ["x-gatehouse-subject"] }), "/api/notes/1");
    expect(response.httpResponse.value).toMatchObject({ headers: [], headersToRemove: ["x-gatehouse-subject"] });
  });
});

describe("createExtAuthzCheck", () => {
  it("a Check without HTTP attributes (the network filter) is denied without asking the pipeline: there is no request to decide on", async () => {
    const check = createExtAuthzCheck({
      decide: () => {
        throw new Error("the pipeline must not be asked");
      },
      protectedResourceMetadata: () => {
        throw new Error("the pipeline must not be asked");
      },
    });
    const response = responseOf(await check(decoded({ attributes: {} })));
    expect(response.status?.code).toBe(Code.InvalidArgument);
    expect(response.httpResponse.case).toBeUndefined();
  });
});
