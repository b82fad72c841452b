import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { SERVICE_CREDENTIAL_HEADER } from "../../contract/metadata.js";
import { buildApp } from "../../gateway/app.js";
import { parseGatewayConfig, type GatewayConfig } from "../../gateway/config.js";
import { createGatewayDeps, type GatewayDeps } from "../../gateway/deps.js";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { startAuthzService, type RunningAuthz } from "../../services/authz/app.js";
import { parseAuthzConfig } from "../../services/authz/config.js";
import { baseConfigFile, obtainCode, pkcePair, SECRETS, testEnvironment, WEB_REDIRECT } from "../support/authz.js";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { freePort } from "../support/redis-server.js";
import { gatewaySection } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

/**
 * OpenTelemetry tracing end to end: a real gateway and a real authz service
 * (on Redis) export over OTLP/HTTP to a real OTLP endpoint, a small HTTP
 * server here that keeps what it receives. The collector is the protocol's
 * other side, not a stand-in for gatehouse code.
 */

interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  scope: string;
  service: string;
  attributes: Record<string, unknown>;
}

/** OTLP/JSON ids are hex; an exporter that sends the protobuf-JSON mapping would send base64. */
function hexId(id: string | undefined): string {
  if (id === undefined || id === "") return "";
  return /^[0-9a-f]+$/.test(id) && (id.length === 32 || id.length === 16) ? id : Buffer.from(id, "base64").toString("hex");
}

