import { Agent, request } from "node:http";
import { percentile, startMeasuring, type LoadResult } from "./load.js";

/** One paced phase: GETs (or bodyless requests of `method`) to `url`, each sent at its own time. */
export interface PacedLoadOptions {
  url: string;
  /** Keep-alive connections: at most this many requests in flight. */
  connections: number;
  seconds: number;
  /** Requests per second, spread evenly over the phase. */
  rate: number;
  method?: string;
  headers: Record<string, string>;
  /** Processes whose CPU is measured (name -> pid); the foreign load excludes them. */
  cpu?: Record<string, number | undefined>;
}

/** How often the pacer looks at the clock (Node's timers fire at about a millisecond at best). */
const TICK_MS = 1;

/**
 * Open-loop load at an even pace, as wrk2 offers it: request k is due at
 * start + k / rate and is sent at the first tick of the pacer after that
 * (about a millisecond apart) on an idle connection, or as soon as one is
 * free; its latency is counted from that tick, so a server that falls behind
 * is charged for the wait it caused (no coordinated omission).
 *
 * autocannon's `overallRate` is not this: it gives each connection a quota
 * per second, which the connection spends back to back from the start of the
 * second and then waits out, so half the rate is saturation for half of each
 * second and silence for the rest, and its latencies are the saturated
 * queue's (at 50 connections, 50 requests' service times). Sent within a
 * tick of their time here, requests meet a queue only when the server is
 * slower than the pace, and p99 shows what the server adds per request.
 *
 * Every response must be 200; anything else, a socket error or a response
 * that never ends counts as an error (the first described).
 */
export async function runPacedHttpLoad(name: string, options: PacedLoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections, scheduling: "fifo" });
  const target = new URL(options.url);
  const requestOptions = {
    agent,
    hostname: target.hostname,
    port: target.port,
    path: `${target.pathname}${target.search}`,
    method: options.method ?? "GET",
    headers: options.headers,
  };
  const measured = startMeasuring(options.cpu);
  const intervalMs = 1000 / options.rate;
  const total = Math.floor(options.rate * options.seconds);
  const latencies: number[] = [];
  /** When the requests that found every connection busy were due, oldest first. */
  const backlog: number[] = [];
  let inFlight = 0;
  let due = 0;
  let settled = 0;
  let errors = 0;
  let firstError: string | undefined;
  let maxBacklog = 0;

  const started = performance.now();
  await new Promise<void>((resolve) => {
    if (total === 0) return resolve();
    const done = () => {
      settled++;
      inFlight--;
      const next = backlog.shift();
      if (next !== undefined) send(next);
      if (settled === total) resolve();
    };
    const fail = (problem: string) => {
      errors++;
      firstError ??= problem;
      done();
    };
    const send = (dueAt: number) => {
      inFlight++;
      let over = false;
      // Each request ends once: answered, or failed (whichever comes first).
      const end = (problem: string | undefined) => {
        if (over) return;
        over = true;
        if (problem === undefined) {
          latencies.push(performance.now() - dueAt);
          done();
        } else fail(problem);
      };
      const outgoing = request(requestOptions, (response) => {
        response.resume();
        response.once("end", () => end(response.statusCode === 200 ? undefined : `answered ${response.statusCode}`));
        response.once("error", (error) => end(error.message));
      });
      outgoing.once("error", (error) => end(error.message));
      outgoing.end();
    };
    const tick = () => {
      const now = performance.now();
      // Every request whose time has come, in order.
      // (Counted from this tick, not from each request's exact time: the timer's own lateness, up to a
      // millisecond or so, is the load generator's, not the server's.)
      while (due < total && started + due * intervalMs <= now) {
        due++;
        if (inFlight < options.connections) send(now);
        else backlog.push(now);
      }
      maxBacklog = Math.max(maxBacklog, backlog.length);
      if (due < total) setTimeout(tick, TICK_MS);
    };
    tick();
  });
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  const ok = latencies.length;
  const problems = [
    ...(errors > 0 ? [`${errors} errors, first: ${firstError}`] : []),
    // The server could not keep the pace: the figures are a growing queue's, not the added latency.
    // (A short stall that a few requests wait out is in the latencies, counted from their tick.)
    ...(ok / elapsed < 0.95 * options.rate ? [`fell behind the pace: ${ok} of ${total} requests answered in ${elapsed.toFixed(1)} s (at most ${maxBacklog} waited for a connection)`] : []),
  ];
  return {
    name,
    requests: ok,
    sent: total,
    errors,
    seconds: elapsed,
    rps: ok / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    ...(problems.length > 0 ? { firstError: problems.join("; ") } : {}),
    ...measured(ok),
  };
}
