/**
 * npm run bench:guard — what the guard costs behind each of its three
 * entrances (issue 10), each figure against its baseline measured in the same
 * run, on loopback, one phase at a time (closed loop):
 *
 * the sidecar (autocannon, HTTP/1.1 keep-alive, the same request everywhere):
 *   (a)  the echo upstream directly
 *   (b)  a bare http-proxy with a keep-alive agent                  the baseline of f, c, d
 *   (f)  fastify with the gateway's proxy plugin and no check        (the framework's share)
 *   (c)  the sidecar with a cached token                             bar: c/b ≥ 0.85 (issue 10), ≥ 0.95 (issue 16)
 *   (d)  the sidecar with caching off (an Introspect RPC per request)
 * the sidecar at a fixed offered rate (open loop, half of what (b) carried in
 * the same round, each request sent at its own time: lib/paced-load.ts): the
 * latency the guard adds at a load both can carry; at saturation, p99
 * measures the queue, whose length follows from the rates:
 *   (br) the bare http-proxy at that rate
 *   (cr) the sidecar, cached token, at that rate                     bar: p99 added ≤ 0.5 ms
 * the sidecar and the bare proxy side by side (closed loop, both loaded at
 * once, each by its own connections, on the one core the servers share):
 * this machine's speed drifts by a third from one second to the next (host
 * contention no process here shows), so (c) and (b), measured one after the
 * other, carry that drift into c/b (seen: 0.56 to 1.31 in ten rounds of 2 s).
 * Loaded together, both meet the same moments of the machine; both always
 * have work, so the scheduler gives each half the core, and their req/s
 * ratio is the inverse of their CPU-per-request ratio (seen: 0.88 to 0.95
 * over six rounds of the same code):
 *   (bs) the bare http-proxy, beside (cs)
 *   (cs) the sidecar, cached token, beside (bs)                      bar: cs/bs ≥ 0.95 (issue 16)
 * the check endpoint (nginx auth_request, Traefik forwardAuth):
 *   (n0) nginx proxying to the upstream without auth_request          the baseline of n1
 *   (n1) the same nginx with auth_request to gatehouse, cached token  reported
 *   (g0) a bare fastify GET answering 200                             the baseline of g1
 *   (g1) gatehouse's check endpoint alone (X-Original-*), cached      bar: g1/g0 ≥ 0.6
 * Envoy ext_authz over gRPC (one @grpc/grpc-js channel, calls in flight):
 *   (e0) a bare @grpc/grpc-js unary echo                              the baseline of e1
 *   (e1) the gateway's ext_authz Check, cached token                  bar: e1/e0 ≥ 0.6
 *
 * One Redis, one authz service, and the gateways from the production build
 * (dist/, plain node; `npm run bench:guard` builds first): (c) the sidecar with
 * its cache, (d) the sidecar without, and the entrances' gateway (cached,
 * loopback as trusted proxy, the Check listener on) serving n1, g1 and e1, so
 * that (c) runs with the configuration it always had. Upstream, baselines and
 * nginx (one worker) each in a process of their own; only what the selected
 * phases need is started. Every phase is probed once before it is measured
 * and must answer 200 (the Check: OK); a phase that answers anything else
 * while measured fails the run (exit code 1) after the tables are printed.
 *
 * Printed per phase: req/s, p50/p99 (each response's own time, sub-ms), the
 * CPU µs per request of the serving process(es) (steadier than req/s on a
 * shared machine), and the foreign load beside it (load average, CPU of
 * every other process); then the ratios with their bars (met/MISSED).
 *
 *   BENCH_SECONDS (default 5)          measured seconds per phase (after 1 s of warm-up)
 *   BENCH_WARM_REQUESTS (default 100000)  requests each phase's server gets once, before the first
 *                                      round, over 10 connections: V8 keeps compiling and
 *                                      deoptimising a server's hot paths for its first 50,000-
 *                                      100,000 requests (seen with --trace-opt: the sidecar at
 *                                      200 µs of CPU per request in its first 5 s of load, 120 µs
 *                                      from the 10th second on; the bare proxy 141 → 99 µs), and
 *                                      a server runs for days: what is measured is the steady state
 *   BENCH_CONNECTIONS (default 10,50)  connections (calls in flight for e0/e1); each count runs every phase
 *   BENCH_PHASES                       which phases, across sections, e.g. "b,c,g0,g1" (default: all)
 *   BENCH_ROUNDS (default 1)           interleaved rounds, the even ones in reverse order; with more than one, medians too
 *   REDIS_URL                          a Redis to use; default: a redis-server started here
 *   BENCH_PIN (default 1)              0: no pinning; else the servers measured run on the last core and the
 *                                      load generator, upstream, Redis and authz service on the first
 *                                      (lib/pin-cores.ts: taskset, when installed)
 *   BENCH_PROFILE=dir                  CPU profile of one gateway, its top functions printed:
 *   BENCH_PROFILE_TARGET               c (default), d, entrances, or b (the bare proxy, to compare)
 *
 * The default run measures 30 phases of 6 s (2.8 minutes: bs and cs at once)
 * after 11 warm-ups of 100,000 requests (10-20 s each; bs and cs are warmed
 * by b and c): about 6 minutes with the build and start-up;
 * the run stops with an error past its planned time plus 2 minutes. If nginx
 * is not installed, n0 and n1 are reported as not run, and the rest runs.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { findNginx } from "../test/support/nginx.js";
import { runNode, runTs, type RunningProcess } from "../test/support/process.js";
import { freePort, startRedisServer } from "../test/support/redis-server.js";
import { childPids } from "./lib/cpu.js";
import { benchCheckRequest, extAuthzCheckCall, extAuthzGuardSection, grpcEchoCall, type CheckedCall } from "./lib/ext-authz.js";
import { runHttpLoad, runLoad, type LoadResult } from "./lib/load.js";
import { runPacedHttpLoad } from "./lib/paced-load.js";
import { pinCores } from "./lib/pin-cores.js";
import { formatMedians, formatPhaseTable, formatRatios, type PhaseRun, type RatioSpec } from "./lib/phase-report.js";
import { issueBenchToken, waitForAuthz } from "./lib/stack-authz.js";
import { createBenchSecrets, writeBenchStackConfig } from "./lib/stack-config.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connectionCounts = (process.env.BENCH_CONNECTIONS ?? "10,50").split(",").map(Number);
const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
const profileDir = process.env.BENCH_PROFILE;
/** The servers measured on one core, the rest on the other (lib/pin-cores.ts); BENCH_PIN=0: the scheduler decides. */
const pinned = process.env.BENCH_PIN !== "0";
/** What drives or backs the servers measured: on the other core when pinned. */
const LOAD_SIDE = new Set(["upstream", "authz", "redis", "load generator"]);
const profileTarget = process.env.BENCH_PROFILE_TARGET ?? "c";
const WARM_UP_SECONDS = 1;
const WARM_REQUESTS = Number(process.env.BENCH_WARM_REQUESTS ?? 100_000);
/** The slowest warm-up rate planned for (ext_authz's Check, nginx + auth_request), requests per second. */
const WARM_RATE_PLANNED = 3_000;
/** Start-up, probes and shutdown on top of the planned phases, before the run is stopped as stuck. */
const RUN_SLACK_MS = 120_000;
const CHECK_PATH = "/.gatehouse/check";

