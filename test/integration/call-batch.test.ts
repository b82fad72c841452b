import { create, type DescMessage, type DescMethodUnary, type MessageInitShape } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createContextValues, createRouterTransport, type ServiceImpl, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SERVICE_CREDENTIAL_HEADER } from "../../contract/metadata.js";
import { createBatchingTransport } from "../../gateway/rpc/batching-transport.js";
import { createConnectUnaryTransport } from "../../gateway/rpc/connect-unary-transport.js";
import { BATCHED_BY_METHOD, MAX_BATCH_CALLS } from "../../contract/batched-calls.js";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { BatchedCallSchema, BatchService, type BatchedResult } from "../../gen/gatehouse/v1/batch_service_pb.js";
import { OAuthErrorDetailSchema } from "../../gen/gatehouse/v1/errors_pb.js";
import { createBatchService } from "../../services/authz/transport/call-batch.js";
import { registration } from "../../services/authz/transport/connect-unary.js";
import { kPeerAddress } from "../../services/authz/rpc/caller.js";
import { SECRETS, basic, failureOf, issueTokens, startTestAuthz, type TestAuthz } from "../support/authz.js";
import { startTestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

// BatchService.CallBatch on a real authz service, and the gateway's batching transport over the lean
// HTTP/2 transport to it: every call of a batch must be answered as it would have been alone.
let t: TestAuthz;
beforeAll(async () => {
  t = await startTestAuthz({ redisUrl: inject("redisUrl") });
});
afterAll(() => t.close());

const asResourceServer = () => basic("resource-server", SECRETS.resourceServer);

/** One call of a batch, as the gateway sends it: the request whose type names the method. */
function batched<I extends DescMessage>(method: DescMethodUnary<I>, input: MessageInitShape<I>, header: Record<string, string> = {}, timeoutMs = 0) {
  const { requestCase } = BATCHED_BY_METHOD.get(method as unknown as DescMethodUnary)!;
  return create(BatchedCallSchema, { header, timeoutMs, request: { case: requestCase, value: create(method.input, input) } as never });
}

/** A batched response, of the case the method's response type names. */
function responseOf(result: BatchedResult) {
  if (result.outcome.case !== "introspect") throw new Error(`expected an introspection, got ${result.outcome.case}`);
  return result.outcome.value;
}

/** A batched error as the code, message and OAuth error it carries. */
function errorOf(result: BatchedResult) {
  if (result.outcome.case !== "error") throw new Error(`expected an error, got ${result.outcome.case}`);
  const status = result.outcome.value;
  const oauth = status.details.map((detail) => anyUnpack(detail, OAuthErrorDetailSchema)).find((detail) => detail !== undefined);
  return { code: status.code, message: status.message, oauth };
}

describe("BatchService.CallBatch", () => {
  const batches = () => createClient(BatchService, t.transport);

  it("answers each call as the same call alone is answered, in order: responses, and errors with their code and OAuth error", async () => {
    const tokens = await issueTokens(t);
    const { results } = await batches().callBatch({
      calls: [
        batched(AuthorizationService.method.introspect, { token: tokens.accessToken }, asResourceServer().headers),
        batched(AuthorizationService.method.introspect, { token: "garbage" }, asResourceServer().headers),
        batched(AuthorizationService.method.introspect, { token: tokens.accessToken }, basic("resource-server", "wrong").headers),
        batched(AuthorizationService.method.refresh, { refreshToken: "x".repeat(43) }, basic("web", SECRETS.web).headers),
      ],
    });
    expect(results).toHaveLength(4);

    const alone = await t.authz.introspect({ token: tokens.accessToken }, asResourceServer());
    expect(responseOf(results[0]!)).toEqual(alone);
    expect(alone.active).toBe(true);
    expect(responseOf(results[1]!).active).toBe(false);

    const wrongSecret = await failureOf(t.authz.introspect({ token: tokens.accessToken }, basic("resource-server", "wrong")));
    expect(errorOf(results[2]!)).toMatchObject({ code: wrongSecret.code, oauth: { error: "invalid_client", errorDescription: wrongSecret.oauth?.errorDescription } });
    const badRefresh = await failureOf(t.authz.refresh({ refreshToken: "x".repeat(43) }, basic("web", SECRETS.web)));
    expect(errorOf(results[3]!)).toMatchObject({ code: badRefresh.code, oauth: { error: badRefresh.oauth?.error } });
  });

  it("the caller is the batch's: a call's own service credential is not believed, the batch's is", async () => {
    const authorize = batched(
      AuthorizationService.method.authorize,
      { responseType: "code", clientId: "web", redirectUri: "https://web.test/callback", scope: "read", state: "s", codeChallenge: "x".repeat(43), codeChallengeMethod: "S256" },
      { [SERVICE_CREDENTIAL_HEADER]: SECRETS.service },
    );
    const withoutCredential = await batches().callBatch({ calls: [authorize] });
    expect(errorOf(withoutCredential.results[0]!)).toMatchObject({ code: Code.Unauthenticated, oauth: { error: "unauthenticated_caller" } });

    const forged = { ...authorize, header: { [SERVICE_CREDENTIAL_HEADER]: "not-the-credential" } };
    const withCredential = await batches().callBatch({ calls: [forged] }, t.asGateway);
    expect(withCredential.results[0]!.outcome.case).toBe("authorize");
  });

  it("a call it does not serve in a batch gets its own error; the others are answered", async () => {
    const tokens = await issueTokens(t);
    const { results } = await batches().callBatch({
      calls: [
        { header: asResourceServer().headers },
        batched(AuthorizationService.method.introspect, { token: tokens.accessToken }, { "bad name": "x" }),
        batched(AuthorizationService.method.introspect, { token: tokens.accessToken }, asResourceServer().headers),
      ],
    });
    expect(errorOf(results[0]!).code).toBe(Code.Unimplemented);
    expect(errorOf(results[1]!)).toMatchObject({ code: Code.InvalidArgument, message: expect.stringContaining("metadata is malformed") });
    expect(responseOf(results[2]!).active).toBe(true);
  });

  it(`a batch of more than ${MAX_BATCH_CALLS} calls is refused as a whole (invalid_request)`, async () => {
    const call = batched(AuthorizationService.method.introspect, { token: "garbage" }, asResourceServer().headers);
    const failure = await failureOf(batches().callBatch({ calls: Array.from({ length: MAX_BATCH_CALLS + 1 }, () => call) }));
    expect(failure).toMatchObject({ code: Code.InvalidArgument, oauth: { error: "invalid_request" } });
    expect((await batches().callBatch({ calls: Array.from({ length: MAX_BATCH_CALLS }, () => call) })).results).toHaveLength(MAX_BATCH_CALLS);
  });

  it("is served on every protocol the service speaks (here Connect JSON over HTTP/1.1)", async () => {
    const client = createClient(BatchService, createConnectTransport({ baseUrl: t.running.url, httpVersion: "1.1", useBinaryFormat: false }));
    const { results } = await client.callBatch({ calls: [batched(AuthorizationService.method.introspect, { token: "garbage" }, asResourceServer().headers)] });
    expect(responseOf(results[0]!).active).toBe(false);
  });
});

/** Calls as the transport below the batching one saw them: the procedures it was asked for. */
function observed(inner: Transport): { transport: Transport; seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    transport: {
      unary: (method, ...rest) => {
        seen.push(method.name);
        return inner.unary(method, ...rest);
      },
      stream: (...args) => inner.stream(...args),
    },
  };
}

