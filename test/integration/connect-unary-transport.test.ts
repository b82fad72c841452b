import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { createConnectUnaryTransport } from "../../gateway/rpc/connect-unary-transport.js";
import { ISSUER, SECRETS, WEB_REDIRECT, basic, failureOf, issueTokens, pkcePair, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { freePort } from "../support/redis-server.js";

let t: TestAuthz;
beforeAll(async () => {
  t = await startTestAuthz({ redisUrl: inject("redisUrl") });
});
afterAll(() => t.close());

const lean = (baseUrl: string) =>
  createClient(
    AuthorizationService,
    createConnectUnaryTransport({
      baseUrl,
      defaultTimeoutMs: 2_000,
      header: { "gatehouse-service-credential": SECRETS.service },
      streams: createConnectTransport({ baseUrl, httpVersion: "2" }),
    }),
  );

describe("the gateway's lean Connect unary transport", () => {
  it("calls unary RPCs with the configured headers and per-call metadata", async () => {
    const client = lean(t.running.url);
    expect((await client.getMetadata({})).issuer).toBe(ISSUER);
    // Authorize needs the service credential from the transport's headers.
    const pending = await client.authorize({ responseType: "code", clientId: "spa", scope: "read", codeChallenge: pkcePair().challenge, codeChallengeMethod: "S256" });
    expect(pending.clientName).toBe("Single Page App");
    const tokens = await issueTokens(t);
    expect((await client.introspect({ token: tokens.accessToken }, basic("resource-server", SECRETS.resourceServer))).active).toBe(true);
  });

  it("decodes errors as connect-es does: code, OAuth detail, metadata", async () => {
    const client = lean(t.running.url);
    const failure = await failureOf(client.exchangeCode({ code: "x".repeat(43), redirectUri: WEB_REDIRECT, codeVerifier: pkcePair().verifier }, basic("web", "wrong")));
    expect(failure.code).toBe(Code.Unauthenticated);
    expect(failure.oauth).toMatchObject({ error: "invalid_client" });
    const redirect = await failureOf(client.authorize({ responseType: "code", clientId: "spa", scope: "admin", state: "s" }));
    expect(new URL(redirect.oauth!.redirectUrl).searchParams.get("error")).toBe("invalid_scope");
  });

  it("streams go through the streaming transport", async () => {
    const client = lean(t.running.url);
    for await (const event of client.watchRevocations({})) {
      expect(event.event.case).toBe("subscribed");
      break;
    }
  });

  it("a refused connection is Unavailable with ECONNREFUSED in its cause, for the failover", async () => {
    const failure = await lean(`http://127.0.0.1:${await freePort()}`).getMetadata({}).catch((error: unknown) => error);
    expect((failure as { code: Code }).code).toBe(Code.Unavailable);
    const causes: string[] = [];
    for (let cause: unknown = failure; cause instanceof Error; cause = cause.cause) causes.push(String((cause as NodeJS.ErrnoException).code));
    expect(causes.join(" ")).toMatch(/ECONNREFUSED/);
  });

  it("a call past its deadline is DeadlineExceeded, and the stream is cancelled", async () => {
    // A server that takes requests and never answers.
    const { createServer } = await import("node:http2");
    let cancelled = false;
    const silent = createServer();
    silent.on("stream", (stream) => stream.on("close", () => (cancelled = true)));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    try {
      const failure = await failureOf(lean(`http://127.0.0.1:${port}`).getMetadata({}, { timeoutMs: 100 }));
      expect(failure.code).toBe(Code.DeadlineExceeded);
      await expect.poll(() => cancelled).toBe(true);
    } finally {
      silent.close();
    }
  });
});
