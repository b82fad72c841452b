import { describe, expect, it } from "vitest";
import { BATCHED_BY_METHOD, BATCHED_BY_REQUEST_CASE } from "../../contract/batched-calls.js";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";

// proto/gatehouse/v1/batch_service.proto names AuthorizationService's requests and responses in two oneofs;
// an RPC added to the service without its two cases could not be batched, and this fails.
describe("the batched calls (contract/batched-calls.ts)", () => {
  it("every unary method of AuthorizationService has a request case and a response case in the batch", () => {
    const unary = AuthorizationService.methods.filter((method) => method.methodKind === "unary").map((method) => method.name);
    expect([...BATCHED_BY_METHOD.keys()].map((method) => method.name).sort()).toEqual(unary.sort());
  });

  it("each request case names one method, and a method's cases are named as the method (Introspect: introspect)", () => {
    expect(BATCHED_BY_REQUEST_CASE.size).toBe(BATCHED_BY_METHOD.size);
    for (const { method, requestCase, responseCase } of BATCHED_BY_METHOD.values()) {
      const camel = method.name.charAt(0).toLowerCase() + method.name.slice(1);
      expect([requestCase, responseCase]).toEqual([camel, camel]);
    }
  });
});