describe("the gateway's batching transport", () => {
  const lean = () =>
    createConnectUnaryTransport({
      baseUrl: t.running.url,
      defaultTimeoutMs: 10_000,
      header: {},
      streams: createConnectTransport({ baseUrl: t.running.url, httpVersion: "2" }),
    });
  const batching = () => {
    const { transport, seen } = observed(lean());
    return { client: createClient(AuthorizationService, createBatchingTransport(transport, { defaultTimeoutMs: 10_000 })), seen };
  };

  it("sends the calls of one turn as one CallBatch, and gives each caller what the call alone gives", async () => {
    const tokens = await issueTokens(t);
    const alone = createClient(AuthorizationService, lean());
    const calls: Array<[string, Record<string, string>]> = [
      [tokens.accessToken, asResourceServer().headers],
      [tokens.refreshToken, asResourceServer().headers],
      ["garbage", asResourceServer().headers],
      [tokens.accessToken, basic("resource-server", "wrong").headers],
      [tokens.accessToken, basic("web", SECRETS.web).headers],
      [tokens.accessToken, basic("grace", SECRETS.grace).headers],
    ];
    const settle = (call: Promise<unknown>) => call.then((value) => ({ value }), (error: unknown) => ({ error: ConnectError.from(error) }));
    const { client, seen } = batching();
    const together = await Promise.all(calls.map(([token, headers]) => settle(client.introspect({ token }, { headers }))));
    expect(seen).toEqual(["CallBatch"]);
    const one = await Promise.all(calls.map(([token, headers]) => settle(alone.introspect({ token }, { headers }))));
    together.forEach((answer, i) => {
      const expected = one[i]!;
      if ("value" in expected) return expect(answer).toEqual(expected);
      expect("error" in answer).toBe(true);
      const error = (answer as { error: ConnectError }).error;
      expect(error.code).toBe(expected.error.code);
      expect(error.rawMessage).toBe(expected.error.rawMessage);
      expect(error.findDetails(OAuthErrorDetailSchema)).toEqual(expected.error.findDetails(OAuthErrorDetailSchema));
      expect(error.metadata.get("www-authenticate")).toBe(expected.error.metadata.get("www-authenticate"));
    });
    expect(together.filter((answer) => "error" in answer)).toHaveLength(1);
  });

  it("a call alone goes as itself, and more calls than a batch holds go in several", async () => {
    const { client, seen } = batching();
    expect((await client.introspect({ token: "garbage" }, asResourceServer())).active).toBe(false);
    expect(seen).toEqual(["Introspect"]);
    seen.length = 0;
    const answers = await Promise.all(Array.from({ length: MAX_BATCH_CALLS + 3 }, () => client.introspect({ token: "garbage" }, asResourceServer())));
    expect(answers.every((answer) => answer.active === false)).toBe(true);
    expect(seen).toEqual(["CallBatch", "CallBatch"]);
  });

  it("a cancelled call is answered Canceled at once; the others of its batch are answered", async () => {
    const { client, seen } = batching();
    const abort = new AbortController();
    const cancelled = failureOf(client.introspect({ token: "garbage" }, { ...asResourceServer(), signal: abort.signal }));
    const answered = client.introspect({ token: "garbage" }, asResourceServer());
    const another = client.introspect({ token: "garbage" }, asResourceServer());
    abort.abort();
    expect((await cancelled).code).toBe(Code.Canceled);
    expect((await answered).active).toBe(false);
    expect((await another).active).toBe(false);
    expect(seen).toEqual(["CallBatch"]);
  });
});