const SECTIONS = [
  { name: "sidecar", keys: ["a", "b", "f", "c", "d"] },
  { name: "sidecar at a fixed rate", keys: ["br", "cr"] },
  { name: "sidecar and bare proxy side by side", keys: ["bs", "cs"], together: true },
  { name: "check endpoint", keys: ["n0", "n1", "g0", "g1"] },
  { name: "ext_authz", keys: ["e0", "e1"] },
] as const;
const ALL_KEYS: readonly string[] = SECTIONS.flatMap((section) => section.keys);

/** The figures of issue 10 (and issue 16's sidecar bar), each against its baseline in the same round. */
const RATIOS: readonly RatioSpec[] = [
  {
    phase: "c",
    baseline: "b",
    what: "the sidecar, cached token, against a bare http-proxy with keep-alive",
    bars: [
      { min: 0.85, source: "issue 10" },
      { min: 0.95, source: "issue 16" },
    ],
  },
  {
    phase: "cs",
    baseline: "bs",
    what: "the sidecar, cached token, against the bare http-proxy, both loaded at once on one core",
    bars: [{ min: 0.95, source: "issue 16" }],
  },
  {
    phase: "cr",
    baseline: "br",
    what: "the sidecar, cached token, against the bare http-proxy, both offered half of (b)'s rate",
    addedP99BarMs: 0.5,
  },
  { phase: "d", baseline: "b", what: "the sidecar with caching off" },
  { phase: "f", baseline: "b", what: "fastify + proxy plugin, no check: the framework's share" },
  { phase: "n1", baseline: "n0", what: "nginx + auth_request to gatehouse, cached, against the same nginx without it" },
  { phase: "g1", baseline: "g0", what: "the check endpoint alone against a bare fastify GET", bars: [{ min: 0.6, source: "issue 10" }] },
  { phase: "e1", baseline: "e0", what: "Check over gRPC, cached, against a bare @grpc/grpc-js unary echo", bars: [{ min: 0.6, source: "issue 10" }] },
];

