import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { pino, type Logger } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { buildApp } from "../../gateway/app.js";
import { parseGatewayConfig } from "../../gateway/config.js";
import { createGatewayDeps } from "../../gateway/deps.js";
import {
  SECRETS,
  WEB_REDIRECT,
  baseConfigFile,
  basic,
  failureOf,
  issueTokens,
  obtainCode,
  pkcePair,
  startTestAuthz,
  testEnvironment,
  type TestAuthz,
} from "../support/authz.js";
import { UserAgent } from "../support/gateway-oauth-flow.js";
import { freePort, startRedisServer, type RedisServer } from "../support/redis-server.js";
import { scaledBudget } from "../support/scaled-budget.js";
import { gatewaySection, startTestStack, type TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

/** A logger whose JSON lines the test reads back. */
function capturedLog(): { log: Logger; warned(kind: string): Array<{ kind: string; count: number; msg: string }> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, { write: (chunk: string) => void lines.push(JSON.parse(chunk) as Record<string, unknown>) });
  return {
    log,
    warned: (kind) => lines.filter((line) => line.level === 40 && line.kind === kind) as Array<{ kind: string; count: number; msg: string }>,
  };
}

/**
 * A sleep that, once armed, lasts until the test opens the gate: a failed
 * login's delay (attempts.ts) then holds its call as long as the test needs.
 * Disarmed, it does not wait at all.
 */
function createGate() {
  let open!: () => void;
  let closed = new Promise<void>((resolve) => (open = resolve));
  let armed = false;
  return {
    sleep: () => (armed ? closed : Promise.resolve()),
    arm() {
      armed = true;
    },
    release() {
      armed = false;
      open();
      closed = new Promise<void>((resolve) => (open = resolve));
    },
  };
}

/** One sample of a Prometheus text exposition. */
async function sample(metricsUrl: string, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const escaped = labels.replace(/[{}]/g, "\\$&");
  const match = new RegExp(`^${name}${escaped} (\\S+)$`, "m").exec(text);
  if (match === null) throw new Error(`no ${name}${labels} in ${metricsUrl}`);
  return Number(match[1]);
}

const GATEWAY_KINDS = ["shed", "rpc_deadline"] as const;
const AUTHZ_KINDS = ["shed", "deadline", "redis_timeout"] as const;

function overloadPatch(limits: { gateway: object; authz: object }) {
  return (file: Record<string, unknown>) => {
    (file.authz as Record<string, unknown>).overload = limits.authz;
    if (file.gateway !== undefined) (file.gateway as Record<string, unknown>).overload = limits.gateway;
    // A failed login waits (attempts.ts) from the second failure of a username on: the gate's sleep.
    file.attempts = { windowSeconds: 60, maxFailuresPerUser: 3, maxFailuresPerAddress: 1_000, delayPerFailureMs: 1, maxDelayMs: 1 };
  };
}

