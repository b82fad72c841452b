import proxyAddr from "@fastify/proxy-addr";
import { bearerFailureResponse, type ErrorResponse } from "../oauth-error-response.js";
import { compileTrustedProxies } from "../trusted-proxies.js";
import type { IdentityHeaderNames } from "../guard/mutate.js";
import type { GuardDecision, GuardRequest, RequestHeaders } from "../guard/pipeline.js";

/**
 * Entrance 2 of the guard (gateway/guard/pipeline.ts): the HTTP check
 * endpoint that nginx `auth_request`, Traefik `forwardAuth` and Caddy
 * `forward_auth` call before they let a request through. This module only
 * translates, without a framework: the check request's header fields into the
 * GuardRequest they describe, and the pipeline's decision into the check's
 * answer. gateway/plugins/check-endpoint.ts wires it to fastify.
 *
 * The original request is described by header fields:
 *   - nginx (the `auth_request` subrequest carries the client's header fields;
 *     the configuration adds):  X-Original-Method, X-Original-URI;
 *   - Traefik and Caddy:        X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host.
 * They are believed only from `trustedProxies`: anyone else could describe a
 * request it never sends. Both proxies also pass the client's own header
 * fields on, so a client can add the other proxy's pair: a check request
 * carrying both pairs, or one of them twice, is refused rather than read one
 * way (the nginx configuration in the README clears Traefik's pair).
 *
 * The answer:
 *   - allowed: 200, no body, the identity header fields to copy onto the
 *     upstream request, `X-Gatehouse-Target`, the normalised target that was
 *     checked (nginx proxies to it, as the sidecar does), and on routes with
 *     forwardAuthorization `X-Gatehouse-Authorization`, the Authorization
 *     field to keep (the proxy removes the caller's otherwise);
 *   - refused: 401 or 403 with `WWW-Authenticate: Bearer ...` (RFC 6750 §3),
 *     503 when the token cannot be checked now (never a pass), 500 when the
 *     route table is ambiguous (a configuration error).
 * nginx passes only 401 and 403 through; any other status from the check is
 * an error to it and the client gets 500. So what the sidecar answers 400
 * (a path trick, a malformed credential, a missing description) is 403 here,
 * with the `invalid_request` challenge; and a request that no route covers,
 * a 404 at the sidecar, is 403 `insufficient_scope` here: deny by default,
 * and no token, however scoped, opens a path that no rule names — a 401
 * would invite the client to authenticate and retry for nothing.
 */

export interface CheckEntranceOptions {
  /** config.trustedProxies: the only peers whose description of a request is believed. */
  readonly trustedProxies: readonly string[];
  /** RFC 6750 §3 realm of the check's own refusals. */
  readonly realm: string;
  /** The identity header fields the pipeline writes; the check copies exactly these into its 200. */
  readonly identityHeaders: IdentityHeaderNames;
}

/** The check request as the entrance needs it (from Node's request, whatever the framework). */
export interface CheckRequest {
  /** Lower-case names, as Node gives them. */
  readonly headers: RequestHeaders;
  /** Name and value alternating, as sent (Node's rawHeaders). */
  readonly rawHeaders: readonly string[];
  /** The TCP peer of the check request: the proxy. */
  readonly peer: string;
  readonly requestId: string;
}

/** The check's answer, complete. */
export interface CheckAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type CheckDescription =
  /** Ask the pipeline about this request. */
  | { readonly kind: "ask"; readonly request: GuardRequest }
  /** Answered without the pipeline: the check request itself cannot be believed or read. */
  | { readonly kind: "answer"; readonly answer: CheckAnswer };

export interface CheckEntrance {
  /** The original request the check request describes, or the refusal when it describes none credibly. */
  describe(check: CheckRequest): CheckDescription;
  /** The pipeline's decision about `request` (from `describe`) as the check's answer. */
  answer(decision: GuardDecision, request: GuardRequest): CheckAnswer;
}

/** Header field that tells nginx where to proxy: the normalised target that was checked. */
export const CHECKED_TARGET_HEADER = "x-gatehouse-target";
/** Header field with the Authorization to forward, on routes with forwardAuthorization only. */
export const FORWARDED_AUTHORIZATION_HEADER = "x-gatehouse-authorization";
/**
 * Fields of the check request that are not the original request's: its
 * description, and the proxy's own hop (nginx's subrequest has its own
 * Connection and Content-Length).
 */
const NOT_ORIGINAL = new Set<string>(["x-original-method", "x-original-uri", "x-forwarded-method", "x-forwarded-uri", "connection", "content-length"]);

const NGINX = ["x-original-method", "x-original-uri"] as const;
const FORWARDED = ["x-forwarded-method", "x-forwarded-uri"] as const;
const DESCRIBING = new Set<string>([...NGINX, ...FORWARDED]);
/** RFC 9110 §9.1 / §5.6.2: a method is a token. */
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}$/;