/** A minimal OTLP/HTTP traces endpoint (JSON encoding, gzip or not): it answers 200 and keeps every span. */
async function startCollector(): Promise<{ url: string; spans: ExportedSpan[]; exports: () => number; close(): Promise<void> }> {
  const spans: ExportedSpan[] = [];
  let exports = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      let body = Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
      if (req.method !== "POST" || req.url !== "/v1/traces" || !String(req.headers["content-type"]).startsWith("application/json")) {
        res.writeHead(415).end();
        return;
      }
      exports++;
      const request = JSON.parse(body.toString("utf8")) as {
        resourceSpans: Array<{
          resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ scope: { name: string }; spans: Array<Record<string, unknown>> }>;
        }>;
      };
      for (const resourceSpans of request.resourceSpans) {
        const service = resourceSpans.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
        for (const scopeSpans of resourceSpans.scopeSpans) {
          for (const span of scopeSpans.spans) {
            const attributes: Record<string, unknown> = {};
            for (const a of (span.attributes ?? []) as Array<{ key: string; value: Record<string, unknown> }>) attributes[a.key] = Object.values(a.value)[0];
            spans.push({
              traceId: hexId(span.traceId as string),
              spanId: hexId(span.spanId as string),
              parentSpanId: hexId(span.parentSpanId as string | undefined),
              name: span.name as string,
              kind: span.kind as number,
              scope: scopeSpans.scope.name,
              service,
              attributes,
            });
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, exports: () => exports, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Every line a pino logger writes, parsed. */
function captureLog(): { lines: Array<Record<string, unknown>>; stream: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

interface Stack {
  authz: RunningAuthz;
  gatewayDeps: GatewayDeps;
  gatewayConfig: GatewayConfig;
  app: FastifyInstance;
  url: string;
  authzLog: Array<Record<string, unknown>>;
  gatewayLog: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A gateway and an authz service as in production, from one configuration file and an environment with or without OTEL_*. */
async function startStack(redisUrl: string, upstream: string, otel: Record<string, string>, paths: RpcPaths = LEAN): Promise<Stack> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const file = baseConfigFile();
  file.issuer = issuer;
  file.requireHttps = false;
  file.routes = [{ name: "files", path: "/files/**", scopes: ["read"], upstream }];
  const env = { ...(await testEnvironment(redisUrl)), ...otel };
  (file.authz as Record<string, unknown>).rpc = { fastPath: paths.fastPath };
  const authzConfig = { ...parseAuthzConfig(stringify(file), env), keyPrefix: `test-${randomBytes(6).toString("hex")}:` };
  const authzLog = captureLog();
  const authz = await startAuthzService(authzConfig, pino({ level: "debug" }, authzLog.stream));
  file.gateway = gatewaySection(authz.url, port);
  ((file.gateway as Record<string, unknown>).authz as Record<string, unknown>).transport = paths.transport;
  // The check endpoint answers trusted proxies only: the tests call it as the proxy would, from loopback.
  (file.gateway as Record<string, unknown>).trustedProxies = ["127.0.0.1"];
  const gatewayConfig = parseGatewayConfig(stringify(file), env);
  const gatewayLog = captureLog();
  const gatewayDeps = createGatewayDeps(gatewayConfig, pino({ level: "debug" }, gatewayLog.stream));
  const app = await buildApp(gatewayDeps);
  await app.listen({ host: "127.0.0.1", port });
  return {
    authz,
    gatewayDeps,
    gatewayConfig,
    app,
    url: issuer,
    authzLog: authzLog.lines,
    gatewayLog: gatewayLog.lines,
    async close() {
      await app.close();
      await authz.close(1_000);
    },
  };
}

/** Which RPC paths carry the trace: the gateway's transport and the authz service's server path. */
interface RpcPaths {
  readonly transport: "lean" | "connect";
  readonly fastPath: boolean;
}
const LEAN: RpcPaths = { transport: "lean", fastPath: true };
const CONNECT: RpcPaths = { transport: "connect", fastPath: false };

/** A W3C traceparent as a browser-side tracer would send it (sampled). */
function clientTraceparent(): { traceId: string; spanId: string; header: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

/** A code for the web client, minted over RPC; then one token request to the gateway with the given traceparent. */
async function tokenRequest(stack: Stack, traceparent: string): Promise<Response> {
  const transport = createConnectTransport({ baseUrl: stack.authz.url, httpVersion: "2" });
  const client = { authz: createClient(AuthorizationService, transport), asGateway: { headers: { [SERVICE_CREDENTIAL_HEADER]: SECRETS.service } } };
  const pkce = pkcePair();
  const { code } = await obtainCode(client, { clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", codeChallenge: pkce.challenge });
  return fetch(`${stack.url}/oauth2/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`web:${SECRETS.web}`).toString("base64")}`,
      traceparent,
      tracestate: "vendor=opaque",
    },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: WEB_REDIRECT, code_verifier: pkce.verifier }).toString(),
  });
}

/**
 * A line written through fastify's request logger (request.log) for a request
 * with `traceparent`: a probe route added to a gateway built from the stack's
 * configuration, served by inject (no socket needed for the logger's wiring).
 */
async function requestLogLine(config: GatewayConfig, traceparent: string): Promise<{ line: Record<string, unknown> | undefined; deps: GatewayDeps }> {
  const log = captureLog();
  const deps = createGatewayDeps(config, pino({ level: "info" }, log.stream));
  const app = await buildApp(deps);
  app.get("/log-probe", async (request) => {
    request.log.info("probe");
    return {};
  });
  try {
    const response = await app.inject({ method: "GET", url: "/log-probe", headers: { traceparent } });
    expect(response.statusCode).toBe(200);
    await deps.tracing.flush();
    return { line: log.lines.find((l) => l.msg === "probe"), deps };
  } finally {
    await app.close();
  }
}

const SERVER = 2;
const CLIENT = 3;
const EXCHANGE = "gatehouse.v1.AuthorizationService/ExchangeCode";

let collector: Awaited<ReturnType<typeof startCollector>>;
let upstream: EchoUpstream;

beforeAll(async () => {
  collector = await startCollector();
  upstream = await startEchoUpstream();
});
afterAll(async () => {
  await upstream.close();
  await collector.close();
});

describe.each([
  ["the lean transport and the fast path", LEAN],
  ["connect-es's transport and connect-node's adapter", CONNECT],
])("tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set), over %s", (_name, paths) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(inject("redisUrl"), upstream.url, { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: "gatehouse-test" }, paths);
  });
  afterAll(() => stack.close());

  /** The spans of one trace, once both processes have exported them. */
  const traceOf = async (traceId: string, expected: number) => {
    await stack.gatewayDeps.tracing.flush();
    await stack.authz.deps.tracing.flush();
    return waitFor(
      () => {
        const spans = collector.spans.filter((s) => s.traceId === traceId);
        return spans.length >= expected ? spans : undefined;
      },
      { budgetMs: 5_000, what: `${expected} spans of trace ${traceId} at the collector` },
    );
  };

  it("W3C Trace Context: one token request is one trace, gateway → RPC → authz → store, continuing the caller's traceparent, exported over OTLP/HTTP", async () => {
    expect(stack.gatewayDeps.tracing.enabled).toBe(true);
    expect(stack.gatewayDeps.config.authz.transport).toBe(paths.transport);
    expect(stack.authz.deps.config.rpc.fastPath).toBe(paths.fastPath);
    const caller = clientTraceparent();
    const response = await tokenRequest(stack, caller.header);
    expect(response.status).toBe(200);

    const spans = await traceOf(caller.traceId, 7);
    const one = (name: string, kind?: number) => {
      const found = spans.filter((s) => s.name === name && (kind === undefined || s.kind === kind));
      expect(found, `one span named ${name}`).toHaveLength(1);
      return found[0]!;
    };
    const server = one("POST /oauth2/token", SERVER);
    const rpcClient = one(EXCHANGE, CLIENT);
    const rpcServer = one(EXCHANGE, SERVER);
    const clientAuth = one("oauth.client_authentication");
    const redemption = one("oauth.code_redemption");
    const redeem = one("store.codes.redeem");
    const sign = one("oauth.sign");

    // The caller's span is the gateway's parent: its trace is continued, not restarted.
    expect(server.parentSpanId).toBe(caller.spanId);
    expect(server).toMatchObject({ scope: "gatehouse-gateway", service: "gatehouse-test" });
    expect(server.attributes["http.response.status_code"]).toBe(200);
    expect(rpcClient.parentSpanId).toBe(server.spanId);
    // The traceparent crossed the RPC: the authz service's span is the gateway's client span's child.
    expect(rpcServer.parentSpanId).toBe(rpcClient.spanId);
    expect(rpcServer.scope).toBe("gatehouse-authz");
    expect(clientAuth.parentSpanId).toBe(rpcServer.spanId);
    expect(redemption.parentSpanId).toBe(rpcServer.spanId);
    expect(redeem.parentSpanId).toBe(redemption.spanId);
    expect(redeem.attributes["db.system.name"]).toBe("redis");
    expect(sign.parentSpanId).toBe(redemption.spanId);
  });

  it("every log line of a call carries its trace id and span id (the authz service's call log, the gateway's guard log)", async () => {
    const caller = clientTraceparent();
    expect((await tokenRequest(stack, caller.header)).status).toBe(200);
    const spans = await traceOf(caller.traceId, 7);
    const rpcServer = spans.find((s) => s.name === EXCHANGE && s.kind === SERVER)!;
    const line = stack.authzLog.find((l) => l.trace_id === caller.traceId && l.procedure === "ExchangeCode");
    expect(line, "the authz service's line for the call").toBeDefined();
    expect(line!.span_id).toBe(rpcServer.spanId);

    // A guarded request refused for want of a token: the guard's line and the span of the request share the ids.
    const guarded = clientTraceparent();
    const refused = await fetch(`${stack.url}/files/a`, { headers: { traceparent: guarded.header } });
    expect(refused.status).toBe(401);
    const [guardSpan] = await traceOf(guarded.traceId, 1);
    expect(guardSpan!.parentSpanId).toBe(guarded.spanId);
    const guardLine = stack.gatewayLog.find((l) => l.msg === "guard: refused" && l.trace_id === guarded.traceId);
    expect(guardLine, "the guard's line").toBeDefined();
    expect(guardLine!.span_id).toBe(guardSpan!.spanId);
  });

  it("a line written with fastify's request logger carries the request's trace id and the gateway's span id", async () => {
    const caller = clientTraceparent();
    const { line } = await requestLogLine(stack.gatewayConfig, caller.header);
    expect(line).toMatchObject({ trace_id: caller.traceId });
    const [span] = await waitFor(
      () => {
        const spans = collector.spans.filter((s) => s.traceId === caller.traceId);
        return spans.length > 0 ? spans : undefined;
      },
      { budgetMs: 5_000, what: "the probe request's span" },
    );
    expect(span).toMatchObject({ name: "GET /log-probe", parentSpanId: caller.spanId, spanId: line!.span_id });
  });

  it("a guarded request: the introspection is a span under guard.authenticate (a cache miss, then a hit), and the upstream continues the gateway's span", async () => {
    const caller = clientTraceparent();
    const token = (await (await tokenRequest(stack, caller.header)).json()) as { access_token: string };
    const authorization = `Bearer ${token.access_token}`;
    const first = clientTraceparent();
    expect((await fetch(`${stack.url}/files/a`, { headers: { authorization, traceparent: first.header } })).status).toBe(200);
    const spans = await traceOf(first.traceId, 4);
    const server = spans.find((s) => s.kind === SERVER && s.scope === "gatehouse-gateway")!;
    const authenticate = spans.find((s) => s.name === "guard.authenticate")!;
    expect(authenticate.attributes["gatehouse.cache"]).toBe("miss");
    expect(authenticate.parentSpanId).toBe(server.spanId);
    const introspect = spans.find((s) => s.name === "gatehouse.v1.AuthorizationService/Introspect" && s.kind === CLIENT)!;
    expect(introspect.parentSpanId).toBe(authenticate.spanId);
    expect(upstream.last()!.headers.traceparent).toBe(`00-${first.traceId}-${server.spanId}-01`);

    const second = clientTraceparent();
    expect((await fetch(`${stack.url}/files/a`, { headers: { authorization, traceparent: second.header } })).status).toBe(200);
    const cached = await traceOf(second.traceId, 2);
    expect(cached.find((s) => s.name === "guard.authenticate")!.attributes["gatehouse.cache"]).toBe("hit");
    expect(cached.some((s) => s.name.endsWith("/Introspect"))).toBe(false);
  });

  it("the check endpoint (nginx auth_request): the decision joins the check request's trace, guard.authenticate and Introspect under its span, and the pipeline's log lines carry its ids", async () => {
    const caller = clientTraceparent();
    const token = (await (await tokenRequest(stack, caller.header)).json()) as { access_token: string };
    const check = clientTraceparent();
    const checkPath = stack.gatewayConfig.paths.check;
    const allowed = await fetch(`${stack.url}${checkPath}`, {
      headers: { authorization: `Bearer ${token.access_token}`, "x-original-method": "GET", "x-original-uri": "/files/b", traceparent: check.header },
    });
    expect(allowed.status).toBe(200);
    const spans = await traceOf(check.traceId, 4);
    const server = spans.find((s) => s.kind === SERVER && s.scope === "gatehouse-gateway")!;
    expect(server.parentSpanId).toBe(check.spanId);
    const authenticate = spans.find((s) => s.name === "guard.authenticate")!;
    expect(authenticate.attributes["gatehouse.cache"]).toBe("miss");
    expect(authenticate.parentSpanId).toBe(server.spanId);
    expect(spans.find((s) => s.name === "gatehouse.v1.AuthorizationService/Introspect" && s.kind === CLIENT)!.parentSpanId).toBe(authenticate.spanId);

    const refused = clientTraceparent();
    const response = await fetch(`${stack.url}${checkPath}`, { headers: { "x-original-method": "GET", "x-original-uri": "/files/b", traceparent: refused.header } });
    expect(response.status).toBe(401);
    const line = await waitFor(() => stack.gatewayLog.find((l) => l.msg === "guard: refused" && l.trace_id === refused.traceId), {
      budgetMs: 5_000,
      what: "the pipeline's refusal line with the check request's trace id",
    });
    expect(line.span_id).toMatch(/^[0-9a-f]{16}$/);
    expect(line.span_id).not.toBe(refused.spanId);
  });
});

