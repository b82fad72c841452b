/**
 * npm run bench:peers — gatehouse against node-oidc-provider 9, in one run,
 * with one load generator and the same settings (issue 16). Each contender
 * gets the same client `web` (client_secret_basic, the same secret), redirect
 * URI, PKCE S256 verifier, signing key and Redis, and is driven over HTTP/1.1
 * by one load generator (BENCH_LOAD; keep-alive connections, one request in flight each):
 *
 *   authorization_code   POST token endpoint; each request redeems one code
 *                        minted beforehand for that server, with PKCE and Basic
 *   refresh_token        each response's rotated refresh token is used for a
 *                        later request: every family is a chain
 *   introspection        RFC 7662 of a live access token (256 per contender)
 *
 * Rounds interleave (round 1: A, B; round 2: A, B; ...) within each operation.
 * Every answer is checked (status, and introspection's `active: true`); a
 * contender that answers errors fails the bench. Beside each figure: CPU ms
 * per request of each process, Redis commands per request, the foreign load
 * (load average; CPU of every other process), and what docs/capacity-model.md
 * predicts from them. Before the rounds: 32 concurrent redemptions of one code
 * and of one refresh token must give one winner per contender (the single use
 * the comparison assumes), and a probe of each flow at one request in flight
 * counts Redis commands and round trips per request.
 *
 * Loopback only, bounded: the whole run stops with an error past 10 minutes.
 *
 *   BENCH_SECONDS (default 5)       duration of each measured phase
 *   BENCH_ROUNDS (default 2)        rounds per operation and contender
 *   BENCH_CONNECTIONS (default 64)  HTTP/1.1 keep-alive connections
 *   BENCH_OPERATIONS                which operations (default: code,refresh,introspect)
 *   REDIS_URL                       a Redis to use; default: a redis-server started here
 *   BENCH_PROFILE=dir               write CPU profiles of every contender's processes to dir
 *   BENCH_VARIANTS                  gatehouse variants to measure beside the defaults, comma-separated:
 *                                   split-fastify, all-in-one-fastify (the endpoints through fastify only),
 *                                   split-http1 (the gateway → authz hop over HTTP/1.1),
 *                                   split-unbatched (every call of the hop alone: gateway.authz.batchCalls false)
 *   BENCH_CONTENDERS                which of split, all-in-one, peer to run (default all three)
 *   BENCH_LOAD                      the load generator: lean (default; lib/lean-http-load.ts) or autocannon;
 *                                   both check every answer. On two cores the generator shares the machine
 *                                   with the contenders, and autocannon's CPU per request (about 0.05 ms)
 *                                   comes out of the cores the two-process deployment would use
 *   BENCH_RATE                      offer every measured phase this many requests/s (open loop) instead of
 *                                   as many as the connections carry: the contenders then do the same work
 *                                   at the same pace, and their CPU per request compares fairly on a machine
 *                                   whose other load moves the saturated rates (the summary's CPU column)
 */
import { startRedisServer } from "../test/support/redis-server.js";
import { predictThroughput } from "./lib/capacity-model.js";
import { createPkcePair, type Contender, type HopCalls, type RunningContender } from "./lib/contender.js";
import { formatForeignLoad } from "./lib/foreign-load.js";
import { GATEHOUSE_VARIANTS, gatehouseAllInOne, gatehouseTwoProcess } from "./lib/gatehouse-two-process.js";
import { acceptActiveIntrospection, formatCpuMs, formatTable, loadGeneratorOf, runHttpLoad, type HttpLoadOptions, type LoadResult } from "./lib/load.js";
import { oidcProviderPeer } from "./lib/oidc-provider-contender.js";
import { createRedisStats, formatRedisPerRequest, measureRedis, type RedisCost } from "./lib/redis-stats.js";
import { BENCH_REDIRECT_URI, createBenchSecrets } from "./lib/stack-config.js";
import { median } from "./lib/median.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 64);
const offeredRate = process.env.BENCH_RATE === undefined ? undefined : Number(process.env.BENCH_RATE);
// The lean generator leaves the two-process deployment the cores autocannon took from it (lib/lean-http-load.ts);
// an offered rate needs autocannon's.
const generator = loadGeneratorOf(process.env.BENCH_LOAD, offeredRate === undefined ? "lean" : "autocannon");
if (generator === "lean" && offeredRate !== undefined) throw new Error("BENCH_RATE needs BENCH_LOAD=autocannon: the lean generator runs closed loop only");
const wanted = new Set((process.env.BENCH_OPERATIONS ?? "code,refresh,introspect").split(","));
/** The whole run's bound (issue 16: under 10 minutes). */
const RUN_LIMIT_MS = 10 * 60_000;
/** Requests per flow in the one-in-flight probe. */
const PROBE_REQUESTS = 200;
/** Code exchanges per second the first round mints for (later rounds: twice the best rate seen). */
const FIRST_CODE_RATE = 4_000;
/** Concurrent redemptions of one code (and of one refresh token) in the single-use check. */
const SINGLE_USE_BURST = 32;

