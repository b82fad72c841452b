/**
 * npm run bench:token — the token endpoint end to end: HTTP/1.1 form posts
 * to the gateway's /oauth2/token, which calls the authz service over
 * Connect (HTTP/2), which uses Redis. Two phases, each `BENCH_SECONDS` long:
 *
 *   authorization_code   each request redeems one code minted beforehand
 *                        (Authorize + Decide over RPC), with PKCE and Basic auth
 *   authorization_code + openid   the same for OpenID Connect codes (scope
 *                        "read openid", with a nonce): the response carries an
 *                        ID Token signed beside the access token; printed with
 *                        its ratio to the plain exchange of the same run
 *   refresh_token        each connection rotates its own refresh family, chained
 *   client_credentials   (RFC 6749 §4.4) the client `svc` with client_secret_basic
 *   client_credentials   the client `svc-jwt` with private_key_jwt (RFC 7523): each request
 *     (private_key_jwt)  carries its own assertion, signed beforehand (a jti is single use)
 *   token exchange       (RFC 8693) `web` trades a user's access token for one addressed to
 *                        a downstream service
 *
 * The code exchange is the same-run baseline: the client_credentials phases
 * print their rate as a multiple of it (issue 14 asks ≥ 1.5× with a secret).
 * A short smoke: BENCH_SECONDS=1 BENCH_MODES=split BENCH_OVERLOAD=0.
 *
 * Both modes run, one after the other, and print side by side: the authz
 * service and the gateway each in their own process ("split"), and the two in
 * one process ("all-in-one", all-in-one/main.ts), all from the production
 * build (`npm run build`: dist/, plain node); the load generator
 * (autocannon, in this process) and a Redis it starts unless REDIS_URL is set
 * share the machine. Everything is on loopback. Prints req/s, p50/p99, the
 * CPU each process used (in all and per request), the Redis commands per
 * request (INFO commandstats before and after each phase), and the foreign
 * load beside each figure.
 *
 *   BENCH_SECONDS (default 5)        duration of each measured phase
 *   BENCH_CONNECTIONS (default 64)   HTTP/1.1 keep-alive connections to the gateway
 *   REDIS_URL                        a Redis to use; default: a redis-server started here
 *   BENCH_MODES (default split,all-in-one)  which deployments to run
 *   BENCH_PROFILE=dir                write CPU profiles of the gateway and the authz service to dir
 *   BENCH_TRACING=1                  OpenTelemetry tracing on in both processes, every request
 *                                    sampled and exported over OTLP/HTTP to a sink in this process
 *                                    (bench/lib/otlp-sink.ts); compare with a run without it:
 *                                    tracing off must cost nothing measurable, on is what it costs
 *   BENCH_OVERLOAD=0                 skip the overload report
 *   BENCH_TENANTS=n                  also run each mode with n named tenants configured (issue 11),
 *                                    requests spread round-robin over their token endpoints
 *                                    (/t{i}/oauth2/token), printed beside the single-tenant figures
 *                                    of the same run (the overload report runs single-tenant only)
 *   BENCH_INSTRUCTIONS=n             count instructions instead of time (lib/callgrind.ts): every
 *                                    gatehouse process runs under valgrind's callgrind, and the code
 *                                    exchange, the refresh and introspection (RFC 7662, of live access
 *                                    tokens) each get 5n requests to warm up, then
 *                                    n counted, over 8 connections (BENCH_CONNECTIONS); prints
 *                                    instructions per request per process, and with BENCH_TENANTS
 *                                    their ratios, tenants ÷ single: the same figures whatever else
 *                                    the machine is doing. BENCH_ROUNDS (default 1) repeats it.
 *
 * The overload report (README, "Overload"), for each mode: saturation is measured in the
 * run, as the rate where authorization_code throughput stops growing (short
 * closed-loop probes at 4, 8, 16, ... connections; the first that adds less
 * than 10 % over half as many); then one phase each offers 1×, 2× and 5× that
 * rate, open loop (autocannon's overallRate over up to 1,024 connections, so
 * that the queue builds in the server, not in the load generator), and prints
 * the rate offered and sent, req/s served, the share answered 503 with
 * temporarily_unavailable (shed by either process, or timed out), any other
 * errors, and p50/p99 over all answers. More connections in a closed loop
 * would not overload anything: each waits for its answer before it asks again.
 */