function tokenRequest(stack: TestStack, fields: Record<string, string>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${stack.gateway.url}${stack.gateway.config.paths.token}`, {
    method: "POST",
    ...(signal === undefined ? {} : { signal }),
    headers: { "content-type": "application/x-www-form-urlencoded", ...basic("web", SECRETS.web).headers },
    body: new URLSearchParams(fields).toString(),
  });
}

describe("Overload: beyond the limits, requests are shed with 503, Retry-After and temporarily_unavailable, counted and logged", () => {
  const gate = createGate();
  const authzLog = capturedLog();
  const gatewayLog = capturedLog();
  let stack: TestStack;
  let usernames = 0;
  beforeAll(async () => {
    stack = await startTestStack({
      redisUrl: inject("redisUrl"),
      patch: (file) => {
        // Held calls must stay held until the gate opens: long deadlines, except where a test sets its own.
        overloadPatch({ gateway: { maxConcurrent: 1, maxQueue: 0 }, authz: { maxConcurrent: 1, maxQueue: 0, deadlineMarginMs: 2_000, defaultBudgetMs: 120_000 } })(file);
        const gateway = file.gateway as { authz: Record<string, unknown> } | undefined;
        if (gateway !== undefined) gateway.authz.timeoutMs = 30_000;
      },
      authzOverrides: { sleep: gate.sleep },
      authzLog: authzLog.log,
      gatewayLog: gatewayLog.log,
    });
  });
  afterAll(async () => {
    gate.release();
    await stack.close();
  });

  const gatewayMetrics = () => `${stack.gateway.url}${stack.gateway.config.paths.metrics}`;
  const authzMetrics = () => `${stack.authz.running.url}/metrics`;
  const inFlight = async () => [await sample(gatewayMetrics(), "gatehouse_gateway_requests_in_flight"), await sample(authzMetrics(), "gatehouse_authz_calls_in_flight")];
  const idle = () => waitFor(async () => (await inFlight()).every((n) => n === 0), { budgetMs: 5_000, what: "both processes to have no request in flight" });

  /** A second failed login of a fresh username: its delay (the gate, armed after the first) holds its slot. */
  async function holdLogin(via: "authz" | "gateway"): Promise<{ done: Promise<unknown> }> {
    const username = `held-${++usernames}`;
    await failureOf(stack.authz.sessions.login({ username, password: "wrong" }, stack.authz.asGateway));
    gate.arm();
    if (via === "authz") return { done: stack.authz.sessions.login({ username, password: "wrong" }, stack.authz.asGateway).catch((error: unknown) => error) };
    const agent = new UserAgent(stack.gateway.url);
    const page = await agent.get("/login");
    const html = await page.text();
    return { done: agent.submit(html, "/login", { username, password: "wrong" }) };
  }

  it("RFC 6749 §5.2: over the gateway's limit, token requests and pages get 503 + Retry-After + temporarily_unavailable at once, and one warn line per second says how many", async () => {
    const held = await holdLogin("gateway");
    await waitFor(async () => (await inFlight()).every((n) => n === 1), { budgetMs: 5_000, what: "the held login to occupy both processes' only slot" });

    const burst = await Promise.all(Array.from({ length: 40 }, () => tokenRequest(stack, { grant_type: "authorization_code", code: "whatever" })));
    for (const response of burst) {
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("1");
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(await response.json()).toMatchObject({ error: "temporarily_unavailable" });
    }
    const page = await fetch(`${stack.gateway.url}/login`);
    expect(page.status).toBe(503);
    expect(page.headers.get("retry-after")).toBe("1");
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);

    expect(await sample(gatewayMetrics(), "gatehouse_gateway_overload_total", '{kind="shed"}')).toBe(41);
    // Every shed is in the log's counts, in fewer lines than sheds (the remainder comes with the next second's line).
    await waitFor(() => gatewayLog.warned("shed").reduce((sum, line) => sum + line.count, 0) === 41, { budgetMs: 5_000, what: "the warn lines to account for all 41 sheds" });
    expect(gatewayLog.warned("shed").length).toBeLessThan(41);
    expect(gatewayLog.warned("shed")[0]!.msg).toMatch(/gateway\.overload/);

    gate.release();
    expect(((await held.done) as Response).status).toBe(401);
    await idle();
  });

  it("a call the gateway admits but the authz service sheds is answered 503 + Retry-After + temporarily_unavailable, and the authz service counts and logs it", async () => {
    const shedBefore = await sample(authzMetrics(), "gatehouse_authz_overload_total", '{kind="shed"}');
    const gatewayShedBefore = await sample(gatewayMetrics(), "gatehouse_gateway_overload_total", '{kind="shed"}');
    const held = await holdLogin("authz");
    await waitFor(async () => (await sample(authzMetrics(), "gatehouse_authz_calls_in_flight")) === 1, { budgetMs: 5_000, what: "the held login to occupy the authz service's only slot" });

    const response = await tokenRequest(stack, { grant_type: "authorization_code", code: "whatever" });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(await response.json()).toMatchObject({ error: "temporarily_unavailable" });

    // The RPC itself: Unavailable with the OAuth detail and a retry-after, on the service's own terms.
    const direct = await failureOf(stack.authz.authz.introspect({ token: "x" }, basic("resource-server", SECRETS.resourceServer)));
    expect(direct.code).toBe(Code.Unavailable);
    expect(direct.oauth?.error).toBe("temporarily_unavailable");
    expect(direct.oauth?.retryAfter).toBe(1n);
    expect(direct.metadata.get("retry-after")).toBe("1");

    expect(await sample(authzMetrics(), "gatehouse_authz_overload_total", '{kind="shed"}')).toBe(shedBefore + 2);
    expect(await sample(gatewayMetrics(), "gatehouse_gateway_overload_total", '{kind="shed"}')).toBe(gatewayShedBefore);
    await waitFor(() => authzLog.warned("shed").reduce((sum, line) => sum + line.count, 0) === shedBefore + 2, { budgetMs: 5_000, what: "the authz warn lines to account for every shed" });
    gate.release();
    await held.done;
    await idle();
  });

  it("a call whose budget runs out inside the authz service is answered temporarily_unavailable before the caller's own deadline, counted and logged", async () => {
    const username = `held-${++usernames}`;
    await failureOf(stack.authz.sessions.login({ username, password: "wrong" }, stack.authz.asGateway));
    gate.arm();
    // The caller's deadline travels as connect-timeout-ms; the service gives up deadlineMarginMs (a tenth of the deadline, at most 2 s here) before it.
    const failure = await failureOf(stack.authz.sessions.login({ username, password: "wrong" }, { ...stack.authz.asGateway, timeoutMs: 5_000 }));
    // The service's own answer, not the client's timeout: DeadlineExceeded with the detail the gateway turns into a 503 with Retry-After.
    expect(failure.code).toBe(Code.DeadlineExceeded);
    expect(failure.oauth?.error).toBe("temporarily_unavailable");
    expect(failure.oauth?.retryAfter).toBe(1n);
    expect(await sample(authzMetrics(), "gatehouse_authz_overload_total", '{kind="deadline"}')).toBe(1);
    await waitFor(() => authzLog.warned("deadline").reduce((sum, line) => sum + line.count, 0) === 1, { budgetMs: 5_000, what: "a warn line for the deadline" });
    // The handler still runs (it holds its slot) until it really ends.
    expect(await sample(authzMetrics(), "gatehouse_authz_calls_in_flight")).toBe(1);
    gate.release();
    await idle();
  });
});

describe("Overload: a request that leaves while it waits in the gateway's queue", () => {
  const gate = createGate();
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({
      redisUrl: inject("redisUrl"),
      patch: overloadPatch({ gateway: { maxConcurrent: 1, maxQueue: 4, queueTimeoutMs: 60_000 }, authz: { maxConcurrent: 8, maxQueue: 8, defaultBudgetMs: 120_000 } }),
      authzOverrides: { sleep: gate.sleep },
    });
  });
  afterAll(async () => {
    gate.release();
    await stack.close();
  });

  it("frees the slot it is handed once it gets one: the next request is served, and nothing stays in flight", async () => {
    const metrics = `${stack.gateway.url}${stack.gateway.config.paths.metrics}`;
    const gauge = (name: string) => sample(metrics, name);
    // The one slot: a second failed login, held by its delay until the gate opens.
    const agent = new UserAgent(stack.gateway.url);
    const html = await (await agent.get("/login")).text();
    expect((await agent.submit(html, "/login", { username: "leaver", password: "wrong" })).status).toBe(401);
    gate.arm();
    const held = agent.submit(html, "/login", { username: "leaver", password: "wrong" });
    await waitFor(async () => (await gauge("gatehouse_gateway_requests_in_flight")) === 1, { budgetMs: 5_000, what: "the held login to take the slot" });

    // A token request queues behind it, and its client gives up while it waits.
    const leaving = new AbortController();
    const left = tokenRequest(stack, { grant_type: "authorization_code", code: "whatever" }, leaving.signal).catch((error: unknown) => error);
    await waitFor(async () => (await gauge("gatehouse_gateway_requests_queued")) === 1, { budgetMs: 5_000, what: "the token request to queue" });
    leaving.abort();
    expect(await left).toBeInstanceOf(Error);

    gate.release();
    expect((await held).status).toBe(401);
    await waitFor(async () => (await gauge("gatehouse_gateway_requests_in_flight")) === 0 && (await gauge("gatehouse_gateway_requests_queued")) === 0, {
      budgetMs: 5_000,
      what: "the slot handed to the request that left to be freed",
    });
    const next = await tokenRequest(stack, { grant_type: "authorization_code", code: "whatever" });
    expect(next.status).toBe(400);
    expect(await next.json()).toMatchObject({ error: "invalid_grant" });
  });
});

describe("Overload: a burst of concurrent redemptions of one code or one refresh token", () => {
  const authzLog = capturedLog();
  const gatewayLog = capturedLog();
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({
      redisUrl: inject("redisUrl"),
      patch: overloadPatch({ gateway: { maxConcurrent: 4, maxQueue: 4 }, authz: { maxConcurrent: 2, maxQueue: 2 } }),
      authzLog: authzLog.log,
      gatewayLog: gatewayLog.log,
    });
  });
  afterAll(() => stack.close());

  /** Every shed or timed-out request either process counted. */
  async function counted(): Promise<number> {
    let sum = 0;
    for (const kind of GATEWAY_KINDS) sum += await sample(`${stack.gateway.url}/metrics`, "gatehouse_gateway_overload_total", `{kind="${kind}"}`);
    for (const kind of AUTHZ_KINDS) sum += await sample(`${stack.authz.running.url}/metrics`, "gatehouse_authz_overload_total", `{kind="${kind}"}`);
    return sum;
  }
  const logged = () => [...GATEWAY_KINDS.map((k) => gatewayLog.warned(k)), ...AUTHZ_KINDS.map((k) => authzLog.warned(k))].flat().reduce((sum, line) => sum + line.count, 0);

  async function burst(fields: Record<string, string>) {
    const before = await counted();
    const responses = await Promise.all(Array.from({ length: 100 }, () => tokenRequest(stack, fields)));
    const outcomes = await Promise.all(responses.map(async (r) => ({ status: r.status, retryAfter: r.headers.get("retry-after"), body: (await r.json()) as Record<string, unknown> })));
    expect(outcomes.filter((o) => o.status === 200)).toHaveLength(1);
    const unavailable = outcomes.filter((o) => o.status === 503);
    for (const o of outcomes) {
      if (o.status === 200) continue;
      if (o.status === 503) {
        expect(o.body.error).toBe("temporarily_unavailable");
        expect(o.retryAfter).toBe("1");
      } else {
        expect(o).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
      }
    }
    // Every 503 is one counted shed or timeout, and the warn lines account for each.
    expect((await counted()) - before).toBe(unavailable.length);
    await waitFor(async () => logged() === (await counted()), { budgetMs: 5_000, what: "the warn lines to account for every counted shed and timeout" });
  }

  it("RFC 6749 §4.1.2 / §10.5: exactly one redemption of a code wins; every other answer is invalid_grant or a counted, logged 503", async () => {
    const pkce = pkcePair();
    const { code } = await obtainCode(stack.authz, { clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: pkce.challenge });
    await burst({ grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: pkce.verifier });
  });

  it("RFC 9700 §4.14.2: exactly one rotation of a refresh token wins; every other answer is invalid_grant or a counted, logged 503", async () => {
    const token = await issueTokens(stack.authz);
    await burst({ grant_type: "refresh_token", refresh_token: token.refreshToken });
  });
});

describe("Overload: timeouts below the authz service", () => {
  it("an RPC that outlives the gateway's deadline is answered 503 + Retry-After + temporarily_unavailable, counted as rpc_deadline and logged", async () => {
    // An "authz service" that accepts connections and never answers.
    const sockets = new Set<Socket>();
    const hole = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => hole.listen(0, "127.0.0.1", resolve));
    const port = await freePort();
    const file = baseConfigFile();
    file.issuer = `http://127.0.0.1:${port}`;
    file.requireHttps = false;
    file.gateway = gatewaySection(`http://127.0.0.1:${(hole.address() as AddressInfo).port}`, port);
    (file.gateway as { authz: Record<string, unknown> }).authz.timeoutMs = 300;
    const gatewayLog = capturedLog();
    const deps = createGatewayDeps(parseGatewayConfig(stringify(file), await testEnvironment()), gatewayLog.log);
    const app = await buildApp(deps);
    await app.listen({ host: "127.0.0.1", port });
    try {
      const response = await fetch(`http://127.0.0.1:${port}/oauth2/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...basic("web", SECRETS.web).headers },
        body: "grant_type=authorization_code&code=whatever",
      });
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("1");
      expect(await response.json()).toMatchObject({ error: "temporarily_unavailable" });
      expect(await sample(`http://127.0.0.1:${port}/metrics`, "gatehouse_gateway_overload_total", '{kind="rpc_deadline"}')).toBeGreaterThanOrEqual(1);
      await waitFor(() => gatewayLog.warned("rpc_deadline").some((line) => line.count >= 1 && /gateway\.authz\.timeoutMs/.test(line.msg)), {
        budgetMs: 5_000,
        what: "a warn line for the RPC deadline",
      });
    } finally {
      await app.close();
      for (const socket of sockets) socket.destroy();
      hole.close();
    }
  });

  describe("a Redis that stops answering", () => {
    // Short, but long enough that a busy machine's ordinary commands do not time out.
    const COMMAND_TIMEOUT_MS = Math.min(scaledBudget(250), 2_000);
    let redis: RedisServer;
    let t: TestAuthz;
    const authzLog = capturedLog();
    beforeAll(async () => {
      // A Redis of this test's own, to pause.
      redis = await startRedisServer();
      t = await startTestAuthz({
        redisUrl: redis.url,
        log: authzLog.log,
        patch: (file) => void ((file.authz as Record<string, unknown>).overload = { redisCommandTimeoutMs: COMMAND_TIMEOUT_MS, defaultBudgetMs: 4 * COMMAND_TIMEOUT_MS }),
      });
    });
    afterAll(async () => {
      await t.close();
      await redis.stop();
    });

    it("a Redis command timeout is answered temporarily_unavailable, counted as redis_timeout and logged", async () => {
      const tokens = await issueTokens(t);
      const admin = new Redis(redis.url);
      try {
        // Every client's commands wait until the pause ends; the authz service's time out first.
        await admin.call("CLIENT", "PAUSE", String(3 * COMMAND_TIMEOUT_MS), "ALL");
        const failure = await failureOf(t.authz.introspect({ token: tokens.accessToken }, basic("resource-server", SECRETS.resourceServer)));
        expect(failure.code).toBe(Code.Unavailable);
        expect(failure.oauth?.error).toBe("temporarily_unavailable");
        expect(await sample(`${t.running.url}/metrics`, "gatehouse_authz_overload_total", '{kind="redis_timeout"}')).toBeGreaterThanOrEqual(1);
        await waitFor(() => authzLog.warned("redis_timeout").some((line) => line.count >= 1), { budgetMs: 5_000, what: "a warn line for the Redis timeout" });
        // And it recovers by itself when Redis answers again.
        await waitFor(async () => (await t.authz.introspect({ token: tokens.accessToken }, basic("resource-server", SECRETS.resourceServer))).active, {
          budgetMs: 10_000,
          what: "introspection to work again after the pause",
        });
      } finally {
        admin.disconnect();
      }
    });
  });
});