/**
 * The contenders, in the order each round runs them: gatehouse in both modes
 * (the two-process deployment, and all-in-one: gateway and authz core in one
 * process), each with its ratio to the peer.
 */
const BASE_CONTENDERS: Readonly<Record<string, Contender>> = { split: gatehouseTwoProcess, "all-in-one": gatehouseAllInOne, peer: oidcProviderPeer };
const CONTENDERS: readonly Contender[] = [
  ...(process.env.BENCH_CONTENDERS ?? "split,all-in-one,peer").split(",").map((key) => {
    const contender = BASE_CONTENDERS[key.trim()];
    if (contender === undefined) throw new Error(`BENCH_CONTENDERS: unknown contender ${JSON.stringify(key)} (${Object.keys(BASE_CONTENDERS).join(", ")})`);
    return contender;
  }),
  ...(process.env.BENCH_VARIANTS ?? "")
    .split(",")
    .filter((key) => key.trim() !== "")
    .map((key) => {
      const variant = GATEHOUSE_VARIANTS[key.trim()];
      if (variant === undefined) throw new Error(`BENCH_VARIANTS: unknown variant ${JSON.stringify(key)} (${Object.keys(GATEHOUSE_VARIANTS).join(", ")})`);
      return variant;
    }),
].sort((a, b) => (a.side === b.side ? 0 : a.side === "peer" ? 1 : -1));

/** One flow as the load generator drives it against one contender. */
interface Operation {
  readonly key: string;
  readonly name: string;
  /**
   * What one phase needs (fresh codes, refresh families, live tokens) for
   * about `expectedRequests` requests; built before the phase, never inside it.
   */
  prepare(contender: Started, expectedRequests: number): Promise<Pick<HttpLoadOptions, "url" | "body" | "maxRequests" | "check" | "onAccepted">>;
}

interface Started {
  readonly contender: Contender;
  readonly running: RunningContender;
  /** The best code-exchange rate seen so far: how many codes the next phase needs. */
  codeRate: number;
}

interface Measured {
  readonly operation: string;
  readonly contender: string;
  readonly side: Contender["side"];
  readonly round: number;
  readonly result: LoadResult;
  readonly redis: RedisCost;
}