/** A phase as the run sees it: what serves it, a probe, and a measured run. */
interface Phase {
  readonly key: string;
  readonly name: string;
  readonly servers: readonly string[];
  /** One request; throws unless it is answered 200 (the Check: OK). */
  probe(): Promise<void>;
  /** `requests` requests over 10 connections, not measured: the server's JIT settles (BENCH_WARM_REQUESTS). */
  warm(requests: number): Promise<LoadResult>;
  /** Offered a fixed rate, or measured side by side: warmed by its closed-loop twin (the same server and path) when that runs too. */
  readonly twin?: string;
  run(connections: number, seconds: number, cpu?: Record<string, number | undefined>): Promise<LoadResult>;
}

function selectedKeys(): Set<string> {
  const wanted = (process.env.BENCH_PHASES ?? ALL_KEYS.join(",")).split(",").map((key) => key.trim()).filter((key) => key !== "");
  const unknown = wanted.filter((key) => !ALL_KEYS.includes(key));
  if (unknown.length > 0) throw new Error(`BENCH_PHASES: unknown phase ${unknown.join(", ")} (the phases: ${ALL_KEYS.join(",")})`);
  return new Set(wanted);
}

async function main(): Promise<void> {
  const wanted = selectedKeys();
  /** Phases that cannot run here, with the reason. */
  const notRun = new Map<string, string>();
  if ((wanted.has("n0") || wanted.has("n1")) && findNginx() === undefined) {
    for (const key of ["n0", "n1"]) if (wanted.has(key)) notRun.set(key, "nginx is not installed: apt-get install nginx");
  }
  const runnable = ALL_KEYS.filter((key) => wanted.has(key) && !notRun.has(key));
  /** Whether a process is needed: some phase that runs uses it. */
  const needs = (...keys: string[]) => keys.some((key) => runnable.includes(key));
  const plannedMs = (rounds * connectionCounts.length * runnable.length * (seconds + WARM_UP_SECONDS) + (runnable.length * WARM_REQUESTS) / WARM_RATE_PLANNED) * 1000;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench:guard: still running ${(plannedMs + RUN_SLACK_MS) / 1000} s after its start: stopped`)), plannedMs + RUN_SLACK_MS);
  });
  log(`${runnable.length} phases × ${connectionCounts.join(" and ")} connections × ${rounds} round(s), ${seconds} s each (+${WARM_UP_SECONDS} s warm-up): about ${Math.round(plannedMs / 1000)} s measured`);

  const ownRedis = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? ownRedis!.url;
  const secrets = await createBenchSecrets();
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-guard-"));
  const processes: RunningProcess[] = [];
  const closers: Array<() => void> = [];
  const start = (running: RunningProcess) => (processes.push(running), running);
  try {
    await Promise.race([limit, measureAll()]);
  } finally {
    clearTimeout(timer);
    for (const close of closers) close();
    for (const running of processes.reverse()) await running.stop("SIGTERM");
    await ownRedis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  async function measureAll(): Promise<void> {
    const port = () => freePort();
    const ports = {
      authz: await port(),
      upstream: await port(),
      bareProxy: await port(),
      fastifyProxy: await port(),
      cached: await port(),
      uncached: await port(),
      entrances: await port(),
      extAuthz: await port(),
      bareGet: await port(),
      grpcEcho: await port(),
      plainNginx: await port(),
      guardNginx: await port(),
    };
    const upstream = `127.0.0.1:${ports.upstream}`;
    const config = (name: string, gatewayPort: number, guard: Record<string, unknown>, trustedProxies?: string[]) => {
      const file = writeBenchStackConfig({
        dir,
        name,
        secrets,
        authzPort: ports.authz,
        gatewayPort,
        guard,
        routes: [{ name: "bench", methods: ["GET"], path: "/bench/**", scopes: ["read"], upstream: `http://${upstream}` }],
      });
      if (trustedProxies !== undefined) {
        // The check believes X-Original-* only from trusted proxies: nginx and the load generator are on loopback.
        const parsed = parse(readFileSync(file, "utf8")) as { gateway: Record<string, unknown> };
        parsed.gateway.trustedProxies = trustedProxies;
        writeFileSync(file, stringify(parsed));
      }
      return file;
    };
    const cachedConfig = config("sidecar-cached", ports.cached, { cacheTtlSeconds: 30 });
    const env = { REDIS_URL: redisUrl, ...secrets.env };
    const profile = (target: string) => (profileDir !== undefined && profileTarget === target ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []);

    // The production artefacts (`npm run build`) and the baselines, each in its own process.
    const authz = start(runNode("dist/services/authz/main.js", { env: { ...env, GATEHOUSE_CONFIG: cachedConfig, LOG_LEVEL: "warn" } }));
    const helper = (needed: boolean, entry: string, extra: Record<string, string>, target = "") =>
      needed ? start(runTs(entry, { env: extra, nodeArgs: profile(target) })) : undefined;
    const echo = helper(needs("a", "b", "br", "bs", "f", "c", "cr", "cs", "d", "n0", "n1"), "bench/lib/echo-upstream-main.ts", { PORT: String(ports.upstream) });
    const bare = helper(needs("b", "br", "bs"), "bench/lib/bare-proxy.ts", { PORT: String(ports.bareProxy), TARGET: `http://${upstream}` }, "b");
    const plain = helper(needs("f"), "bench/lib/fastify-proxy.ts", { PORT: String(ports.fastifyProxy), TARGET: `http://${upstream}` });
    const bareGet = helper(needs("g0"), "bench/lib/bare-fastify-get.ts", { PORT: String(ports.bareGet) });
    const grpcEcho = helper(needs("e0"), "bench/lib/grpc-echo-main.ts", { PORT: String(ports.grpcEcho) });
    await Promise.all([waitForAuthz(`http://127.0.0.1:${ports.authz}`), ...[echo, bare, plain, bareGet, grpcEcho].map((p) => p?.waitFor(/listening/))]);
    // The gateways run at their default log level (info), as deployed.
    const gateway = (needed: boolean, file: () => string, target: string) =>
      needed ? start(runNode("dist/gateway/main.js", { env: { ...env, GATEHOUSE_CONFIG: file() }, nodeArgs: profile(target) })) : undefined;
    const cached = gateway(needs("c", "cr", "cs"), () => cachedConfig, "c");
    const uncached = gateway(needs("d"), () => config("sidecar-uncached", ports.uncached, { cacheTtlSeconds: 0 }), "d");
    const entrances = gateway(
      needs("n1", "g1", "e1"),
      () => config("entrances", ports.entrances, { cacheTtlSeconds: 30, ...extAuthzGuardSection(ports.extAuthz) }, ["127.0.0.1"]),
      "entrances",
    );
    await Promise.all([cached, uncached, entrances].map((g) => g?.waitFor(/revocation feed subscribed/)));
    await entrances?.waitFor(/ext_authz Check listening/);
    const nginxEnv = { UPSTREAM: upstream, GATEHOUSE: `127.0.0.1:${ports.entrances}`, CHECK_PATH };
    const plainNginx = helper(needs("n0"), "bench/lib/nginx-main.ts", { ...nginxEnv, PORT: String(ports.plainNginx), PLAIN: "1" });
    const guardNginx = helper(needs("n1"), "bench/lib/nginx-main.ts", { ...nginxEnv, PORT: String(ports.guardNginx) });
    await Promise.all([plainNginx, guardNginx].map((p) => p?.waitFor(/listening/)));

    const token = await issueBenchToken(`http://127.0.0.1:${ports.authz}`, secrets);
    // Every sidecar phase sends the very same request, token included: the phases differ only in what serves it.
    const bearer = { authorization: `Bearer ${token}` };
    const checkHeaders = { ...bearer, "x-original-method": "GET", "x-original-uri": "/bench/x" };
    const checkRequest = benchCheckRequest(token);

    // What each phase's CPU is read from; everything else on the machine is the foreign load.
    const nginxPids = (wrapper: RunningProcess | undefined, name: string) => {
      if (wrapper?.child.pid === undefined) return {};
      const masters = childPids(wrapper.child.pid, "nginx");
      const workers = masters.flatMap((master) => childPids(master, "nginx"));
      return { [name]: workers[0], [`${name} master`]: masters[0], [`${name} wrapper`]: wrapper.child.pid };
    };
    const pids: Record<string, number | undefined> = {
      upstream: echo?.child.pid,
      "bare proxy": bare?.child.pid,
      "fastify proxy": plain?.child.pid,
      "gateway (c)": cached?.child.pid,
      "gateway (d)": uncached?.child.pid,
      "gateway (entrances)": entrances?.child.pid,
      "bare fastify GET": bareGet?.child.pid,
      "grpc echo": grpcEcho?.child.pid,
      ...nginxPids(plainNginx, "nginx (n0)"),
      ...nginxPids(guardNginx, "nginx (n1)"),
      authz: authz.child.pid,
      redis: ownRedis?.pid,
      "load generator": process.pid,
    };
    for (const [name, pid] of Object.entries(pids)) if (pid === undefined) delete pids[name];
    if (pinned) {
      const served = Object.fromEntries(Object.entries(pids).filter(([name]) => !LOAD_SIDE.has(name))) as Record<string, number>;
      const others = Object.fromEntries(Object.entries(pids).filter(([name]) => LOAD_SIDE.has(name))) as Record<string, number>;
      log(pinCores(served, others));
    }

    /** The rate (br) and (cr) are offered: half of what (b) carried at this connection count, in this round. */
    let fixedRate: number | undefined;
    const http = (key: string, name: string, servers: string[], url: string, headers: Record<string, string>, mode: "closed" | "paced" | "side by side" = "closed"): Phase => ({
      key,
      name,
      servers,
      async probe() {
        const response = await fetch(url, { headers });
        if (response.status !== 200) throw new Error(`(${key}) ${url} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
      },
      warm: (requests) => runHttpLoad(`${name} (JIT warm-up)`, { url, method: "GET", connections: 10, seconds: 600, headers, maxRequests: requests }),
      ...(mode === "closed" ? {} : { twin: key.slice(0, 1) }),
      run(connections, phaseSeconds, cpu) {
        const openLoop = mode === "paced";
        if (openLoop && fixedRate === undefined) throw new Error(`(${key}) needs phase b in the same run: its rate is half of b's`);
        if (openLoop) return runPacedHttpLoad(name, { url, connections, seconds: phaseSeconds, rate: fixedRate!, headers, ...(cpu === undefined ? {} : { cpu }) });
        return runHttpLoad(name, { url, method: "GET", connections, seconds: phaseSeconds, headers, subMillisecond: true, ...(cpu === undefined ? {} : { cpu }) });
      },
    });
    const grpc = (key: string, name: string, servers: string[], open: () => CheckedCall): Phase => {
      const channel = open();
      closers.push(() => channel.close());
      return {
        key,
        name,
        servers,
        probe: () => channel.call().catch((error: unknown) => Promise.reject(new Error(`(${key}) ${String(error)}`))),
        warm: (requests) => {
          let started = 0;
          return runLoad(`${name} (JIT warm-up)`, { concurrency: 10, seconds: 600, stopWhen: () => started >= requests }, () => (started++, channel.call()));
        },
        run: (connections, phaseSeconds, cpu) => runLoad(name, { concurrency: connections, seconds: phaseSeconds, ...(cpu === undefined ? {} : { cpu }) }, () => channel.call()),
      };
    };
    const local = (port: number, path = "/bench/x") => `http://127.0.0.1:${port}${path}`;
    const define: Record<string, () => Phase> = {
      a: () => http("a", "(a) upstream directly", ["upstream"], local(ports.upstream), bearer),
      b: () => http("b", "(b) bare http-proxy, keep-alive", ["bare proxy"], local(ports.bareProxy), bearer),
      f: () => http("f", "(f) fastify + proxy plugin, no check", ["fastify proxy"], local(ports.fastifyProxy), bearer),
      c: () => http("c", "(c) sidecar, cached token", ["gateway (c)"], local(ports.cached), bearer),
      d: () => http("d", "(d) sidecar, caching off", ["gateway (d)"], local(ports.uncached), bearer),
      br: () => http("br", "(br) bare http-proxy, fixed rate", ["bare proxy"], local(ports.bareProxy), bearer, "paced"),
      cr: () => http("cr", "(cr) sidecar, cached, fixed rate", ["gateway (c)"], local(ports.cached), bearer, "paced"),
      bs: () => http("bs", "(bs) bare http-proxy, beside (cs)", ["bare proxy"], local(ports.bareProxy), bearer, "side by side"),
      cs: () => http("cs", "(cs) sidecar, cached, beside (bs)", ["gateway (c)"], local(ports.cached), bearer, "side by side"),
      n0: () => http("n0", "(n0) nginx proxying, no auth_request", ["nginx (n0)"], local(ports.plainNginx), bearer),
      n1: () => http("n1", "(n1) nginx + auth_request, cached", ["nginx (n1)", "gateway (entrances)"], local(ports.guardNginx), bearer),
      // The same request to both: the bare GET ignores what the check reads.
      g0: () => http("g0", "(g0) bare fastify GET", ["bare fastify GET"], local(ports.bareGet, CHECK_PATH), checkHeaders),
      g1: () => http("g1", "(g1) check endpoint, cached", ["gateway (entrances)"], local(ports.entrances, CHECK_PATH), checkHeaders),
      e0: () => grpc("e0", "(e0) bare grpc-js unary echo", ["grpc echo"], () => grpcEchoCall(`127.0.0.1:${ports.grpcEcho}`, checkRequest)),
      e1: () => grpc("e1", "(e1) ext_authz Check, cached", ["gateway (entrances)"], () => extAuthzCheckCall(`127.0.0.1:${ports.extAuthz}`, checkRequest)),
    };
    const phases = new Map(runnable.map((key) => [key, define[key]!()]));
    // Each phase once, by condition, before anything is measured: the first Check and check also fill the caches.
    for (const phase of phases.values()) await phase.probe();
    if (WARM_REQUESTS > 0) {
      log(`JIT warm-up: ${WARM_REQUESTS} requests to each phase's server ...`);
      for (const phase of phases.values()) {
        if (phase.twin !== undefined && phases.has(phase.twin)) continue;
        const warmed = await phase.warm(WARM_REQUESTS);
        if (warmed.errors > 0) throw new Error(`(${phase.key}) ${warmed.errors} warm-up requests failed: ${warmed.firstError}`);
        log(`  (${phase.key}) ${warmed.requests} requests in ${warmed.seconds.toFixed(1)} s`);
      }
    }

    log(`loopback; nginx 1 worker; processes: ${Object.entries(pids).map(([name, pid]) => `${name} ${pid}`).join(", ")}`);
    const runs: PhaseRun[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const connections of connectionCounts) {
        for (const section of SECTIONS) {
          const sectionRuns: PhaseRun[] = [];
          // Even rounds run a section's phases in reverse: whatever favours a position in the round
          // (the load generator's own heap, the host's drift) then falls on each side alike.
          const order = round % 2 === 0 ? [...section.keys].reverse() : section.keys;
          const selected = order.flatMap((key) => (phases.has(key) ? [[key, phases.get(key)!] as const] : []));
          // A section marked `together` runs its phases at the same time, each with its own connections (see "side by side" above).
          if ("together" in section) {
            // Warmed and measured at the same time; each one's CPU per request is its own (the others serve beside it).
            await Promise.all(selected.map(([, phase]) => phase.run(connections, WARM_UP_SECONDS)));
            const results = await Promise.all(selected.map(([, phase]) => phase.run(connections, seconds, pids)));
            selected.forEach(([key, phase], i) => {
              const beside = selected.filter(([other]) => other !== key).flatMap(([, other]) => other.servers);
              sectionRuns.push({ key, section: section.name, connections, round, servers: phase.servers, beside, result: results[i]! });
            });
          } else {
            for (const [key, phase] of selected) {
              await phase.run(connections, WARM_UP_SECONDS);
              const result = await phase.run(connections, seconds, pids);
              if (key === "b") fixedRate = result.rps / 2;
              sectionRuns.push({ key, section: section.name, connections, round, servers: phase.servers, result });
            }
          }
          const skipped = section.keys.filter((key) => notRun.has(key));
          if (sectionRuns.length === 0 && skipped.length === 0) continue;
          runs.push(...sectionRuns);
          const title = `${rounds > 1 ? `round ${round} of ${rounds}, ` : ""}${section.name}, ${connections} connections${section.name === "ext_authz" ? " (calls in flight on one channel)" : ""}`;
          out(
            [
              `\n${title}`,
              ...(sectionRuns.length > 0 ? [formatPhaseTable(sectionRuns)] : []),
              ...skipped.map((key) => `  (${key}) not run: ${notRun.get(key)}`),
              formatRatios(sectionRuns, RATIOS.filter((spec) => (section.keys as readonly string[]).includes(spec.phase)), notRun),
            ]
              .filter((text) => text !== "")
              .join("\n"),
          );
        }
      }
    }
    if (rounds > 1) out(`\n${formatMedians(runs, RATIOS)}`);

    if (profileDir !== undefined) {
      const target = { b: bare, c: cached, d: uncached, entrances }[profileTarget];
      if (target !== undefined) {
        await target.stop("SIGTERM");
        out(`\n${summariseProfile(profileDir)}`);
      }
    }
    // A paced phase that fell behind its pace measured a queue: it fails too (its firstError says so).
    const failed = runs.filter((run) => run.result.errors > 0 || run.result.requests === 0 || run.result.firstError !== undefined);
    if (failed.length > 0) {
      process.exitCode = 1;
      out(`\nFAILED: ${failed.map((run) => `(${run.key}) at ${run.connections} connections: ${run.result.errors} errors${run.result.firstError === undefined ? "" : `, first: ${run.result.firstError}`}`).join("; ")}`);
    }
  }
}

/** The functions with the most self time in the newest CPU profile in `dir`. */
function summariseProfile(dir: string): string {
  const file = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).sort().at(-1);
  if (file === undefined) return "no profile written";
  const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const id of profile.samples) {
    const frame = byId.get(id)!.callFrame;
    const key = `${frame.functionName || "(anonymous)"} ${frame.url.replace(/^.*node_modules\//, "~/").replace(/^file:\/\/.*\/(dist|gateway)\//, "$1/")}:${frame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length;
  const top = [...self.entries()].sort((x, y) => y[1] - x[1]).slice(0, 30);
  return [`CPU profile ${join(dir, file)} (${total} samples), top self time:`, ...top.map(([k, n]) => `  ${((100 * n) / total).toFixed(1).padStart(5)}%  ${k}`)].join("\n");
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function log(message: string): void {
  process.stderr.write(`bench:guard: ${message}\n`);
}

await main();