import { startRedisServer } from "../test/support/redis-server.js";
import { createPkcePair } from "./lib/contender.js";
import { startGatehouseTwoProcess, type GatehouseMode, type GatehouseTwoProcess } from "./lib/gatehouse-two-process.js";
import { acceptActiveIntrospection, formatResults, formatTable, runHttpLoad, type HttpLoadOptions, type LoadResult } from "./lib/load.js";
import { createRedisStats, formatRedisPerRequest, measureRedis, type RedisStats } from "./lib/redis-stats.js";
import { SignJWT } from "jose";
import { BENCH_DOWNSTREAM, BENCH_REDIRECT_URI, benchTenantCount, createBenchSecrets } from "./lib/stack-config.js";
import { startOtlpSink, type OtlpSink } from "./lib/otlp-sink.js";
import { countedRequests, countIdle, countPhase, createCallgrind, formatCountedPhases, WARM_UP_REQUESTS, type Callgrind, type CountedPhase } from "./lib/callgrind.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
/** Requests per counted phase (BENCH_INSTRUCTIONS), or undefined: timed phases. */
const countedCount = countedRequests(process.env.BENCH_INSTRUCTIONS);
const connections = Number(process.env.BENCH_CONNECTIONS ?? (countedCount === undefined ? 64 : 8));
const modes = (process.env.BENCH_MODES ?? "split,all-in-one").split(",").map((mode) => mode.trim()) as GatehouseMode[];

const redirectUri = BENCH_REDIRECT_URI;

async function main(): Promise<void> {
  const ownRedis = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? ownRedis!.url;
  const secrets = await createBenchSecrets();
  const basicAuth = `Basic ${Buffer.from(`web:${secrets.web}`).toString("base64")}`;
  const headers = { "content-type": "application/x-www-form-urlencoded", authorization: basicAuth };
  const { codeVerifier, codeChallenge } = createPkcePair();
  const results: LoadResult[] = [];
  try {
    const tenantCount = benchTenantCount();
    if (countedCount !== undefined) {
      const callgrind = createCallgrind();
      const counted: CountedPhase[] = [];
      for (let round = 1; round <= Number(process.env.BENCH_ROUNDS ?? 1); round++) {
        for (const mode of modes) {
          for (const tenants of tenantCount === 0 ? [0] : [0, tenantCount]) {
            counted.push(...(await countMode(callgrind, mode, countedCount, { redisUrl, secrets, headers, codeVerifier, codeChallenge, tenants })));
          }
        }
      }
      process.stdout.write(`\n${formatCountedPhases(counted, tenantCount)}\n`);
      return;
    }
    for (const mode of modes) {
      results.push(...(await runMode(mode, { redisUrl, ownRedisPid: ownRedis?.pid, secrets, headers, codeVerifier, codeChallenge, tenants: 0 })));
      if (tenantCount > 0) results.push(...(await runMode(mode, { redisUrl, ownRedisPid: ownRedis?.pid, secrets, headers, codeVerifier, codeChallenge, tenants: tenantCount })));
    }
    process.stdout.write(`\n${formatResults(results)}\n`);
  } finally {
    await ownRedis?.stop();
  }
}

