import { DEFAULT_TENANT } from "../../startup/tenant-name.js";
import type { GatewayTenants } from "../tenants.js";
import { hash } from "node:crypto";
import type { IntrospectResponse } from "../../gen/gatehouse/v1/authorization_service_pb.js";
import { INACTIVE, type IntrospectionCache, type Introspected, type Principal } from "./introspection-cache.js";
import type { RequestHeaders } from "./request-headers.js";

/**
 * The third step of the guard: who is calling. The bearer token is taken from
 * the Authorization header only (RFC 6750 §2.1) and introspected (RFC 7662)
 * at the authz service, through the cache when the revocation feed is live.
 */

/** What a request carries, as far as bearer tokens go. */
export type BearerCredential =
  | { readonly kind: "token"; readonly token: string }
  /** No bearer token at all (RFC 6750 §3.1: the challenge carries no error code). */
  | { readonly kind: "none" }
  /** A Bearer header whose value is not a b64token: invalid_token. */
  | { readonly kind: "malformed"; readonly description: string }
  /** Two ways or two copies of a token: RFC 6750 §3.1 invalid_request. */
  | { readonly kind: "invalid_request"; readonly description: string };

/** RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=". */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Longer than any token the authz service issues; refused without a round trip. */
const MAX_TOKEN_LENGTH = 8192;

/**
 * Extracts the bearer token. A second Authorization field is refused
 * (RFC 6750 §3.1 invalid_request): seen in `rawHeaders` where the entrance
 * has them (node keeps only the first in `headers`), as a list of values, or
 * as a comma inside the credentials (a proxy that merged two fields; a
 * b64token never holds a comma). The query is checked for `access_token`
 * (RFC 6750 §2.3, which gatehouse does not accept: a token in a URL ends up
 * in logs and Referer headers).
 */
export function extractBearer(headers: RequestHeaders, rawHeaders: readonly string[] | undefined, search: string): BearerCredential {
  if (search.length > 0 && search.includes("access_token") && new URLSearchParams(search).has("access_token")) {
    return { kind: "invalid_request", description: "access tokens are accepted only in the Authorization header (RFC 6750 §2.1)" };
  }
  if (rawHeaders !== undefined) {
    let count = 0;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!;
      if (name.length === 13 && name.toLowerCase() === "authorization") count++;
    }
    if (count > 1) return TWO_AUTHORIZATIONS;
  }
  const field = headers.authorization;
  if (field === undefined) return NONE;
  if (typeof field !== "string") {
    if (field.length > 1) return TWO_AUTHORIZATIONS;
    if (field.length === 0) return NONE;
  }
  const authorization = typeof field === "string" ? field : field[0]!;
  // RFC 9110 §11.1: the scheme is case-insensitive; RFC 6750 §2.1: one space, then the token.
  if (authorization.length < 7 || authorization.slice(0, 7).toLowerCase() !== "bearer ") {
    if (authorization.toLowerCase() === "bearer") return { kind: "malformed", description: "the Bearer credentials are empty" };
    return /,\s*bearer /i.test(authorization) ? TWO_AUTHORIZATIONS : NONE;
  }
  const token = authorization.slice(7);
  // The b64token syntax itself is checked before a token is introspected (see
  // createAuthenticator): a token found in the cache passed that check already.
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH || token.charCodeAt(0) === 0x20) return { kind: "malformed", description: "the access token is malformed" };
  if (token.includes(",")) return TWO_AUTHORIZATIONS;
  return { kind: "token", token };
}

const NONE: BearerCredential = Object.freeze({ kind: "none" });
const TWO_AUTHORIZATIONS: BearerCredential = Object.freeze({ kind: "invalid_request", description: "more than one Authorization header" });

/** RFC 6750 §2.1 b64token syntax. */
export function isB64Token(token: string): boolean {
  return B64TOKEN.test(token);
}

/** A token that is not a b64token: refused like an inactive one, without asking the authz service. */
export const MALFORMED = Object.freeze({ active: false as const, malformed: true as const });

/** What the authenticator says about a token. */
export type Authentication = Introspected | typeof MALFORMED;

/** A token could not be checked: the authz service (or its store) did not answer. Never a pass. */
export class TokenCheckUnavailable extends Error {
  constructor(options: { cause: unknown }) {
    super("the access token cannot be checked now", options);
    this.name = "TokenCheckUnavailable";
  }
}

/** What the authenticator needs to know about the revocation feed. */
export interface CacheTrust {
  /** True while revocations are delivered, so that a cached result is still right. */
  isLive(now: number): boolean;
  /** Changes on every revocation, (re)subscription and outage. */
  readonly generation: number;
}

export interface AuthenticatorMetrics {
  cacheHit(): void;
  cacheMiss(reason: "absent" | "untrusted" | "disabled"): void;
  introspected(seconds: number, outcome: "active" | "inactive" | "error"): void;
}