/** The gateway's calls to the authz service during a phase: how many went in batches, and the mean batch (rpc/batching-transport.ts). */
function formatHop(before: HopCalls, after: HopCalls): string {
  const alone = after.alone - before.alone;
  const batched = after.batched - before.batched;
  const batches = after.batches - before.batches;
  const calls = alone + batched;
  if (calls === 0) return "";
  return `; hop: ${((100 * batched) / calls).toFixed(0)} % of ${calls} calls batched, ${batches === 0 ? "no batches" : `${(batched / batches).toFixed(1)} calls per batch`}`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const deadline = started + RUN_LIMIT_MS;
  // Refuse up front what cannot fit the bound: per contender and operation, the warm-up and probe
  // (about 12 s), and per round the phase plus its preparation (minting at about the redemption rate).
  const planned = CONTENDERS.length * ["code", "refresh", "introspect"].filter((key) => wanted.has(key)).length * (12 + rounds * (2.5 * seconds + 3));
  if (planned * 1000 > RUN_LIMIT_MS * 0.9) {
    throw new Error(`about ${Math.round(planned)} s planned, over the ${RUN_LIMIT_MS / 60_000}-minute bound; lower BENCH_SECONDS or BENCH_ROUNDS`);
  }

  const ownRedis = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? ownRedis!.url;
  const stats = createRedisStats(redisUrl);
  const secrets = await createBenchSecrets();
  const basicAuth = `Basic ${Buffer.from(`web:${secrets.web}`).toString("base64")}`;
  const formHeaders = { "content-type": "application/x-www-form-urlencoded", authorization: basicAuth };
  const pkce = createPkcePair();
  const setup = {
    redisUrl,
    secrets,
    redirectUri: BENCH_REDIRECT_URI,
    ...pkce,
    codeLifetimeSeconds: 600,
    ...(process.env.BENCH_PROFILE === undefined ? {} : { profileDir: process.env.BENCH_PROFILE }),
  };
  const shared = { redis: ownRedis?.pid, "load generator": process.pid };

  const exchangeBody = (code: string) =>
    new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: BENCH_REDIRECT_URI, code_verifier: pkce.codeVerifier }).toString();
  /** One code exchange outside the load: the tokens a refresh or introspection phase starts from. */
  const exchange = async (running: RunningContender, code: string) => {
    const response = await fetch(running.tokenUrl, { method: "POST", headers: formHeaders, body: exchangeBody(code) });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${running.tokenUrl} answered ${response.status}: ${text}`);
    return JSON.parse(text) as { access_token: string; refresh_token?: string };
  };
  const tokenResponse = (field: "access_token" | "refresh_token") => (status: number, body: string) =>
    status === 200 && body.includes(`"${field}"`) ? undefined : `${status} ${body.slice(0, 300)}`;

  const allOperations: Operation[] = [
    {
      key: "code",
      name: "authorization_code + PKCE",
      async prepare({ running }, expected) {
        const codes = await running.mintCodes(expected);
        let next = 0;
        // Never more requests than codes: the last connections just stop early.
        return { url: running.tokenUrl, body: () => exchangeBody(codes[next++]!), maxRequests: codes.length, check: tokenResponse("refresh_token") };
      },
    },
    {
      key: "refresh",
      name: "refresh_token (rotation)",
      async prepare({ running }) {
        // Twice as many families as connections: a connection never waits for a token to come back.
        const codes = await running.mintCodes(2 * connections);
        const pool: string[] = [];
        for (const code of codes) {
          const { refresh_token } = await exchange(running, code);
          if (refresh_token === undefined) throw new Error(`${running.tokenUrl} issued no refresh token`);
          pool.push(refresh_token);
        }
        return {
          url: running.tokenUrl,
          body: () => new URLSearchParams({ grant_type: "refresh_token", refresh_token: pool.shift() ?? "pool-ran-dry" }).toString(),
          check: tokenResponse("refresh_token"),
          // Rotation: the old token is dead, its successor continues the family.
          onAccepted: (body) => pool.push((JSON.parse(body) as { refresh_token: string }).refresh_token),
        };
      },
    },
    {
      key: "introspect",
      name: "introspection (RFC 7662)",
      async prepare({ running }) {
        const tokens: string[] = [];
        for (const code of await running.mintCodes(256)) tokens.push((await exchange(running, code)).access_token);
        let next = 0;
        return {
          url: running.introspectUrl,
          body: () => new URLSearchParams({ token: tokens[next++ % tokens.length]!, token_type_hint: "access_token" }).toString(),
          check: acceptActiveIntrospection,
        };
      },
    },
  ];
  const operations = allOperations.filter((operation) => wanted.has(operation.key));

  const contenders: Started[] = [];
  const measured: Measured[] = [];
  const probes: Array<{ operation: string; contender: string; result: LoadResult; redis: RedisCost }> = [];

  /** One phase of `operation` against `contender`, checked: errors fail the bench. */
  const phase = async (operation: Operation, contender: Started, options: { seconds: number; connections: number; expected: number; label: string; maxRequests?: number; rate?: number }) => {
    if (Date.now() + options.seconds * 1000 > deadline) throw new Error(`bench:peers would pass its ${RUN_LIMIT_MS / 60_000}-minute bound; lower BENCH_SECONDS or BENCH_ROUNDS`);
    const input = await operation.prepare(contender, options.expected);
    const hopBefore = await contender.running.hopCalls?.();
    const { result, redis } = await measureRedis(stats, () =>
      runHttpLoad(`${operation.name}: ${contender.contender.name} ${options.label}`, {
        ...input,
        ...(options.maxRequests === undefined ? {} : { maxRequests: Math.min(input.maxRequests ?? Infinity, options.maxRequests) }),
        ...(options.rate === undefined ? {} : { rate: options.rate }),
        connections: options.connections,
        seconds: options.seconds,
        headers: formHeaders,
        generator,
        cpu: { ...contender.running.processes, ...shared },
      }),
    );
    if (result.errors > 0) {
      throw new Error(`${contender.contender.name} answered errors in ${operation.name} (${options.label}): ${result.errors} errors of ${result.requests + result.errors}; ${result.firstError}`);
    }
    const hopAfter = await contender.running.hopCalls?.();
    return { result, redis, hop: hopBefore === undefined || hopAfter === undefined ? "" : formatHop(hopBefore, hopAfter) };
  };
  // Twice the best rate seen so far; before any, a rate above what any contender reached here, so that the
  // first round measures the server and not the codes minted for it (it used to be capped at 2,000 codes).
  const codesFor = (contender: Started, phaseSeconds: number) => Math.ceil((contender.codeRate || FIRST_CODE_RATE) * phaseSeconds * 2) + 2 * connections;

  try {
    for (const contender of CONTENDERS) {
      const running = await contender.start(setup);
      contenders.push({ contender, running, codeRate: 0 });
      log(`${contender.name}: started (${Object.entries(running.processes).map(([name, pid]) => `${name} pid ${pid}`).join(", ")})`);
    }
    log(`Redis ${redisUrl}; ${connections} connections, ${seconds} s per phase, ${rounds} rounds; load generator ${generator}; loopback only`);

    // A peer whose code or refresh token could be redeemed twice would be measured doing less than
    // gatehouse does: check the single use under a concurrent burst before measuring anything.
    for (const { contender, running } of contenders) {
      const [code, family] = await running.mintCodes(2);
      const burst = async (body: string) => {
        const statuses = await Promise.all(
          Array.from({ length: SINGLE_USE_BURST }, async () => {
            const response = await fetch(running.tokenUrl, { method: "POST", headers: formHeaders, body });
            await response.arrayBuffer();
            return response.status;
          }),
        );
        return statuses.filter((status) => status === 200).length;
      };
      const codeWinners = await burst(exchangeBody(code!));
      const { refresh_token: refreshToken } = await exchange(running, family!);
      const refreshWinners = await burst(new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken! }).toString());
      if (codeWinners !== 1 || refreshWinners !== 1) {
        throw new Error(`${contender.name}: ${SINGLE_USE_BURST} concurrent redemptions gave ${codeWinners} code and ${refreshWinners} refresh winners; exactly one each expected`);
      }
      log(`${contender.name}: ${SINGLE_USE_BURST} concurrent redemptions of one code and of one refresh token: one winner each`);
    }

    // Warm-up (JIT, connections, script caches) and the one-in-flight probe of each flow.
    for (const contender of contenders) {
      for (const operation of operations) {
        // (Its code phase ends when its 2,000 codes are spent: too short a phase for a rate to go by.)
        await phase(operation, contender, { seconds: 2, connections, expected: 2_000, label: "warm-up" });
        const probe = await phase(operation, contender, { seconds: 10, connections: 1, expected: PROBE_REQUESTS, maxRequests: PROBE_REQUESTS, label: "probe" });
        probes.push({ operation: operation.name, contender: contender.contender.name, result: probe.result, redis: probe.redis });
      }
      log(`${contender.contender.name}: warmed up and probed`);
    }

    for (let round = 1; round <= rounds; round++) {
      for (const operation of operations) {
        for (const contender of contenders) {
          const expected = codesFor(contender, seconds);
          const { result, redis, hop } = await phase(operation, contender, {
            seconds,
            connections,
            expected,
            label: `round ${round}`,
            ...(offeredRate === undefined ? {} : { rate: offeredRate }),
          });
          if (operation.key === "code") {
            contender.codeRate = Math.max(contender.codeRate, result.rps);
            // autocannon's phase lasts its seconds even when the codes run out: a phase that sent every code is a floor
            // (the lean generator's phase ends with the last answer, so its rate is the rate).
            if (generator === "autocannon" && (result.sent ?? 0) >= expected) log(`note: ${contender.contender.name} used up its codes (${result.sent} sent): the rate is a floor`);
          }
          measured.push({ operation: operation.name, contender: contender.contender.name, side: contender.contender.side, round, result, redis });
          log(`${operation.name}, ${contender.contender.name}, round ${round}: ${result.rps.toFixed(0)}/s, p99 ${result.p99.toFixed(1)} ms${hop}`);
        }
      }
    }
    process.stdout.write(`\n${report(operations, contenders, measured, probes)}\n`);
    if (offeredRate !== undefined) process.stdout.write(`\n(every measured phase was offered ${offeredRate} requests/s: compare the CPU column, not the rates)\n`);
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    for (const contender of contenders.reverse()) await contender.running.stop();
    await stats.close();
    await ownRedis?.stop();
  }
}

/** The three tables: every measured phase, the summary with ratios, and Redis per flow. */
function report(
  operations: Operation[],
  contenders: Started[],
  measured: Measured[],
  probes: Array<{ operation: string; contender: string; result: LoadResult; redis: RedisCost }>,
): string {
  const rounds = measured.map((m) => [
    m.operation,
    m.contender,
    String(m.round),
    m.result.rps.toFixed(0),
    m.result.p50.toFixed(1),
    m.result.p99.toFixed(1),
    formatCpuMs(m.result.cpuMsPerRequest ?? {}),
    formatRedisPerRequest(m.redis, m.result.sent ?? m.result.requests, { detail: false }),
    m.result.foreign === undefined ? "-" : formatForeignLoad(m.result.foreign),
    formatPrediction(m.result),
  ]);

  const peer = contenders.find((c) => c.contender.side === "peer")?.contender.name;
  const processesOf = new Map(contenders.map((c) => [c.contender.name, c.running.processes]));
  const summary: string[][] = [];
  for (const operation of operations) {
    for (const { contender } of contenders) {
      const mine = measured.filter((m) => m.operation === operation.name && m.contender === contender.name);
      if (mine.length === 0) continue;
      const rps = mine.map((m) => m.result.rps);
      const ratios =
        contender.side === "gatehouse" && peer !== undefined
          ? mine.flatMap((m) => {
              const theirs = measured.find((p) => p.operation === m.operation && p.contender === peer && p.round === m.round);
              return theirs === undefined ? [] : [m.result.rps / theirs.result.rps];
            })
          : [];
      // CPU ms per request of the contender's own processes together (not Redis, not the load generator).
      const own = Object.keys(processesOf.get(contender.name) ?? {});
      const cpu = mine.map((m) => own.reduce((sum, name) => sum + (m.result.cpuMsPerRequest?.[name] ?? NaN), 0)).filter(Number.isFinite);
      summary.push([
        operation.name,
        contender.name,
        `${median(rps).toFixed(0)} (${Math.min(...rps).toFixed(0)}–${Math.max(...rps).toFixed(0)})`,
        median(mine.map((m) => m.result.p50)).toFixed(1),
        median(mine.map((m) => m.result.p99)).toFixed(1),
        ratios.length === 0 ? "" : `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
        cpu.length === 0 ? "-" : `${median(cpu).toFixed(3)} (${Math.min(...cpu).toFixed(3)}–${Math.max(...cpu).toFixed(3)})`,
        `${Math.max(...mine.map((m) => m.result.foreign?.loadAverage ?? NaN)).toFixed(1)} / ${Math.max(...mine.map((m) => m.result.foreign?.otherCpuPercent ?? NaN)).toFixed(0)}%`,
      ]);
    }
  }

  const redis = probes.map((p) => [p.operation, p.contender, formatRedisPerRequest(p.redis, p.result.sent ?? p.result.requests, { reads: true })]);

  return [
    `Every phase (CPU: ms of CPU per served request, per process; foreign: 1-min load average, and CPU of all other processes in % of one core;`,
    ` model: docs/capacity-model.md at N = M = 1 on this machine's cores less the foreign load, and what bounds it):`,
    formatTable(["operation", "contender", "round", "req/s", "p50 ms", "p99 ms", "CPU per request", "Redis per request", "foreign load", "model: req/s, bound"], rounds, { left: 3 }),
    "",
    `Summary over ${Math.max(...measured.map((m) => m.round))} rounds (median, range); ratio = gatehouse ÷ ${peer ?? "peer"} in the same round:`,
    formatTable(["operation", "contender", "req/s", "p50 ms", "p99 ms", "ratio", "CPU ms/request (own processes)", "max load / others"], summary, { left: 2 }),
    "",
    `Redis per flow at one request in flight (${PROBE_REQUESTS} requests; commands inside Lua scripts counted; a round trip is a read event at Redis):`,
    formatTable(["operation", "contender", "Redis per request"], redis, { left: 3 }),
  ].join("\n");
}

/** "830/s, shared cores (0.40 of it)": the model's prediction for a phase and the measured share of it. */
function formatPrediction(result: LoadResult): string {
  if (result.cpuMsPerRequest === undefined || result.foreign === undefined) return "-";
  const prediction = predictThroughput(result.cpuMsPerRequest, result.foreign);
  return `${prediction.rps.toFixed(0)}/s, ${prediction.bound} (measured ${(result.rps / prediction.rps).toFixed(2)}×)`;
}

function log(message: string): void {
  process.stderr.write(`bench:peers: ${message}\n`);
}

await main();
