/**
 * npm run bench:rpc — Introspect, ExchangeCode and Refresh over Connect
 * (HTTP/2, binary) against one authz service process (the production build)
 * on Redis, with concurrent callers on loopback. Prints req/s, p50/p99, the
 * CPU each process used (% of one core and ms per call), and beside each
 * figure the foreign load (load average, CPU of every other process: issue 16).
 *
 * The calls use a lean Connect-protocol client on raw node:http2
 * (lib/connect-h2.ts): on two cores the connect-es client (about 350 µs of CPU
 * per call here) would be the bottleneck, not the service.
 *
 *   BENCH_SECONDS (default 5)   duration of each measured phase
 *   BENCH_CONCURRENCY (64)      calls in flight
 *   REDIS_URL                   a Redis to use; default: a redis-server started here
 *   BENCH_PROFILE=dir           write a CPU profile of the service to dir
 *   BENCH_PHASES                which phases (default: all of metadata, introspect,
 *                               introspect-first-seen, exchange, refresh)
 *   BENCH_TENANTS=n             then the same phases against a service with n named tenants
 *                               (issue 11), each call in tenant i mod n (named in its metadata),
 *                               printed beside the single-tenant figures of the same run
 *   BENCH_ROUNDS (default 1)    with BENCH_TENANTS: rounds alternating the two deployments
 *                               (single, tenants, single, tenants, ...), then per phase the
 *                               medians and the ratios tenants ÷ single of req/s and of the
 *                               service's CPU per call: this host drifts by more than the 5 %
 *                               bar between minutes, so one pass of each proves nothing
 *   BENCH_INSTRUCTIONS=n        count instructions instead of time (lib/callgrind.ts): the service
 *                               runs under valgrind's callgrind, and each phase is n calls to warm
 *                               up, then n calls counted (BENCH_SECONDS is not used; concurrency
 *                               8 unless BENCH_CONCURRENCY says otherwise). Prints instructions per
 *                               call, and with BENCH_TENANTS their ratios, tenants ÷ single: the
 *                               same figures whatever else the machine is doing.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RefreshRequestSchema, RefreshResponseSchema } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { startRedisServer } from "../test/support/redis-server.js";
import { startBenchAuthz, type BenchAuthz, type BenchTenant } from "./lib/authz-fixture.js";
import { formatResults, runLoad, type LoadResult } from "./lib/load.js";
import { benchTenantCount } from "./lib/stack-config.js";
import { median } from "./lib/median.js";
import { countIdle, countPhase, countedRequests, createCallgrind, formatCountedPhases, WARM_UP_REQUESTS, type Callgrind, type CountedPhase } from "./lib/callgrind.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
/** Calls per counted phase (BENCH_INSTRUCTIONS), or undefined: timed phases. */
const countedCalls = countedRequests(process.env.BENCH_INSTRUCTIONS);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? (countedCalls === undefined ? 64 : 8));
const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
const phases = new Set((process.env.BENCH_PHASES ?? "metadata,introspect,introspect-first-seen,exchange,refresh").split(","));

async function main(): Promise<void> {
  const ownRedis = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? ownRedis!.url;
  const tenantCount = benchTenantCount();
  const results: LoadResult[] = [];
  const counted: CountedPhase[] = [];
  const callgrind = countedCalls === undefined ? undefined : createCallgrind();
  try {
    for (let round = 1; round <= (tenantCount === 0 ? 1 : rounds); round++) {
      if (rounds > 1) log(`round ${round} of ${rounds}`);
      for (const tenants of tenantCount === 0 ? [0] : [0, tenantCount]) {
        // One deployment at a time: the two never share the machine.
        const authz = await startBenchAuthz({
          replicas: 1,
          redis: { url: redisUrl },
          profileDir: process.env.BENCH_PROFILE,
          tenants,
          ...(callgrind === undefined ? {} : { wrapper: callgrind.wrapper }),
        });
        try {
          const measure = callgrind === undefined ? timed(authz, ownRedis?.pid) : countedBy(callgrind, authz, tenants, counted);
          results.push(...(await runPhases(authz, tenants, measure)));
          if (callgrind !== undefined) counted.push(await countIdle(callgrind, "", { service: authz.replicas[0]!.child.pid! }, tenants));
        } finally {
          await authz.stop();
        }
      }
    }
    if (callgrind !== undefined) {
      process.stdout.write(`\n${formatCountedPhases(counted, tenantCount)}\n`);
      return;
    }
    process.stdout.write(`\n${formatResults(results)}\n`);
    if (tenantCount > 0) process.stdout.write(`\n${formatTenantRatios(results, tenantCount)}\n`);
  } finally {
    await ownRedis?.stop();
  }
}