export interface Authenticator {
  /**
   * The introspection result for a token: synchronously on a cache hit (the
   * fast path does not allocate a promise), a promise otherwise. A promise
   * rejects with TokenCheckUnavailable when the token cannot be checked.
   */
  authenticate(token: string): Authentication | Promise<Authentication>;
}

/**
 * Introspection with a cache in front. The cache is read and written only
 * while the revocation feed is live; a result is stored only if nothing that
 * could make it stale (a revocation, a resubscription, an outage) happened
 * while it was being fetched. Concurrent lookups of one token share one call.
 */
export function createAuthenticator(deps: {
  introspect: (token: string) => Promise<Introspected>;
  /** Undefined: caching is off, every request is introspected. */
  cache: IntrospectionCache | undefined;
  trust: CacheTrust;
  clock: () => number;
  metrics: AuthenticatorMetrics;
}): Authenticator {
  const { cache, trust, clock, metrics } = deps;
  const inFlight = new Map<string, { generation: number; result: Promise<Introspected> }>();

  const introspect = async (token: string): Promise<Introspected> => {
    const started = performance.now();
    try {
      const result = await deps.introspect(token);
      metrics.introspected((performance.now() - started) / 1000, result.active ? "active" : "inactive");
      return result;
    } catch (error) {
      metrics.introspected((performance.now() - started) / 1000, "error");
      throw new TokenCheckUnavailable({ cause: error });
    }
  };

  return {
    authenticate(token) {
      if (cache === undefined) {
        metrics.cacheMiss("disabled");
        return isB64Token(token) ? introspect(token) : MALFORMED;
      }
      const now = clock();
      if (!trust.isLive(now)) {
        metrics.cacheMiss("untrusted");
        return isB64Token(token) ? introspect(token) : MALFORMED;
      }
      const key = tokenHash(token);
      const cached = cache.get(key, now);
      if (cached !== undefined) {
        metrics.cacheHit();
        return cached;
      }
      metrics.cacheMiss("absent");
      if (!isB64Token(token)) return MALFORMED;
      const generation = trust.generation;
      const pending = inFlight.get(key);
      if (pending !== undefined && pending.generation === generation) return pending.result;
      const result = introspect(token).then(
        (value) => {
          // Only what was fetched while nothing changed may be kept.
          if (trust.generation === generation && trust.isLive(clock())) cache.set(key, value, clock());
          return value;
        },
      );
      const entry = { generation, result };
      inFlight.set(key, entry);
      const forget = () => {
        if (inFlight.get(key) === entry) inFlight.delete(key);
      };
      result.then(forget, forget);
      return result;
    },
  };
}

/** The cache key: a SHA-256 of the token, so the cache never holds a token. */
export function tokenHash(token: string): string {
  return hash("sha256", token, "base64");
}

/**
 * An Introspect answer as the guard uses it. Only access tokens open routes:
 * an active refresh token (token_type refresh_token) is not a bearer token.
 */
export function toIntrospected(response: IntrospectResponse, tenants?: Pick<GatewayTenants, "names" | "ofIssuer">): Introspected {
  if (!response.active || response.tokenType !== "Bearer") return INACTIVE;
  // Without named tenants, every token is the default tenant's, whatever its issuer (as before tenants).
  // An issuer this gateway does not know is "": no tenant, accepted by no route.
  const tenant = tenants === undefined || tenants.names.size === 0 ? DEFAULT_TENANT : (tenants.ofIssuer(response.iss) ?? "");
  const principal: Principal = {
    tenant,
    active: true,
    subject: response.sub,
    clientId: response.clientId,
    scope: response.scope,
    scopes: new Set(response.scope.split(" ").filter((s) => s !== "")),
    expiresAt: Number(response.exp) * 1000,
    jti: response.jti,
    grantId: response.grantId,
    audience: response.aud,
    groups: new Set(response.groups),
    headerValues: {
      subject: headerValue(response.sub),
      client: headerValue(response.clientId),
      scope: headerValue(response.scope),
      ...(tenants === undefined || tenants.names.size === 0 || tenant === "" ? {} : { tenant }),
    },
  };
  return principal;
}

/** Printable ASCII without "%", not starting or ending with a space (RFC 9110 §5.5 trims those). */
const PLAIN_HEADER_VALUE = /^(?:[\x21-\x24\x26-\x7e](?:[\x20-\x24\x26-\x7e]*[\x21-\x24\x26-\x7e])?)?$/;

/**
 * A value safe for an HTTP header field: a plain value is kept as it is;
 * anything else is percent-encoded (UTF-8), so decodeURIComponent always
 * gives the original back and no CR, LF or NUL reaches the upstream.
 */
export function headerValue(value: string): string {
  return PLAIN_HEADER_VALUE.test(value) ? value : encodeURIComponent(value);
}