/** Both token phases against gatehouse deployed in `mode`; results named after the mode. */
async function runMode(
  deployment: GatehouseMode,
  {
    redisUrl,
    ownRedisPid,
    secrets,
    headers,
    codeVerifier,
    codeChallenge,
    tenants,
  }: {
    tenants: number;
    redisUrl: string;
    ownRedisPid: number | undefined;
    secrets: Awaited<ReturnType<typeof createBenchSecrets>>;
    headers: Record<string, string>;
    codeVerifier: string;
    codeChallenge: string;
  },
): Promise<LoadResult[]> {
  const mode = tenants === 0 ? deployment : `${deployment} ${tenants} tenants`;
  let stack: GatehouseTwoProcess | undefined;
  let stats: RedisStats | undefined;
  const sink: OtlpSink | undefined = process.env.BENCH_TRACING === "1" ? await startOtlpSink() : undefined;
  try {
    stack = await startGatehouseTwoProcess(
      {
        redisUrl,
        secrets,
        redirectUri,
        codeVerifier,
        codeChallenge,
        codeLifetimeSeconds: 600,
        ...(process.env.BENCH_PROFILE === undefined ? {} : { profileDir: process.env.BENCH_PROFILE }),
      },
      { name: `token-${deployment}${tenants === 0 ? "" : `-${tenants}-tenants`}`, mode: deployment, tenants, ...(sink === undefined ? {} : { env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: "parentbased_always_on" } }) },
    );
    const gateway = stack;
    const redis = (stats = createRedisStats(redisUrl));
    const exchangeBody = (code: string) =>
      new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: codeVerifier }).toString();
    const exchangeOnce = (code: string, tokenPath?: string) => redeemCode(gateway.gatewayUrl, headers, exchangeBody(code), tokenPath);

    const pids: Record<string, number | undefined> = { ...gateway.processes, redis: ownRedisPid, "load generator": process.pid };
    log(`${mode}: ${Object.entries(gateway.processes).map(([name, pid]) => `${name} pid ${pid}`).join(", ")}; gateway on :${gateway.gatewayPort}, RPC on :${gateway.authzPort}, Redis ${redisUrl}`);
    log(`${connections} HTTP/1.1 connections, ${seconds} s per phase`);
    log(sink === undefined ? "tracing off (BENCH_TRACING=1 turns it on)" : `tracing on: every request sampled, exported over OTLP/HTTP to ${sink.url}`);

    /** One measured autocannon phase against /oauth2/token, with the Redis commands it caused. */
    const hammer = async (
      name: string,
      phase: Pick<HttpLoadOptions, "seconds" | "body" | "path" | "maxRequests" | "onAccepted" | "cpu" | "check"> & { connections?: number; headers?: Record<string, string> },
    ): Promise<LoadResult> => {
      const { result, redis: cost } = await measureRedis(redis, () => runHttpLoad(name, { url: gateway.tokenUrl, connections, headers, ...phase }));
      return phase.cpu === undefined ? result : { ...result, redisPerRequest: formatRedisPerRequest(cost, result.sent ?? result.requests) };
    };

    // Warm-up: JIT, connections and script caches, through the same path as the measured phase.
    const warm = await gateway.mintCodes(3_000);
    await hammer(`${mode} warm-up`, { seconds: 2, body: () => exchangeBody(warm.pop()!), maxRequests: warm.length });
    const results: LoadResult[] = [];

    log("minting codes for the authorization_code phase ...");
    // With tenants, each code is its tenant's, redeemed at that tenant's token endpoint.
    const codes = tenants === 0 ? (await gateway.mintCodes(7_000 * seconds)).map((code) => ({ code, tokenPath: "/oauth2/token" })) : await gateway.mintTenantCodes(7_000 * seconds);
    log(`${codes.length} codes minted${tenants === 0 ? "" : ` over ${tenants} tenants`}`);
    let next = 0;
    let current = codes[0]!;
    const exchange = await hammer(`${mode} token: authorization_code (PKCE, Basic)`, {
      seconds,
      body: () => exchangeBody((current = codes[next++] ?? current).code),
      ...(tenants === 0 ? {} : { path: () => current.tokenPath }),
      maxRequests: codes.length,
      cpu: pids,
    });
    results.push(exchange);
    if (exchange.seconds < seconds * 0.9) log("warning: the authorization_code phase ran out of minted codes; raise the mint");

    // OpenID Connect: the same exchange with an ID Token signed beside the access token (issue 13: ≥ 0.8 of the plain one).
    log("minting OpenID Connect codes ...");
    const openIdCodes = await gateway.mintCodes(7_000 * seconds, "read openid");
    let nextOpenId = 0;
    const openId = await hammer(`${mode} token: authorization_code + openid (ID Token)`, {
      seconds,
      body: () => exchangeBody(openIdCodes[nextOpenId++]!),
      maxRequests: openIdCodes.length,
      cpu: pids,
      check: (status, text) => (status === 200 && text.includes('"id_token"') ? undefined : `${status} ${text.slice(0, 200)}`),
    });
    results.push(openId);
    process.stdout.write(`\n${mode}: openid code exchange ${openId.rps.toFixed(0)} req/s = ${(openId.rps / exchange.rps).toFixed(2)} of the plain code exchange (${exchange.rps.toFixed(0)} req/s), same run\n`);

    // Refresh: one family per connection, each response's refresh token used for the connection's next request.
    // Twice as many families as connections, so a connection never waits for a token to come back.
    // (autocannon resets a connection's context whenever its request list wraps, so the chain cannot live there.)
    const familyCodes = tenants === 0 ? (await gateway.mintCodes(2 * connections)).map((code) => ({ code, tokenPath: "/oauth2/token" })) : await gateway.mintTenantCodes(2 * connections);
    const families = await Promise.all(familyCodes.map(async ({ code, tokenPath }) => ({ token: (await exchangeOnce(code, tokenPath)).refresh_token, tokenPath })));
    let family = families[0]!;
    results.push(
      await hammer(`${mode} token: refresh_token (rotation)`, {
        seconds,
        body: () => new URLSearchParams({ grant_type: "refresh_token", refresh_token: (family = families.shift() ?? { token: "none-left", tokenPath: family.tokenPath }).token }).toString(),
        // Each family stays at its tenant's endpoint: the connection's context remembers where its request went.
        ...(tenants === 0
          ? {}
          : {
              path: (context: Record<string, unknown>) => {
                context.tokenPath = family.tokenPath;
                return family.tokenPath;
              },
            }),
        onAccepted: (body, context) =>
          families.push({ token: (JSON.parse(body) as { refresh_token: string }).refresh_token, tokenPath: (context.tokenPath as string | undefined) ?? "/oauth2/token" }),
        cpu: pids,
      }),
    );

    // The service grants (client credentials, token exchange) and the overload report: single-tenant only.
    if (tenants === 0) results.push(...(await servicePhases(mode, secrets, gateway.tokenUrl, exchangeOnce, gateway.mintCodes, hammer, pids, exchange.rps)));

    if (process.env.BENCH_OVERLOAD !== "0" && tenants === 0) {
      const overload = await overloadReport(mode, gateway, (name, phase) => hammer(name, phase), exchangeBody, exchange.rps);
      process.stdout.write(`\n${overload}\n`);
    }
    if (sink !== undefined) {
      const { exports, bytes } = sink.stats();
      process.stdout.write(`tracing (${mode}): ${exports} OTLP exports, ${(bytes / 1024 / 1024).toFixed(1)} MiB received so far (batches still buffered are not counted)\n`);
    }
    return results;
  } finally {
    await stats?.close();
    await stack?.stop();
    await sink?.close();
  }
}