describe("the batching transport against other servers (connect's router, in memory)", () => {
  /** A small AuthorizationService: Introspect answers at once, or for the token "slow" never. */
  const introspection: Partial<ServiceImpl<typeof AuthorizationService>> = {
    introspect: (request, context) =>
      request.token === "slow"
        ? new Promise((_, reject) => context.signal.addEventListener("abort", () => reject(new ConnectError("gone", Code.Canceled))))
        : { active: true, sub: request.token },
  };

  it("an older authz service without BatchService gets the calls alone, then and for a while; after it, a batch is tried again", async () => {
    const { transport, seen } = observed(createRouterTransport(({ service }) => service(AuthorizationService, introspection)));
    const retryBatchesAfterMs = 200;
    const client = createClient(AuthorizationService, createBatchingTransport(transport, { defaultTimeoutMs: 10_000, retryBatchesAfterMs }));
    const started = Date.now();
    const answers = await Promise.all(["a", "b", "c"].map((token) => client.introspect({ token })));
    expect(answers.map((answer) => answer.sub)).toEqual(["a", "b", "c"]);
    expect(seen).toEqual(["CallBatch", "Introspect", "Introspect", "Introspect"]);
    seen.length = 0;
    const within = await Promise.all(["d", "e"].map((token) => client.introspect({ token })));
    // (Unless this machine took the whole while to get here: then a batch was tried, and is refused again.)
    if (Date.now() - started < retryBatchesAfterMs) expect(seen).toEqual(["Introspect", "Introspect"]);
    expect(within.map((answer) => answer.sub)).toEqual(["d", "e"]);
    await waitFor(async () => {
      seen.length = 0;
      await Promise.all(["f", "g"].map((token) => client.introspect({ token })));
      return seen[0] === "CallBatch";
    }, { budgetMs: 10_000, what: "a batch tried again once the while is over" });
    expect(seen).toEqual(["CallBatch", "Introspect", "Introspect"]);
  });

  it("each call keeps its own deadline: one that passes is deadline_exceeded, the batch's other call is answered", async () => {
    const services = [registration(AuthorizationService, introspection as ServiceImpl<typeof AuthorizationService>)];
    const batchService = createBatchService({ services, interceptors: [], contextValues: (peer) => createContextValues().set(kPeerAddress, peer), callerCheck: { serviceCredentials: () => [] } });
    const { transport, seen } = observed(
      createRouterTransport(({ service }) => {
        service(AuthorizationService, introspection);
        service(BatchService, batchService);
      }),
    );
    const client = createClient(AuthorizationService, createBatchingTransport(transport, { defaultTimeoutMs: 10_000 }));
    const [slow, fast] = await Promise.all([failureOf(client.introspect({ token: "slow" }, { timeoutMs: 100 })), client.introspect({ token: "fast" })]);
    expect(slow.code).toBe(Code.DeadlineExceeded);
    expect(fast.sub).toBe("fast");
    expect(seen).toEqual(["CallBatch"]);
  });
});