/**
 * How a phase is measured: `call` over and over, until `exhausted` (when
 * given) says its inputs ran out; by the clock, for `phaseSeconds`.
 */
type Measure = (name: string, call: (worker: number, iteration: number) => Promise<unknown>, exhausted?: () => boolean, phaseSeconds?: number) => Promise<LoadResult>;

/** By the clock: BENCH_SECONDS of calls (or the phase's own), with req/s, p50/p99 and the CPU of each process. */
function timed(authz: BenchAuthz, redisPid: number | undefined): Measure {
  const cpu = { service: authz.replicas[0]!.child.pid, "load generator": process.pid, redis: redisPid };
  return (name, call, exhausted, phaseSeconds = seconds) =>
    runLoad(name, { concurrency, seconds: phaseSeconds, cpu, ...(exhausted === undefined ? {} : { stopWhen: exhausted }) }, call);
}

/** By instruction count (countPhase): the calls of a stretch bounded by number, not time. */
function countedBy(callgrind: Callgrind, authz: BenchAuthz, tenants: number, counted: CountedPhase[]): Measure {
  const processes = { service: authz.replicas[0]!.child.pid! };
  return async (name, call, exhausted) => {
    let last: LoadResult | undefined;
    const phase = await countPhase(callgrind, processes, { name: name.replace(` [${tenants} tenants]`, ""), deployment: "", tenants, label: name }, countedCalls!, async (label, requests) => {
      let started = 0;
      return (last = await runLoad(label, { concurrency, seconds: 3_600, stopWhen: () => started >= requests || exhausted?.() === true }, (worker, iteration) => {
        started++;
        return call(worker, iteration);
      }));
    });
    counted.push(phase);
    return last!;
  };
}

/** Every phase against one deployment; with tenants, call i goes to tenant i mod n. */
async function runPhases(authz: BenchAuthz, tenants: number, measure: Measure): Promise<LoadResult[]> {
  const label = (name: string) => (tenants === 0 ? name : `${name} [${tenants} tenants]`);
  const side: BenchTenant[] = tenants === 0 ? [authz.inTenant(undefined)] : Array.from({ length: tenants }, (_, i) => authz.inTenant(i));
  let turn = 0;
  const nextSide = () => side[turn++ % side.length]!;
  const perPhase = countedCalls === undefined ? `${seconds} s per phase` : `${countedCalls} calls counted per phase`;
  log(`authz service on :${authz.ports[0]}${tenants === 0 ? "" : `, ${tenants} tenants`}; ${concurrency} concurrent callers, ${perPhase}`);
  const results: LoadResult[] = [];

  // Warm up connections, JIT and script caches.
  await runLoad("warm-up", { concurrency, seconds: 1 }, () => nextSide().issueTokens());

  if (phases.has("metadata")) {
    results.push(
      await measure(label("GetMetadata (the RPC path alone)"), (w, i) =>
        authz.call("GetMetadata", new Uint8Array(), tenants === 0 ? {} : { "gatehouse-tenant": `t${(w * 7919 + i) % tenants}` }),
      ),
    );
  }

  if (phases.has("introspect")) {
    // Resource servers see the same tokens again and again.
    // In batches of `concurrency`: the service sheds what is over its limit (authz.overload), as it should.
    const calls = await inBatches(1_000, concurrency, async () => {
      const tenant = nextSide();
      return { body: authz.introspectBody((await tenant.issueTokens()).accessToken), headers: tenant.asResourceServer };
    });
    results.push(
      await measure(label("Introspect (1,000 live tokens)"), (w, i) => {
        const { body, headers } = calls[(w * 7919 + i) % calls.length]!;
        return authz.call("Introspect", body, headers);
      }),
    );
  }

  if (phases.has("introspect-first-seen")) {
    // Tokens never seen before: a signature verification each.
    log("issuing tokens for the first-seen Introspect phase ...");
    const unseen: Array<{ body: Uint8Array; headers: Record<string, string> }> = [];
    const wantedUnseen = countedCalls === undefined ? Infinity : (WARM_UP_REQUESTS + 1) * countedCalls;
    await runLoad("issue", { concurrency, seconds: countedCalls === undefined ? 4 : 3_600, stopWhen: () => unseen.length >= wantedUnseen }, async () => {
      const tenant = nextSide();
      unseen.push({ body: authz.introspectBody((await tenant.issueTokens()).accessToken), headers: tenant.asResourceServer });
    });
    let next = 0;
    results.push(
      await measure(
        label("Introspect (each token first seen)"),
        () => {
          const { body, headers } = unseen[next++]!;
          return authz.call("Introspect", body, headers);
        },
        () => next >= unseen.length,
        1,
      ),
    );
  }

  if (phases.has("exchange")) {
    log("minting codes for ExchangeCode ...");
    const codes: Array<{ code: string; headers: Record<string, string> }> = [];
    const wanted = countedCalls === undefined ? 5_000 * seconds : (WARM_UP_REQUESTS + 1) * countedCalls;
    await runLoad("mint", { concurrency, seconds: countedCalls === undefined ? 60 : 600, stopWhen: () => codes.length >= wanted }, async () => {
      const tenant = nextSide();
      codes.push({ code: await tenant.mintCode(), headers: tenant.asWeb });
    });
    let next = 0;
    results.push(
      await measure(
        label("ExchangeCode"),
        () => {
          const { code, headers } = codes[next++]!;
          return authz.call("ExchangeCode", authz.exchangeBody(code), headers);
        },
        () => next >= codes.length,
      ),
    );
  }

  if (phases.has("refresh")) {
    // Each caller rotates its own family, chained (in its own tenant).
    const families = await Promise.all(
      Array.from({ length: concurrency }, async () => {
        const tenant = nextSide();
        return { token: (await tenant.issueTokens()).refreshToken, headers: tenant.asWeb };
      }),
    );
    results.push(
      await measure(label("Refresh (rotation)"), async (worker) => {
        const family = families[worker]!;
        const body = toBinary(RefreshRequestSchema, create(RefreshRequestSchema, { refreshToken: family.token }));
        const { token } = fromBinary(RefreshResponseSchema, await authz.call("Refresh", body, family.headers));
        family.token = token!.refreshToken;
      }),
    );
  }
  return results;
}