/**
 * BENCH_INSTRUCTIONS: the code exchange, the refresh and introspection against gatehouse
 * deployed in `deployment` with every process under callgrind, each phase
 * WARM_UP_REQUESTS × `count` requests uncounted, then `count` counted in
 * every process; last, the processes' idle rate.
 */
async function countMode(
  callgrind: Callgrind,
  deployment: GatehouseMode,
  count: number,
  setup: { tenants: number; redisUrl: string; secrets: Awaited<ReturnType<typeof createBenchSecrets>>; headers: Record<string, string>; codeVerifier: string; codeChallenge: string },
): Promise<CountedPhase[]> {
  const { tenants, headers } = setup;
  const mode = tenants === 0 ? deployment : `${deployment} ${tenants} tenants`;
  const stack = await startGatehouseTwoProcess(
    { redisUrl: setup.redisUrl, secrets: setup.secrets, redirectUri, codeVerifier: setup.codeVerifier, codeChallenge: setup.codeChallenge, codeLifetimeSeconds: 600 },
    { name: `token-counted-${deployment}${tenants === 0 ? "" : `-${tenants}-tenants`}`, mode: deployment, tenants, wrapper: callgrind.wrapper },
  );
  try {
    const processes = Object.fromEntries(Object.entries(stack.processes).filter((entry): entry is [string, number] => entry[1] !== undefined));
    log(`${mode}: ${Object.entries(processes).map(([name, pid]) => `${name} pid ${pid}`).join(", ")} under callgrind; ${connections} connections, ${count} requests counted per phase`);
    const counted: CountedPhase[] = [];
    const phase = async (name: string, load: (label: string, n: number) => Promise<LoadResult>) =>
      counted.push(await countPhase(callgrind, processes, { name: `${deployment} ${name}`, deployment, tenants, label: `${mode} ${name}` }, count, load));
    const exchangeBody = (code: string) => new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: setup.codeVerifier }).toString();
    const codesFor = async (n: number) => (tenants === 0 ? (await stack.mintCodes(n)).map((code) => ({ code, tokenPath: "/oauth2/token" })) : stack.mintTenantCodes(n));
    const exchangeOnce = (code: string, tokenPath: string) => redeemCode(stack.gatewayUrl, headers, exchangeBody(code), tokenPath);

    /** n token requests, bounded by count, not time (under callgrind a request takes tens of times longer). */
    const post = (label: string, n: number, request: Pick<HttpLoadOptions, "body" | "path" | "onAccepted" | "check">) =>
      runHttpLoad(label, { url: stack.tokenUrl, connections, seconds: 3_600, headers, maxRequests: n, ...request });

    const codes = await codesFor((WARM_UP_REQUESTS + 1) * count);
    let next = 0;
    let current = codes[0]!;
    await phase("token: authorization_code (PKCE, Basic)", (label, n) =>
      post(label, n, { body: () => exchangeBody((current = codes[next++]!).code), ...(tenants === 0 ? {} : { path: () => current.tokenPath }) }),
    );

    // One family per connection and as many again, chained as in the timed phase.
    const families = await Promise.all(
      (await codesFor(2 * connections)).map(async ({ code, tokenPath }) => ({ token: (await exchangeOnce(code, tokenPath)).refresh_token, tokenPath })),
    );
    let family = families[0]!;
    await phase("token: refresh_token (rotation)", (label, n) =>
      post(label, n, {
        body: () => new URLSearchParams({ grant_type: "refresh_token", refresh_token: (family = families.shift() ?? { token: "none-left", tokenPath: family.tokenPath }).token }).toString(),
        path: (context) => (context.tokenPath = family.tokenPath),
        onAccepted: (body, context) => families.push({ token: (JSON.parse(body) as { refresh_token: string }).refresh_token, tokenPath: context.tokenPath as string }),
      }),
    );
    // RFC 7662 introspection of live access tokens, as the guard and resource servers call it (issue 16).
    const accessTokens = await Promise.all(
      (await codesFor(connections)).map(async ({ code, tokenPath }) => ({
        token: (await exchangeOnce(code, tokenPath)).access_token,
        introspectPath: tokenPath.replace(/\/token$/, "/introspect"),
      })),
    );
    let introspected = 0;
    let target = accessTokens[0]!;
    await phase("introspection (RFC 7662)", (label, n) =>
      post(label, n, {
        body: () => new URLSearchParams({ token: (target = accessTokens[introspected++ % accessTokens.length]!).token, token_type_hint: "access_token" }).toString(),
        path: () => target.introspectPath,
        check: acceptActiveIntrospection,
      }),
    );
    counted.push(await countIdle(callgrind, deployment, processes, tenants));
    return counted;
  } finally {
    await stack.stop();
  }
}