describe("tracing off (no OTEL_* endpoint)", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(inject("redisUrl"), upstream.url, {});
  });
  afterAll(() => stack.close());

  it("no span is made or exported; the caller's traceparent still reaches the logs and a guarded route's upstream as sent", async () => {
    expect(stack.gatewayDeps.tracing.enabled).toBe(false);
    expect(stack.authz.deps.tracing.enabled).toBe(false);
    const caller = clientTraceparent();
    const exportsBefore = collector.exports();
    const refused = await fetch(`${stack.url}/files/a`, { headers: { traceparent: caller.header } });
    expect(refused.status).toBe(401);
    const guardLine = stack.gatewayLog.find((l) => l.msg === "guard: refused" && l.trace_id === caller.traceId);
    expect(guardLine, "the guard's line carries the caller's ids").toMatchObject({ trace_id: caller.traceId, span_id: caller.spanId });

    const token = (await (await tokenRequest(stack, caller.header)).json()) as { access_token: string };
    // The authz service logs the caller's ids only when they reach it: tracing off, the gateway does not forward them over RPC (request-tracing.ts).
    expect((await fetch(`${stack.url}/files/a`, { headers: { authorization: `Bearer ${token.access_token}`, traceparent: caller.header } })).status).toBe(200);
    expect(upstream.last()!.headers.traceparent).toBe(caller.header);

    await stack.gatewayDeps.tracing.flush();
    await stack.authz.deps.tracing.flush();
    expect(collector.exports()).toBe(exportsBefore);
    expect(collector.spans.filter((s) => s.traceId === caller.traceId)).toEqual([]);
  });

  it("a line written with fastify's request logger carries the caller's trace id and span id as sent", async () => {
    const caller = clientTraceparent();
    const { line } = await requestLogLine(stack.gatewayConfig, caller.header);
    expect(line).toMatchObject({ trace_id: caller.traceId, span_id: caller.spanId });
  });
});
