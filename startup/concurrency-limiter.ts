/**
 * A bounded concurrency limit with a short bounded queue: the deliberate
 * shedding point of a process beyond saturation. Past saturation more
 * concurrent work only adds latency (Little's law: in flight = throughput ×
 * latency), so a request that would wait longer than the queue allows is
 * refused at once, cheaply and visibly, instead of timing out at its caller.
 * Used by the authz service (both RPC paths) and by the gateway's endpoints.
 */
export interface ConcurrencyLimiter {
  /**
   * A slot, now or after a short wait in the queue; resolves to the function
   * that frees it (idempotent), or to undefined when the request is shed:
   * the queue is full, or the slot did not come within the queue's wait.
   */
  acquire(maxWaitMs?: number): Promise<(() => void) | undefined> | (() => void) | undefined;
  /** Requests holding a slot. */
  inFlight(): number;
  /** Requests waiting for one. */
  queued(): number;
}

export interface ConcurrencyLimits {
  /** Requests served at once. */
  maxConcurrent: number;
  /** Requests that may wait for a slot; the next one is shed. */
  maxQueue: number;
  /** The longest a request waits in the queue before it is shed. */
  queueTimeoutMs: number;
}

/**
 * A queue that has not been empty for this long is standing (CoDel's
 * interval): the process is past saturation, not riding out a burst.
 */
export const STANDING_QUEUE_MS = 100;

interface Waiter {
  grant: (release: (() => void) | undefined) => void;
  timer: NodeJS.Timeout;
}

/**
 * Builds a limiter; `acquire` is synchronous when a slot is free (the common
 * case costs no promise). `now` (ms) tells time; a dependency, for tests.
 *
 * The queue is first-in first-out while it drains: a burst is served in
 * order. Once it stands (not empty for STANDING_QUEUE_MS), it turns
 * last-in first-out and new waiters get a tenth of the wait (CoDel's target,
 * and the adaptive LIFO of "Fail at Scale", ACM Queue 13(8), 2015): the
 * newest request still has its whole deadline ahead of it, the oldest would
 * likely be answered after its client gave up. Without that, a queue full of
 * requests that time out before a slot comes serves nobody: at five times the
 * saturation rate a FIFO queue answered every request 503 here (bench:token).
 */
export function createConcurrencyLimiter(limits: ConcurrencyLimits, now: () => number = performance.now.bind(performance)): ConcurrencyLimiter {
  let active = 0;
  const waiting: Waiter[] = [];
  /** The last time the queue was seen empty. */
  let emptyAt = now();
  const standing = () => waiting.length > 0 && now() - emptyAt >= STANDING_QUEUE_MS;

  const releaser = () => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = standing() ? waiting.pop() : waiting.shift();
      if (waiting.length === 0) emptyAt = now();
      if (next === undefined) {
        active--;
        return;
      }
      // The slot passes straight to the waiter: `active` stays the same.
      clearTimeout(next.timer);
      next.grant(releaser());
    };
  };

  return {
    inFlight: () => active,
    queued: () => waiting.length,
    acquire(maxWaitMs = limits.queueTimeoutMs) {
      if (active < limits.maxConcurrent) {
        active++;
        return releaser();
      }
      if (waiting.length >= limits.maxQueue || maxWaitMs <= 0) return undefined;
      if (waiting.length === 0) emptyAt = now();
      const waitMs = Math.min(maxWaitMs, standing() ? Math.max(1, limits.queueTimeoutMs / 10) : limits.queueTimeoutMs);
      return new Promise((resolve) => {
        const waiter: Waiter = {
          grant: resolve,
          timer: setTimeout(() => {
            const at = waiting.indexOf(waiter);
            if (at !== -1) waiting.splice(at, 1);
            if (waiting.length === 0) emptyAt = now();
            resolve(undefined);
          }, waitMs),
        };
        waiting.push(waiter);
      });
    },
  };
}