/** Redeems one code at the gateway's token endpoint, outside the measured phases: the token response. */
async function redeemCode(gatewayUrl: string, headers: Record<string, string>, body: string, tokenPath = "/oauth2/token"): Promise<{ refresh_token: string; access_token: string }> {
  const response = await fetch(`${gatewayUrl}${tokenPath}`, { method: "POST", headers, body });
  if (response.status !== 200) throw new Error(`token endpoint answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { refresh_token: string; access_token: string };
}

type Hammer = (name: string, phase: Pick<HttpLoadOptions, "seconds" | "body" | "maxRequests" | "connections" | "check" | "rate">) => Promise<LoadResult>;

/** Connections the open-loop overload phases may use: enough for 5× saturation to queue in the server for a while. */
const OVERLOAD_CONNECTIONS = 1024;

type ServiceHammer = (
  name: string,
  phase: Pick<HttpLoadOptions, "seconds" | "body" | "maxRequests" | "cpu"> & { headers?: Record<string, string> },
) => Promise<LoadResult>;

/**
 * The service grants (issue 14) at the same token endpoint, after the code
 * exchange: client_credentials with a secret and with private_key_jwt, and
 * token exchange. Each prints its rate beside the code exchange's.
 */
async function servicePhases(
  mode: string,
  secrets: Awaited<ReturnType<typeof createBenchSecrets>>,
  tokenUrl: string,
  exchangeOnce: (code: string) => Promise<{ access_token: string }>,
  mintCodes: (count: number) => Promise<string[]>,
  hammer: ServiceHammer,
  pids: Record<string, number | undefined>,
  codeRps: number,
): Promise<LoadResult[]> {
  const form = { "content-type": "application/x-www-form-urlencoded" };
  const ratio = (result: LoadResult) => log(`${result.name}: ${result.rps.toFixed(0)} req/s = ${(result.rps / Math.max(1, codeRps)).toFixed(2)}× the code exchange`);
  const results: LoadResult[] = [];

  const secret = await hammer(`${mode} token: client_credentials (secret, Basic)`, {
    seconds,
    headers: { ...form, authorization: `Basic ${Buffer.from(`svc:${secrets.svc}`).toString("base64")}` },
    body: () => "grant_type=client_credentials&scope=read",
    cpu: pids,
  });
  ratio(secret);
  results.push(secret);

  // Each assertion's jti is single use, so every request needs its own: signed before the phase, outside the measurement.
  const count = Math.ceil(Math.max(2_000, 1.5 * secret.rps) * seconds);
  log(`signing ${count} client assertions for the private_key_jwt phase ...`);
  const tokenEndpoint = tokenUrl;
  const issuer = new URL(tokenUrl).origin;
  const assertions: string[] = [];
  for (let i = 0; i < count; i++) {
    const now = Math.floor(Date.now() / 1000);
    assertions.push(
      await new SignJWT({ iss: "svc-jwt", sub: "svc-jwt", aud: i % 2 === 0 ? issuer : tokenEndpoint, jti: `${now}-${i}-${Math.random().toString(36).slice(2)}`, iat: now, exp: now + 240 })
        .setProtectedHeader({ alg: "ES256", kid: "svc-jwt-1" })
        .sign(secrets.svcJwt.privateKey),
    );
  }
  const jwt = await hammer(`${mode} token: client_credentials (private_key_jwt)`, {
    seconds,
    headers: form,
    body: () =>
      new URLSearchParams({
        grant_type: "client_credentials",
        scope: "read",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: assertions.pop() ?? "none-left",
      }).toString(),
    maxRequests: assertions.length,
    cpu: pids,
  });
  ratio(jwt);
  results.push(jwt);

  // A user's access token, exchanged again and again by web for the downstream service.
  const [code] = await mintCodes(1);
  const { access_token: subjectToken } = await exchangeOnce(code!);
  const exchangeBody = new URLSearchParams({
    grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
    subject_token: subjectToken,
    subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    audience: BENCH_DOWNSTREAM,
  }).toString();
  const exchanged = await hammer(`${mode} token: token exchange (RFC 8693)`, {
    seconds,
    headers: { ...form, authorization: `Basic ${Buffer.from(`web:${secrets.web}`).toString("base64")}` },
    body: () => exchangeBody,
    cpu: pids,
  });
  ratio(exchanged);
  results.push(exchanged);
  return results;
}

/**
 * Saturation measured in this run, then 1×, 2× and 5× of it: what share is
 * shed (503 temporarily_unavailable with Retry-After) and how long the tail is.
 */
async function overloadReport(mode: string, gateway: GatehouseTwoProcess, hammer: Hammer, exchangeBody: (code: string) => string, measuredRps: number): Promise<string> {
  const probeSeconds = Math.max(1, Math.round(seconds / 2));
  // Every request takes a code, a shed one too; before each phase the stock is topped up to 1.5× what it may take.
  const codes: string[] = [];
  const stock = async (count: number) => {
    if (codes.length >= count) return;
    log(`minting ${count - codes.length} codes for the overload report ...`);
    codes.push(...(await gateway.mintCodes(count - codes.length)));
  };
  const body = () => exchangeBody(codes.pop() ?? "none-left");
  let saturation = 4;
  let previous = 0;
  for (let c = 4; c <= 256; c *= 2) {
    await stock(Math.ceil(1.5 * 2 * Math.max(previous, measuredRps, 500) * probeSeconds));
    const probe = await hammer(`${mode} saturation probe: ${c} connections`, { seconds: probeSeconds, connections: c, body, maxRequests: codes.length });
    log(`${mode} saturation probe: ${c} connections, ${probe.rps.toFixed(0)} req/s`);
    if (previous > 0 && probe.rps < previous * 1.1) break;
    saturation = c;
    previous = probe.rps;
  }
  const rows: string[][] = [];
  const logStart = gateway.output().length;
  for (const factor of [1, 2, 5]) {
    const offered = factor * previous;
    await stock(Math.ceil(1.5 * offered * seconds));
    let shed = 0;
    const check = (status: number, text: string) => {
      if (status === 200) return undefined;
      if (status === 503 && text.includes('"temporarily_unavailable"')) {
        shed++;
        return undefined;
      }
      return `${status} ${text.slice(0, 200)}`;
    };
    const result = await hammer(`${mode} overload ${factor}x`, { seconds, connections: OVERLOAD_CONNECTIONS, rate: offered, body, maxRequests: codes.length, check });
    const answered = result.requests + result.errors;
    const other = result.errors - shed;
    rows.push([
      `${factor}× saturation`,
      offered.toFixed(0),
      ((result.sent ?? result.requests) / result.seconds).toFixed(0),
      result.rps.toFixed(0),
      answered === 0 ? "-" : `${((100 * shed) / answered).toFixed(1)} %`,
      String(other),
      result.p50.toFixed(1),
      result.p99.toFixed(1),
    ]);
    if (other > 0) log(`overload ${factor}x: ${result.firstError ?? `${other} other errors`}`);
    const gauges = (await (await fetch(`${gateway.gatewayUrl}/metrics`)).text()).split("\n").filter((l) => /^gatehouse_(gateway_requests|authz_calls)_(in_flight|queued)/.test(l));
    log(`after overload ${factor}x: ${gauges.join("; ")}`);
  }
  return [
    `overload (${mode}): authorization_code at the token endpoint; saturation ${previous.toFixed(0)} req/s (reached at ${saturation} connections, closed loop), measured above; then open loop over up to ${OVERLOAD_CONNECTIONS} connections`,
    formatTable(["offered load", "offered req/s", "sent req/s", "served req/s", "503 rate", "other errors", "p50 ms", "p99 ms"], rows),
    `what the processes logged meanwhile (warn and above, by message and kind; each line counts a second's events):`,
    ...summariseLog(gateway.output().slice(logStart)),
  ].join("\n");
}

/** JSON log lines summed by message and kind: `count` where a line carries one (the overload reporter's), else 1 a line. */
function summariseLog(output: string): string[] {
  const sums = new Map<string, number>();
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; kind?: string; count?: number };
      const key = `${entry.msg ?? "?"}${entry.kind === undefined ? "" : ` (${entry.kind})`}`;
      sums.set(key, (sums.get(key) ?? 0) + (typeof entry.count === "number" ? entry.count : 1));
    } catch {
      // not a log line
    }
  }
  return sums.size === 0 ? ["  nothing"] : [...sums].sort((a, b) => b[1] - a[1]).map(([key, count]) => `  ${String(count).padStart(7)}  ${key}`);
}

function log(message: string): void {
  process.stderr.write(`bench:token: ${message}\n`);
}

await main();
