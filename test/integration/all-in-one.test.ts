import { randomBytes } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as oauth from "oauth4webapi";
import { pino } from "pino";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startAllInOne, type RunningAllInOne } from "../../all-in-one/app.js";
import { parseAllInOneConfig } from "../../all-in-one/config.js";
import { AuthorizationService } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { OAuthErrorDetailSchema } from "../../gen/gatehouse/v1/errors_pb.js";
import type { DepsOverrides } from "../../services/authz/deps.js";
import { ConfigError } from "../../startup/config-error.js";
import { baseConfigFile, basic, SECRETS, testEnvironment, WEB_REDIRECT } from "../support/authz.js";
import { startEchoUpstream, type EchoUpstream } from "../support/echo-upstream.js";
import { authorizeThroughGateway, signIn, UserAgent } from "../support/gateway-oauth-flow.js";
import { freePort } from "../support/redis-server.js";
import { gatewaySection } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";
import { readMetric } from "./guard-fixtures.js";

/**
 * The all-in-one process (all-in-one/app.ts): the gateway and the authz
 * service in one process, the gateway calling the service through the
 * in-process transport. oauth4webapi drives it over HTTP as any client would,
 * on a real Redis and on the memory store; the optional RPC port serves
 * internal services as the split authz service does.
 */
const insecure = { [oauth.allowInsecureRequests]: true } as const;

interface Started {
  app: RunningAllInOne;
  upstream: EchoUpstream;
  as: oauth.AuthorizationServer;
}

async function start(options: {
  redisUrl: string | undefined;
  serveRpc: boolean;
  inProcess?: "direct" | "router";
  patch?: (file: Record<string, any>) => void;
  authzOverrides?: DepsOverrides;
}): Promise<Started> {
  const upstream = await startEchoUpstream();
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const file = baseConfigFile() as Record<string, any>;
  file.issuer = issuer;
  file.requireHttps = false;
  // The gateway's endpoints are not used in one process; the section is the same as the split deployment's.
  file.gateway = gatewaySection("http://127.0.0.1:1", port);
  // Entries live 300 s: a revoked token refused sooner can only have been evicted by WatchRevocations.
  file.gateway.guard = { cacheTtlSeconds: 300 };
  file.routes = [{ name: "api", path: "/api/**", scopes: ["read"], upstream: upstream.url }];
  file.allInOne = { serveRpc: options.serveRpc, ...(options.inProcess === undefined ? {} : { inProcess: options.inProcess }) };
  options.patch?.(file);
  const config = parseAllInOneConfig(stringify(file), await testEnvironment(options.redisUrl));
  expect(config.inProcess).toBe(options.inProcess ?? "direct");
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const app = await startAllInOne({
    // Isolate this run's keys in the shared Redis.
    authz: { ...config.authz, keyPrefix: `test-${randomBytes(6).toString("hex")}:` },
    gateway: config.gateway,
    serveRpc: config.serveRpc,
    inProcess: config.inProcess,
    log: { authz: log, gateway: log },
    ...(options.authzOverrides === undefined ? {} : { authzOverrides: options.authzOverrides }),
  });
  const url = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, { algorithm: "oauth2", ...insecure }));
  return { app, upstream, as };
}

async function stop(started: Started | undefined): Promise<void> {
  await started?.app.close(1_000);
  await started?.upstream.close();
}

const metric = async (s: Started, name: string, labels: Record<string, string> = {}) =>
  readMetric(await (await fetch(`${s.app.url}/metrics`)).text(), name, labels);