describe("through the gateway (gateway.authz.batchCalls, on by default)", () => {
  it("concurrent introspection requests get what each gets alone, and reached the authz service in batches", async () => {
    const procedures: string[] = [];
    const authzLog = pino({ level: "debug" }, { write: (chunk: string) => void procedures.push(String((JSON.parse(chunk) as { procedure?: string }).procedure)) });
    const stack = await startTestStack({ redisUrl: inject("redisUrl"), authzLog });
    try {
      const tokens = await issueTokens(stack.authz);
      const requests: Array<[string, string]> = [
        [tokens.accessToken, asResourceServer().headers.authorization!],
        [tokens.refreshToken, asResourceServer().headers.authorization!],
        ["garbage", asResourceServer().headers.authorization!],
        [tokens.accessToken, basic("resource-server", "wrong").headers.authorization!],
        [tokens.accessToken, basic("grace", SECRETS.grace).headers.authorization!],
      ];
      const introspect = async ([token, authorization]: [string, string]) => {
        const response = await fetch(`${stack.issuer}/oauth2/introspect`, {
          method: "POST",
          headers: { authorization, "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ token }),
        });
        return { status: response.status, body: await response.text(), authenticate: response.headers.get("www-authenticate") };
      };
      const alone = [];
      for (const request of requests) alone.push(await introspect(request));
      expect(alone.map((answer) => answer.status)).toEqual([200, 200, 200, 401, 200]);
      // Each request four times over, all at once, in rounds: from the second on, on the connections the
      // first opened, so that the gateway (in this process) reads several in one turn of its event loop.
      let batches = 0;
      for (let round = 1; round <= 10 && batches === 0; round++) {
        procedures.length = 0;
        const together = await Promise.all([...requests, ...requests, ...requests, ...requests].map(introspect));
        expect(together, `round ${round}`).toEqual([...alone, ...alone, ...alone, ...alone]);
        batches = procedures.filter((procedure) => procedure === "CallBatch").length;
      }
      expect(batches).toBeGreaterThan(0);
      // The gateway counts what it sent (gatehouse_gateway_authz_calls_total, _batches_total).
      const metrics = await stack.gateway.deps.metrics.registry.metrics();
      const batched = Number(/^gatehouse_gateway_authz_calls_total\{sent="batched"\} (\d+)$/m.exec(metrics)?.[1]);
      const sentBatches = Number(/^gatehouse_gateway_authz_batches_total (\d+)$/m.exec(metrics)?.[1]);
      expect(sentBatches).toBeGreaterThan(0);
      expect(batched).toBeGreaterThanOrEqual(2 * sentBatches);
    } finally {
      await stack.close();
    }
  });
});
