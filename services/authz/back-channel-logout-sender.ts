import type { Logger } from "pino";
import type { BackChannelLogout, LogoutTokenDelivery } from "./oauth/back-channel-logout.js";

/** What became of one Logout Token: delivered, retried after a failed attempt, failed for good, or dropped (too many in flight). */
export type BackChannelLogoutOutcome = "delivered" | "retried" | "failed" | "dropped";

export interface BackChannelLogoutSender extends BackChannelLogout {
  /** Calls `listener` with each outcome (the metrics). */
  observe(listener: (outcome: BackChannelLogoutOutcome) => void): void;
  /** Resolves when nothing is in flight (tests; draining). */
  idle(): Promise<void>;
  /** Abandons what is in flight. */
  close(): void;
}

export interface BackChannelLogoutSenderOptions {
  log: Logger;
  /** Each attempt's limit, connection to response. */
  timeoutMs?: number;
  /** Attempts per token, the first included. */
  attempts?: number;
  /** Wait before the n-th retry: backoffMs × 2^(n-1). */
  backoffMs?: number;
  /** Deliveries in flight at most; more are dropped (and counted), never queued without bound. */
  maxInFlight?: number;
  /** Waits between attempts (a dependency, so tests need not wait). */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Posts Logout Tokens to clients' back-channel logout URIs (OpenID Connect
 * Back-Channel Logout 1.0 §2.5: `application/x-www-form-urlencoded`,
 * `logout_token`), in the background: the user's logout never waits for it. An attempt that fails (no answer within the timeout, a network
 * error, a status other than 200/204) is retried with exponential backoff;
 * a 400 is the client refusing the token (§2.8) and is not retried.
 * Redirects are not followed. Failures are logged and counted.
 */
export function createBackChannelLogoutSender(options: BackChannelLogoutSenderOptions): BackChannelLogoutSender {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const attempts = options.attempts ?? 3;
  const backoffMs = options.backoffMs ?? 1_000;
  const maxInFlight = options.maxInFlight ?? 1_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref()));
  const listeners: Array<(outcome: BackChannelLogoutOutcome) => void> = [];
  const inFlight = new Set<Promise<void>>();
  const closing = new AbortController();
  const emit = (outcome: BackChannelLogoutOutcome) => {
    for (const listener of listeners) listener(outcome);
  };

  async function attempt(delivery: LogoutTokenDelivery): Promise<"ok" | "refused" | string> {
    try {
      const response = await fetch(delivery.uri, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "cache-control": "no-store" },
        body: new URLSearchParams({ logout_token: delivery.logoutToken }).toString(),
        redirect: "manual",
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), closing.signal]),
      });
      await response.body?.cancel();
      if (response.status === 200 || response.status === 204) return "ok";
      if (response.status === 400) return "refused";
      return `status ${response.status}`;
    } catch (error) {
      return (error as Error).name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : (error as Error).message;
    }
  }

  async function send(delivery: LogoutTokenDelivery): Promise<void> {
    let problem = "";
    for (let n = 1; n <= attempts && !closing.signal.aborted; n++) {
      const result = await attempt(delivery);
      if (result === "ok") return emit("delivered");
      if (result === "refused") {
        problem = "the client refused the logout token (400)";
        break;
      }
      problem = result;
      if (n < attempts) {
        emit("retried");
        await sleep(backoffMs * 2 ** (n - 1));
      }
    }
    emit("failed");
    options.log.warn({ clientId: delivery.clientId, uri: delivery.uri, problem }, "back-channel logout not delivered");
  }

  return {
    deliver(delivery) {
      if (inFlight.size >= maxInFlight) {
        emit("dropped");
        options.log.warn({ clientId: delivery.clientId }, "back-channel logout dropped: too many in flight");
        return;
      }
      const running = send(delivery).finally(() => inFlight.delete(running));
      inFlight.add(running);
    },
    observe(listener) {
      listeners.push(listener);
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    close() {
      closing.abort();
    },
  };
}
