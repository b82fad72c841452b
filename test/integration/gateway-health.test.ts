import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startTestStack, type TestStack } from "../support/stack.js";

let stack: TestStack;
let draining = false;
beforeAll(async () => {
  stack = await startTestStack({ redisUrl: inject("redisUrl"), gatewayOverrides: { draining: () => draining } });
});
afterAll(() => stack.close());

describe("gateway health", () => {
  it("/healthz answers while the process lives", async () => {
    const response = await fetch(`${stack.gateway.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("/readyz is ready only while the authz service answers and the gateway is not draining", async () => {
    expect((await fetch(`${stack.gateway.url}/readyz`)).status).toBe(200);
    draining = true;
    expect((await fetch(`${stack.gateway.url}/readyz`)).status).toBe(503);
    draining = false;
  });

  it("unknown paths are 404 in JSON", async () => {
    const response = await fetch(`${stack.gateway.url}/nothing-here`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: "not_found" });
  });
});