/**
 * Per phase, over the rounds: the median req/s and service CPU per call of
 * each deployment and the ratios tenants ÷ single (issue 11's bar: the
 * tenants' run at most 5 % slower, i.e. req/s ratio ≥ 0.95, CPU ratio ≤ 1.05).
 */
function formatTenantRatios(results: readonly LoadResult[], tenants: number): string {
  const suffix = ` [${tenants} tenants]`;
  const of = (name: string) => results.filter((r) => r.name === name);
  const lines = [`medians over ${rounds} round(s), ${tenants} tenants ÷ single tenant (bar: req/s ≥ 0.95, CPU per call ≤ 1.05):`];
  for (const name of new Set(results.map((r) => r.name).filter((n) => !n.endsWith(suffix)))) {
    const single = of(name);
    const many = of(name + suffix);
    if (many.length === 0) continue;
    const rps = [median(single.map((r) => r.rps)), median(many.map((r) => r.rps))];
    const cpu = [median(single.map((r) => r.cpuMsPerRequest?.service ?? NaN)), median(many.map((r) => r.cpuMsPerRequest?.service ?? NaN))];
    const perRound = many.map((r, i) => (r.rps / (single[i]?.rps ?? NaN)).toFixed(2)).join(", ");
    lines.push(
      `  ${name}: ${rps[0]!.toFixed(0)} → ${rps[1]!.toFixed(0)} req/s, ratio ${(rps[1]! / rps[0]!).toFixed(2)} (rounds ${perRound}); ` +
        `CPU per call ${cpu[0]!.toFixed(3)} → ${cpu[1]!.toFixed(3)} ms, ratio ${(cpu[1]! / cpu[0]!).toFixed(2)}`,
    );
  }
  return lines.join("\n");
}

function log(message: string): void {
  process.stderr.write(`bench:rpc: ${message}\n`);
}

await main();

/**
 * `count` results of `make`, at most `batch` at a time. A call the service
 * sheds (503, temporarily_unavailable: the warm-up's last calls may still be
 * in flight, and a tenant's first calls are slower) is retried after its
 * Retry-After, as a client would, up to 10 times.
 */
async function inBatches<T>(count: number, batch: number, make: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  const retried = async (attempt = 1): Promise<T> => {
    try {
      return await make();
    } catch (error) {
      if (attempt >= 10 || !String(error).includes("HTTP 503")) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      return retried(attempt + 1);
    }
  };
  while (results.length < count) results.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - results.length) }, () => retried()))));
  return results;
}
