import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ISSUER } from "../support/authz.js";
import { startTestStack, type TestStack } from "../support/stack.js";

/**
 * Seed 002, Require HTTPS: with requireHttps on (an https issuer), plain HTTP
 * is served only from loopback or from a trusted proxy that says the client
 * used https. Requests from other addresses are made with fastify's inject,
 * which sets the peer address the gateway sees.
 */
const PROXY = "198.51.100.7";
const STRANGER = "203.0.113.5";
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({
    redisUrl: inject("redisUrl"),
    patch: (file) => {
      file.issuer = ISSUER;
      file.requireHttps = true;
      if (file.gateway !== undefined) (file.gateway as Record<string, unknown>).trustedProxies = [PROXY];
    },
  });
});
afterAll(() => stack.close());

const from = (remoteAddress: string, url: string, headers: Record<string, string> = {}, method: "GET" | "POST" = "GET") =>
  stack.gateway.app.inject({
    method,
    url,
    remoteAddress,
    headers: method === "POST" ? { "content-type": "application/x-www-form-urlencoded", ...headers } : headers,
    ...(method === "POST" ? { payload: "grant_type=authorization_code&code=x" } : {}),
  });

describe("requireHttps", () => {
  it("serves plain HTTP from loopback", async () => {
    const response = await fetch(`${stack.gateway.url}/.well-known/oauth-authorization-server`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { token_endpoint: string }).token_endpoint).toBe(`${ISSUER}/oauth2/token`);
  });

  it("refuses plain HTTP from the network: 400 invalid_request before any parameter is read", async () => {
    const response = await from(STRANGER, "/oauth2/token", {}, "POST");
    expect(response.statusCode).toBe(400);
    expect(response.headers["cache-control"]).toBe("no-store");
    expect(response.json()).toEqual({ error: "invalid_request", error_description: "this endpoint must be used over https" });
  });

  it("refuses the pages with an HTML error page", async () => {
    const response = await from(STRANGER, "/oauth2/authorize?response_type=code&client_id=web");
    expect(response.statusCode).toBe(400);
    expect(response.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(response.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(response.headers.location).toBeUndefined();
  });

  it("does not believe X-Forwarded-Proto from an untrusted address", async () => {
    expect((await from(STRANGER, "/.well-known/jwks.json", { "x-forwarded-proto": "https" })).statusCode).toBe(400);
  });

  it("believes a trusted proxy that says https, and refuses one that says http or says nothing", async () => {
    expect((await from(PROXY, "/.well-known/jwks.json", { "x-forwarded-proto": "https" })).statusCode).toBe(200);
    expect((await from(PROXY, "/.well-known/jwks.json", { "x-forwarded-proto": "http" })).statusCode).toBe(400);
    expect((await from(PROXY, "/.well-known/jwks.json")).statusCode).toBe(400);
    // The proxy's own hop is the last entry: a client-sent "https" before it does not count.
    expect((await from(PROXY, "/.well-known/jwks.json", { "x-forwarded-proto": "https, http" })).statusCode).toBe(400);
  });

  it("leaves the probes alone: kubelets call them over plain HTTP", async () => {
    expect((await from(STRANGER, "/healthz")).statusCode).toBe(200);
  });

  it("marks the cookies Secure when the issuer is https", async () => {
    const response = await from(PROXY, "/login", { "x-forwarded-proto": "https" });
    expect(response.statusCode).toBe(200);
    const cookies = [response.headers["set-cookie"]].flat();
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) expect(cookie).toMatch(/; HttpOnly; SameSite=Lax; Secure$/);
  });
});
