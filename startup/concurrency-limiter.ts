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

interface Waiter {
  grant: (release: (() => void) | undefined) => void;
  timer: NodeJS.Timeout;
}

/** Builds a limiter; `acquire` is synchronous when a slot is free (the common case costs no promise). */
export function createConcurrencyLimiter(limits: ConcurrencyLimits): ConcurrencyLimiter {
  let active = 0;
  const waiting: Waiter[] = [];

  const releaser = () => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = waiting.shift();
      if (next === undefined) {
        active--;
        return;
      }
      // The slot passes straight to the first waiter: `active` stays the same.
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
      return new Promise((resolve) => {
        const waiter: Waiter = {
          grant: resolve,
          timer: setTimeout(() => {
            const at = waiting.indexOf(waiter);
            if (at !== -1) waiting.splice(at, 1);
            resolve(undefined);
          }, Math.min(maxWaitMs, limits.queueTimeoutMs)),
        };
        waiting.push(waiter);
      });
    },
  };
}
