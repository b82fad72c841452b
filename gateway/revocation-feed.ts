import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { WatchRevocationsResponse } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { DEFAULT_TENANT } from "../startup/tenant-name.js";

/**
 * What a revocation names: one access token, or a whole grant (refresh
 * family), or (issue 12) a resource owner of a tenant whose rights or state
 * changed: every cached result of their tokens is stale. A tenant as the
 * guard names it (DEFAULT_TENANT for the top level's).
 */
export type RevocationTarget = { readonly jti: string } | { readonly grantId: string } | { readonly subject: string; readonly tenant: string };

export interface RevocationListener {
  /** Evict what the revocation names. */
  revoked(target: RevocationTarget): void;
  /** A (re)subscription started: anything cached before it may have missed revocations. */
  subscribed(): void;
}

/**
 * The gateway's subscription to WatchRevocations. While it is live, every
 * revocation made at any authz replica reaches the listeners within
 * milliseconds, and a cached introspection result can be trusted until its
 * TTL. It is live from the `subscribed` event until the stream ends, fails, or
 * stays silent (no event, no heartbeat) for two heartbeat intervals; then it
 * reconnects with backoff and, on the next `subscribed`, listeners flush.
 */
export interface RevocationFeed {
  /** True while revocations are being delivered. */
  isLive(now: number): boolean;
  /** Changes on every revocation, subscription and outage. */
  readonly generation: number;
  addListener(listener: RevocationListener): () => void;
  start(): void;
  stop(): Promise<void>;
}

export interface RevocationFeedMetrics {
  up(live: boolean): void;
  revocation(kind: "jti" | "grant_id" | "subject"): void;
  reconnect(): void;
}

export interface RevocationFeedOptions {
  /** Opens the stream; aborting the signal ends it. */
  watch: (signal: AbortSignal) => AsyncIterable<WatchRevocationsResponse>;
  clock: () => number;
  log: Logger;
  metrics: RevocationFeedMetrics;
  /** First reconnection delay; doubles up to maxBackoffMs, with jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** How often the liveness of the stream is checked (real time; it compares clock() readings). */
  checkIntervalMs?: number;
}

/** Used until the `subscribed` event says otherwise. */
const DEFAULT_HEARTBEAT_MS = 10_000;

export function createRevocationFeed(options: RevocationFeedOptions): RevocationFeed {
  const { clock, log, metrics } = options;
  const initialBackoffMs = options.initialBackoffMs ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5_000;
  const listeners = new Set<RevocationListener>();
  let live = false;
  let generation = 0;
  let lastEventAt = 0;
  let silenceLimitMs = 2 * DEFAULT_HEARTBEAT_MS;
  let stopped = true;
  let current: AbortController | undefined;
  let loop: Promise<void> | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let wakeUp: (() => void) | undefined;

  const setLive = (value: boolean) => {
    if (live === value) return;
    live = value;
    generation++;
    metrics.up(value);
  };

  const isLive = (now: number) => live && now - lastEventAt <= silenceLimitMs;

  const run = async () => {
    let attempt = 0;
    while (!stopped) {
      const controller = new AbortController();
      current = controller;
      try {
        for await (const message of options.watch(controller.signal)) {
          lastEventAt = clock();
          const event = message.event;
          if (event.case === "subscribed") {
            const seconds = Number(event.value.heartbeatInterval);
            silenceLimitMs = 2 * (seconds > 0 ? seconds * 1000 : DEFAULT_HEARTBEAT_MS);
            // Whatever was cached before may have missed revocations: flush, then trust again.
            generation++;
            for (const listener of listeners) listener.subscribed();
            setLive(true);
            attempt = 0;
            log.info({ heartbeatSeconds: seconds }, "revocation feed subscribed");
          } else if (event.case === "revocation") {
            generation++;
            const target = event.value.target;
            if (target.case === "jti") {
              metrics.revocation("jti");
              for (const listener of listeners) listener.revoked({ jti: target.value });
            } else if (target.case === "grantId") {
              metrics.revocation("grant_id");
              for (const listener of listeners) listener.revoked({ grantId: target.value });
            } else if (target.case === "subject") {
              metrics.revocation("subject");
              // A subject is a user of one tenant: the same name in another tenant is someone else.
              const tenant = event.value.tenant === "" ? DEFAULT_TENANT : event.value.tenant;
              for (const listener of listeners) listener.revoked({ subject: target.value, tenant });
            }
          }
        }
        if (!stopped) log.warn("revocation feed: the stream ended; cached introspections are not trusted until it is back");
      } catch (error) {
        if (!stopped && !controller.signal.aborted) {
          const code = error instanceof ConnectError ? Code[error.code] : undefined;
          log.warn({ code, reason: error instanceof Error ? error.message : String(error) }, "revocation feed: the stream failed; cached introspections are not trusted until it is back");
        }
      }
      setLive(false);
      if (stopped) break;
      metrics.reconnect();
      const delay = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(attempt++, 16));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay * (0.8 + 0.4 * Math.random()));
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeUp = undefined;
    }
  };

  return {
    isLive,
    get generation() {
      return generation;
    },
    addListener(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start() {
      if (!stopped) return;
      stopped = false;
      loop = run();
      // A stream can break without a word (a dead peer behind a NAT): heartbeats prove it is alive.
      watchdog = setInterval(() => {
        if (live && !isLive(clock())) {
          log.warn({ silentForMs: clock() - lastEventAt }, "revocation feed: no heartbeat for two intervals; resubscribing");
          setLive(false);
          current?.abort();
        }
      }, options.checkIntervalMs ?? 500);
      watchdog.unref();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(watchdog);
      current?.abort();
      wakeUp?.();
      await loop;
      setLive(false);
    },
  };
}