describe.each([
  { store: "Redis", redis: true, serveRpc: true, inProcess: "direct" as const },
  { store: "memory", redis: false, serveRpc: false, inProcess: "direct" as const },
  // The other in-process transport (allInOne.inProcess: router) keeps every behaviour too.
  { store: "memory", redis: false, serveRpc: false, inProcess: "router" as const },
])("the all-in-one process on $store (RPC port served: $serveRpc; in process: $inProcess)", ({ redis, serveRpc, inProcess }) => {
  let s: Started;
  beforeAll(async () => {
    s = await start({ redisUrl: redis ? inject("redisUrl") : undefined, serveRpc, inProcess });
    await waitFor(async () => (await metric(s, "gatehouse_guard_revocation_feed_up")) === 1, {
      budgetMs: 5_000,
      what: "the guard's revocation feed subscribed in process",
    });
  });
  afterAll(() => stop(s));

  async function tokens(scope: string) {
    const client: oauth.Client = { client_id: "web" };
    const agent = new UserAgent(s.app.url);
    await signIn(agent);
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const { location } = await authorizeThroughGateway(agent, {
      response_type: "code",
      client_id: "web",
      redirect_uri: WEB_REDIRECT,
      scope,
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
    });
    const callback = oauth.validateAuthResponse(s.as, client, location, state);
    const response = await oauth.authorizationCodeGrantRequest(s.as, client, oauth.ClientSecretBasic(SECRETS.web), callback, WEB_REDIRECT, codeVerifier, insecure);
    return { client, callback, codeVerifier, tokens: await oauth.processAuthorizationCodeResponse(s.as, client, response) };
  }

  const introspect = async (token: string) => {
    const rs: oauth.Client = { client_id: "resource-server" };
    return oauth.processIntrospectionResponse(s.as, rs, await oauth.introspectionRequest(s.as, rs, oauth.ClientSecretBasic(SECRETS.resourceServer), token, insecure));
  };

  it("RFC 6749 §4.1 + RFC 7636, §6, RFC 7662: code flow, refresh with rotation and introspection, as oauth4webapi checks them", async () => {
    const { client, tokens: first } = await tokens("read");
    expect(first.token_type).toBe("bearer");
    expect(first.scope).toBe("read");
    const refreshed = await oauth.processRefreshTokenResponse(
      s.as,
      client,
      await oauth.refreshTokenGrantRequest(s.as, client, oauth.ClientSecretBasic(SECRETS.web), first.refresh_token!, insecure),
    );
    expect(refreshed.refresh_token).not.toBe(first.refresh_token);
    expect(await introspect(refreshed.access_token)).toMatchObject({ active: true, sub: "user-alice", client_id: "web", scope: "read", iss: s.app.url });
    // RFC 6749 §10.4: the rotated-out refresh token no longer works.
    const replay = oauth.processRefreshTokenResponse(
      s.as,
      client,
      await oauth.refreshTokenGrantRequest(s.as, client, oauth.ClientSecretBasic(SECRETS.web), first.refresh_token!, insecure),
    );
    await expect(replay).rejects.toMatchObject({ error: "invalid_grant", status: 400 });
  });

  it("RFC 7636 §4.6: an in-process error keeps its OAuthErrorDetail, so the gateway answers invalid_grant in the RFC's shape", async () => {
    const client: oauth.Client = { client_id: "web" };
    const agent = new UserAgent(s.app.url);
    await signIn(agent);
    const state = oauth.generateRandomState();
    const { location } = await authorizeThroughGateway(agent, {
      response_type: "code",
      client_id: "web",
      redirect_uri: WEB_REDIRECT,
      scope: "read",
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
      code_challenge_method: "S256",
    });
    const callback = oauth.validateAuthResponse(s.as, client, location, state);
    const response = await oauth.authorizationCodeGrantRequest(
      s.as,
      client,
      oauth.ClientSecretBasic(SECRETS.web),
      callback,
      WEB_REDIRECT,
      oauth.generateRandomCodeVerifier(),
      insecure,
    );
    await expect(oauth.processAuthorizationCodeResponse(s.as, client, response)).rejects.toMatchObject({ error: "invalid_grant", status: 400 });
  });

  it("RFC 6750 + RFC 7009: a guarded request passes with the token; once revoked, WatchRevocations (in process) evicts it from the guard's cache", async () => {
    const { client, tokens: issued } = await tokens("read");
    const guarded = () => fetch(`${s.app.url}/api/notes`, { headers: { authorization: `Bearer ${issued.access_token}` } });
    const ok = await guarded();
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    expect(s.upstream.last()?.headers["x-gatehouse-subject"]).toBe("user-alice");
    const before = await metric(s, "gatehouse_guard_revocations_total", { kind: "jti" });

    await oauth.processRevocationResponse(await oauth.revocationRequest(s.as, client, oauth.ClientSecretBasic(SECRETS.web), issued.access_token, insecure));
    await waitFor(async () => (await metric(s, "gatehouse_guard_revocations_total", { kind: "jti" })) > before, {
      budgetMs: 5_000,
      what: "the revocation to reach the guard over the in-process WatchRevocations stream",
    });
    const refused = await guarded();
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(await introspect(issued.access_token)).toEqual({ active: false });
  });

  if (serveRpc) {
    it("the optional RPC port serves internal services: Introspect as a resource server; gateway-only RPCs still need the service credential", async () => {
      const { tokens: issued } = await tokens("read");
      const rpc = createClient(AuthorizationService, createConnectTransport({ baseUrl: s.app.rpc!.url, httpVersion: "2" }));
      const result = await rpc.introspect({ token: issued.access_token }, basic("resource-server", SECRETS.resourceServer));
      expect(result).toMatchObject({ active: true, sub: "user-alice", clientId: "web" });
      const refused = await rpc
        .authorize({ responseType: "code", clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", state: "s" })
        .then(() => undefined, (error: unknown) => ConnectError.from(error));
      expect(refused?.code).toBe(Code.Unauthenticated);
      expect(refused?.findDetails(OAuthErrorDetailSchema)[0]?.error).toBe("unauthenticated_caller");
    });
  } else {
    it("allInOne.serveRpc: false serves no RPC port: the gateway's port is the only one", () => {
      expect(s.app.rpc).toBeUndefined();
    });
  }
});

describe("the all-in-one process's in-process calls", () => {
  it.each(["direct", "router"] as const)("%s: a call past the gateway's deadline is answered deadline_exceeded, as over the network", async (inProcess) => {
    // A failed login waits (attempts.delayPerFailureMs) on a sleep that here never ends: only the deadline answers.
    const s = await start({
      redisUrl: undefined,
      serveRpc: false,
      inProcess,
      patch: (file) => (file.attempts = { ...file.attempts, delayPerFailureMs: 250, maxDelayMs: 1_000 }),
      authzOverrides: { sleep: () => new Promise(() => {}) },
    });
    try {
      const { sessions } = s.app.gatewayDeps.authz;
      // The first failure waits nothing; the second would wait 250 ms.
      await expect(sessions.login({ username: "alice", password: "wrong" })).rejects.toMatchObject({ code: Code.Unauthenticated });
      await expect(sessions.login({ username: "alice", password: "wrong" }, { timeoutMs: 200 })).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    } finally {
      await stop(s);
    }
  });

  it("the gateway-only RPCs check the caller in process too: a call without the service credential is refused", async () => {
    const s = await start({ redisUrl: undefined, serveRpc: false });
    try {
      const authz = createClient(AuthorizationService, s.app.authz.inProcessTransport());
      const refused = await authz
        .authorize({ responseType: "code", clientId: "web", redirectUri: WEB_REDIRECT, scope: "read", state: "s" })
        .then(() => undefined, (error: unknown) => ConnectError.from(error));
      expect(refused?.code).toBe(Code.Unauthenticated);
      expect(refused?.findDetails(OAuthErrorDetailSchema)[0]?.error).toBe("unauthenticated_caller");
    } finally {
      await stop(s);
    }
  });

  it("a configuration whose gateway and authz service credentials differ is refused at start, with the path", async () => {
    const file = baseConfigFile() as Record<string, any>;
    file.gateway = gatewaySection("http://127.0.0.1:1", 8080);
    file.gateway.authz.serviceCredential = { env: "OTHER_CREDENTIAL" };
    file.allInOne = { inProcess: "carrier-pigeon" };
    const env = { ...(await testEnvironment()), OTHER_CREDENTIAL: "another-credential-0123456789abcdefghijklmnop" };
    let error: unknown;
    try {
      parseAllInOneConfig(stringify(file), env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^allInOne\.inProcess: /),
      "gateway.authz.serviceCredential: must be the same secret as (one of) authz.serviceCredential in the all-in-one process",
    ]);
  });
});
