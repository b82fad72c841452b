/**
 * The guard's decision pipeline (DESIGN.md, "The guard is a decision
 * pipeline"): a description of a request in, a decision out. It knows no
 * framework, no `node:http` objects and no proxy; its entrances translate
 * to and from it:
 *
 *   - the sidecar proxy (gateway/plugins/guard.ts), which proxies what is allowed;
 *   - the HTTP check endpoint for nginx `auth_request`, Traefik `forwardAuth`
 *     and Caddy `forward_auth`;
 *   - Envoy's external authorization `Check` over gRPC.
 *
 * Deny by default: normalise the target once → exactly one rule matches
 * (none or two: refuse) → authenticate the bearer token → authorize (scope,
 * audience) → the identity headers to write and the caller's copies to strip.
 *
 * This file states the contract the entrances are written against; the
 * implementation is `createGuardPipeline`.
 */
import type { GuardOutcome } from "../metrics.js";
import type { Principal } from "./introspection-cache.js";

/** Header fields as Node gives them: lower-case names. */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** What an entrance knows of the request it asks about. */
export interface GuardRequest {
  /** The request method, as sent. */
  readonly method: string;
  /** The request target as received (origin-form: path and query); the pipeline normalises it. */
  readonly target: string;
  /** The request's header fields (lower-case names). */
  readonly headers: RequestHeaders;
  /**
   * The header fields as sent, name and value alternating (Node's rawHeaders),
   * where the entrance has them: a repeated Authorization field is refused.
   */
  readonly rawHeaders?: readonly string[];
  /** The TCP peer of the original request, as far as the entrance can tell. */
  readonly peer: string;
  /** A WebSocket handshake (GET with `Upgrade: websocket`). */
  readonly websocket: boolean;
  /** Logged with every entry and sent upstream as X-Request-Id. */
  readonly requestId: string;
}

/** The request may not pass: the response to give, complete (status, headers, body). */
export interface Refusal {
  readonly kind: "refuse";
  /** The route's name, or "(none)" when no route matched. */
  readonly route: string;
  readonly outcome: GuardOutcome;
  readonly status: number;
  /** RFC 6750 §3: WWW-Authenticate on every refusal of a bearer request, Retry-After on 503, ... */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The request may pass, with these changes to its header fields. */
export interface Allowance {
  readonly kind: "allow";
  /** The route's name, or "(passthrough)" for unmatched requests let through by configuration. */
  readonly route: string;
  readonly outcome: "allowed" | "passthrough";
  /** The verified principal; undefined for passthrough. */
  readonly principal: Principal | undefined;
  /** The normalised path that was checked, and the query as it came: what the upstream must be sent. */
  readonly path: string;
  readonly search: string;
  /** The upstream URL of the route (the sidecar proxies to it; the other entrances ignore it). */
  readonly upstream: string;
  /** Header fields to set, lower-case names (identity headers, X-Request-Id, ...). */
  readonly setHeaders: Readonly<Record<string, string>>;
  /** Header fields to remove (the caller's copies of identity headers, path-rewriting headers, ...). */
  readonly removeHeaders: readonly string[];
}

export type GuardDecision = Refusal | Allowance;

/** The guard's decision for one request; synchronous when the token's check was cached. */
export interface GuardPipeline {
  decide(request: GuardRequest): GuardDecision | Promise<GuardDecision>;
}