export function createCheckEntrance(options: CheckEntranceOptions): CheckEntrance {
  const trusted = compileTrustedProxies(options.trustedProxies);
  const identity = [options.identityHeaders.subject, options.identityHeaders.client, options.identityHeaders.scope, options.identityHeaders.tenant ?? "X-Gatehouse-Tenant"].map((name) => name.toLowerCase());

  const refuse = (status: 401 | 403, error: "invalid_request" | "insufficient_scope", description: string): CheckAnswer =>
    bearerFailureResponse({ status, error, description, realm: options.realm, style: "rfc6750" });
  const badDescription = (description: string): CheckDescription => ({ kind: "answer", answer: refuse(403, "invalid_request", description) });

  return {
    describe(check) {
      if (options.trustedProxies.length === 0 || check.peer === "" || !trusted(check.peer, 0)) {
        return badDescription("the check endpoint answers only trusted proxies");
      }
      const counts = new Map<string, number>();
      for (let i = 0; i < check.rawHeaders.length; i += 2) {
        const name = check.rawHeaders[i]!.toLowerCase();
        if (DESCRIBING.has(name)) counts.set(name, (counts.get(name) ?? 0) + 1);
      }
      for (const [name, count] of counts) if (count > 1) return badDescription(`${name} is repeated`);
      const nginx = NGINX.some((name) => counts.has(name));
      const forwarded = FORWARDED.some((name) => counts.has(name));
      // A client behind one proxy can send the other proxy's fields: with both, neither is believed.
      if (nginx && forwarded) return badDescription("the original request is described twice (X-Original-* and X-Forwarded-*)");
      const [methodName, uriName] = nginx ? NGINX : FORWARDED;
      const method = single(check.headers[methodName]);
      const target = single(check.headers[uriName]);
      if (method === undefined || target === undefined) return badDescription(`the original request's method and target are required (${methodName}, ${uriName})`);
      if (!METHOD.test(method)) return badDescription("the original request's method is not a method");

      // The original request's fields are the check request's, less the description.
      const headers: Record<string, string | readonly string[] | undefined> = {};
      for (const name of Object.keys(check.headers)) if (!NOT_ORIGINAL.has(name)) headers[name] = check.headers[name];
      const forwardedHost = lastEntry(check.headers["x-forwarded-host"]);
      if (forwardedHost !== undefined) headers.host = forwardedHost;
      const rawHeaders: string[] = [];
      for (let i = 0; i < check.rawHeaders.length; i += 2) {
        if (!NOT_ORIGINAL.has(check.rawHeaders[i]!.toLowerCase())) rawHeaders.push(check.rawHeaders[i]!, check.rawHeaders[i + 1]!);
      }
      const upgrade = single(check.headers.upgrade);
      return {
        kind: "ask",
        request: {
          method,
          target,
          headers,
          rawHeaders,
          // The client: the first address in X-Forwarded-For that is not a trusted proxy.
          peer: proxyAddr({ headers: check.headers, socket: { remoteAddress: check.peer } } as never, trusted),
          websocket: method === "GET" && upgrade?.toLowerCase() === "websocket",
          requestId: check.requestId,
        },
      };
    },

    answer(decision, request) {
      if (decision.kind === "allow") {
        const headers: Record<string, string> = { "cache-control": "no-store" };
        for (const name of identity) {
          const value = decision.setHeaders[name];
          if (value !== undefined) headers[name] = value;
        }
        headers[CHECKED_TARGET_HEADER] = decision.path + decision.search;
        // The sidecar keeps Authorization only where the route says so; the proxy can only copy what it is given.
        const authorization = single(request.headers.authorization);
        if (authorization !== undefined && !decision.removeHeaders.includes("authorization")) headers[FORWARDED_AUTHORIZATION_HEADER] = authorization;
        return { status: 200, headers, body: "" };
      }
      switch (decision.status) {
        case 401:
        case 403:
        case 500:
        case 503:
          return withChallenge(decision, decision.status);
        case 404:
          // No route covers the request (or not with this method): see the module comment.
          return refuse(403, "insufficient_scope", "no route of the guard covers this request");
        default:
          // 400 and anything else a sidecar would answer with a client error.
          return withChallenge(decision, 403);
      }
    },
  };

  /** The refusal at `status`; a 401 or 403 always carries an RFC 6750 §3 challenge. */
  function withChallenge(refusal: ErrorResponse, status: number): CheckAnswer {
    const hasChallenge = Object.keys(refusal.headers).some((name) => name.toLowerCase() === "www-authenticate");
    if ((status === 401 || status === 403) && !hasChallenge) {
      const challenge = refuse(status, "invalid_request", "request refused").headers["www-authenticate"]!;
      return { status, headers: Object.assign({}, refusal.headers, { "www-authenticate": challenge }), body: refusal.body };
    }
    return { status, headers: refusal.headers, body: refusal.body };
  }
}

/** One value of a field that must not be repeated; undefined when absent, empty or repeated. */
function single(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined || typeof value !== "string" || value === "") return undefined;
  return value;
}

/** The last value of a possibly repeated, comma-separated field (a proxy appends its own hop last). */
function lastEntry(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const last = (typeof value === "string" ? value : value.join(",")).split(",").at(-1)?.trim();
  return last === "" ? undefined : last;
}
