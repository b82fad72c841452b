import type { IncomingMessage, ServerResponse } from "node:http";
import proxyAddr from "@fastify/proxy-addr";
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { Logger } from "pino";
import type { GatewayDeps } from "../deps.js";
import { checkForm } from "../form-body.js";
import { FormError, parseForm, REPEATABLE_PARAMETERS } from "../parse-form.js";
import { OnlyOneResource } from "../service-grants.js";
import { OVERLOADED, oauthErrorResponse, oauthFailureFromRpc, writeErrorResponse, type OAuthFailure } from "../oauth-error-response.js";
import type { TenantRoute, TenantRouting } from "../tenant-routing.js";
import { createTlsCheck } from "../tls-check.js";
import { compileTrustedProxies } from "../trusted-proxies.js";
import {
  introspectionResponseBody,
  requestIntrospection,
  requestToken,
  TOKEN_OPERATION_PARAMETERS,
  TOKEN_REQUEST_PARAMETERS,
  TOKEN_REQUEST_REQUIRED,
  tokenResponseBody,
  UNSUPPORTED_GRANT_TYPE,
} from "../token-endpoints.js";
import { ANY_ORIGIN, NO_STORE } from "../response-headers.js";
import { CLIENT_ADDRESS_HEADER, ENDPOINT_URL_HEADER } from "../../contract/metadata.js";
import { logIdsOf } from "../../startup/tracing.js";

export interface LeanTokenEndpointsOptions {
  deps: GatewayDeps;
  /** The default tenant's routing and the named tenants' (tenant-routing.ts), as oauth-routes registers them. */
  routings: readonly TenantRouting[];
  /** Installs an entry beneath fastify (gateway/app.ts): it returns false for what it leaves to fastify. */
  addRawEntry: (entry: (req: IncomingMessage, res: ServerResponse) => boolean) => void;
  /** The request id of a raw request, as fastify's genReqId would give it. */
  requestIdOf: (req: IncomingMessage) => string;
}

/**
 * The token endpoint (RFC 6749 §3.2) and the introspection endpoint
 * (RFC 7662 §2) served beneath fastify, as the guard and the check endpoint
 * are: they are what clients and resource servers call most, and fastify's
 * request cycle (its hooks, content-type parser, schema validation, reply,
 * and the garbage they leave) is a part of every request's gateway CPU that
 * the answer does not need (issue 16; README, Speed, has the figures).
 *
 * Same answers as the routes in plugins/oauth-routes.ts, which stay for
 * everything this path leaves to them: it takes only a plain `POST` at the
 * exact path (a named tenant's too) with a `Content-Length` within
 * `bodyLimitBytes` and `Content-Type: application/x-www-form-urlencoded`
 * (with at most `charset=utf-8`), over TLS when `requireHttps` asks for it,
 * while the server is not closing. The steps are fastify's, in its order:
 * the concurrency limit (gateway.overload), the tenant, CORS for the token
 * endpoint, the strict form parser (parse-form.ts), the same parameter check
 * (form-body.ts checkForm, the schema's rules and words), the same RPCs and
 * JSON (token-endpoints.ts), errors through oauth-error-response.ts. With
 * tracing on, the routes through fastify serve every request (their spans
 * and trace context are set up by fastify's hooks), and this is not installed.
 */
const plugin: FastifyPluginAsync<LeanTokenEndpointsOptions> = async (app, { deps, routings, addRawEntry, requestIdOf }) => {
  const { config, authz, overload } = deps;
  const log = app.log as unknown as Logger;
  const cameOverTls = createTlsCheck({ enabled: config.requireHttps, trustedProxies: config.trustedProxies });
  const trust = config.trustedProxies.length > 0 ? compileTrustedProxies(config.trustedProxies) : undefined;
  /** request.ip as fastify gives it: X-Forwarded-For only from trusted proxies. */
  const addressOf = (req: IncomingMessage) => (trust === undefined ? (req.socket.remoteAddress ?? "") : proxyAddr(req, trust));
  let closing = false;
  // return503OnClosing: once the server closes, fastify answers what still comes on open connections.
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });

  const [defaultRouting, namedRouting] = routings;
  const endpoints = new Map<string, Endpoint>([
    [config.paths.token, "token"],
    [config.paths.introspect, "introspect"],
  ]);

  /** The endpoint and tenant of a request target, or undefined for one this path does not serve. */
  const resolve = (url: string): { endpoint: Endpoint; tenant: TenantRoute; routing: TenantRouting; path: string } | undefined => {
    const own = endpoints.get(url);
    if (own !== undefined && defaultRouting !== undefined) {
      const tenant = defaultRouting.routeOf("");
      return tenant === undefined ? undefined : { endpoint: own, tenant, routing: defaultRouting, path: url };
    }
    if (namedRouting === undefined || url.charCodeAt(0) !== SLASH) return undefined;
    const slash = url.indexOf("/", 1);
    if (slash === -1) return undefined;
    const path = url.slice(slash);
    const endpoint = endpoints.get(path);
    if (endpoint === undefined) return undefined;
    const segment = url.slice(1, slash);
    if (!TENANT_SEGMENT.test(segment)) return undefined;
    const tenant = namedRouting.routeOf(segment);
    return tenant === undefined ? undefined : { endpoint, tenant, routing: namedRouting, path };
  };

  addRawEntry((req, res) => {
    if (req.method !== "POST" || closing) return false;
    const target = resolve(req.url ?? "");
    if (target === undefined) return false;
    const { headers } = req;
    const length = headers["content-length"];
    if (length === undefined || headers["transfer-encoding"] !== undefined || !isFormContentType(headers["content-type"])) return false;
    const bytes = Number(length);
    if (!(bytes > 0 && bytes <= config.bodyLimitBytes)) return false;
    if (cameOverTls !== undefined && !cameOverTls(req)) return false;
    serve(req, res, target.endpoint, target.tenant, target.routing.at(target.path), bytes);
    return true;
  });

  /** One request, in fastify's order: the limit, (the tenant, resolved already), CORS, the body, its check, the RPC. */
  const serve = (req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, tenant: TenantRoute, route: string, bytes: number): void => {
    const admitted = (release: (() => void) | undefined) => {
      if (release === undefined) {
        overload.reporter.report("shed", { route });
        req.resume();
        return writeErrorResponse(res, oauthErrorResponse(OVERLOADED));
      }
      // A client that left while the request waited for a slot: 'close' will not come again (load-shed.ts).
      if (res.closed) return release();
      res.once("close", release);
      readBody(req, bytes, (body) => {
        // A bug must not escape into the server's event handlers (it would end the process): a 500, as fastify answers it.
        try {
          answer(req, res, endpoint, tenant, body);
        } catch (error) {
          fail(req, res, endpoint, error);
        }
      });
    };
    const release = overload.limiter.acquire();
    if (release instanceof Promise) release.then(admitted, (error: unknown) => fail(req, res, endpoint, error));
    else admitted(release);
  };

  /** The form, checked, and its RPC's answer. */
  const answer = (req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, tenant: TenantRoute, body: Buffer): void => {
    const cors = endpoint === "token" ? ANY_ORIGIN : undefined;
    let parsed: Record<string, string | string[]>;
    try {
      parsed = parseForm(body, { repeatable: REPEATABLE_PARAMETERS });
    } catch (error) {
      if (!(error instanceof FormError)) return fail(req, res, endpoint, error);
      return writeFailure(res, cors, { status: 400, error: "invalid_request", description: error.message.length <= 200 ? error.message : "invalid request" });
    }
    const refused =
      endpoint === "token"
        ? checkForm(parsed, TOKEN_REQUEST_PARAMETERS, { required: TOKEN_REQUEST_REQUIRED, unknown: "ignore" })
        : checkForm(parsed, TOKEN_OPERATION_PARAMETERS, { unknown: "ignore" });
    if (refused !== undefined) return writeFailure(res, cors, { status: 400, error: "invalid_request", description: refused.slice(0, 200) });
    // RFC 8707 §2: `resource` may repeat (an array), and is read from `resources` alone; after the check,
    // every other parameter is one string. (Not `{ resource, ...form }`: a rest copy of the form cost
    // about 0.9 µs a request, some 1 % of the gateway's CPU per introspection.)
    const form = parsed as Record<string, string>;
    const resources = (parsed.resource ?? []) as string[];

    // What the authz service needs to authenticate the client (RFC 6749 §2.3.1), as oauth-routes.ts clientCallOptions.
    const authorization = req.headers.authorization;
    const rpcHeaders: Record<string, string> = {
      [CLIENT_ADDRESS_HEADER]: addressOf(req),
      ...tenant.rpcHeaders,
      // RFC 7523 §3: a client assertion may name this endpoint's URL as its aud.
      [ENDPOINT_URL_HEADER]: tenant.issuer + (endpoint === "token" ? config.paths.token : config.paths.introspect),
    };
    if (authorization !== undefined) rpcHeaders.authorization = authorization;
    const usedBasic = authorization !== undefined && BASIC.test(authorization);
    const callOptions = { headers: rpcHeaders };
    const rpcFailed = (error: unknown) =>
      writeFailure(res, cors, error instanceof OnlyOneResource ? { status: 400, error: error.error, description: error.message } : oauthFailureFromRpc(error, { usedBasic }));

    if (endpoint === "introspect") {
      requestIntrospection(authz.authz, form, callOptions).then(
        (result) => writeJson(res, undefined, introspectionResponseBody(result)),
        rpcFailed,
      );
      return;
    }
    requestToken(authz.authz, form, resources, callOptions).then((token) => {
      if (token === "unsupported") return writeFailure(res, cors, { status: 400, error: "unsupported_grant_type", description: UNSUPPORTED_GRANT_TYPE });
      if (token === undefined) return writeFailure(res, cors, { status: 500, error: "server_error", description: "the authorization server returned no token" });
      writeJson(res, cors, tokenResponseBody(token));
    }, rpcFailed);
  };

  /** What fastify's error handler answers for a bug: a bare server_error, the cause logged (plugins/oauth-errors.ts). */
  const fail = (req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, error: unknown) => {
    // The request's id and trace ids, as fastify's child logger gives them (app.ts; tracing is off here).
    log.error({ reqId: requestIdOf(req), ...logIdsOf(undefined, req.headers.traceparent), err: error }, "unhandled error");
    writeFailure(res, endpoint === "token" ? ANY_ORIGIN : undefined, { status: 500, error: "server_error", description: "the server failed to handle the request" });
  };
};

type Endpoint = "token" | "introspect";

/** Reads a body of exactly `bytes` bytes (the parser enforces Content-Length); a client that goes away gets nothing. */
function readBody(req: IncomingMessage, bytes: number, then: (body: Buffer) => void): void {
  const body = Buffer.allocUnsafe(bytes);
  let received = 0;
  req.on("data", (chunk: Buffer) => {
    // Node's parser never delivers more than Content-Length; the bound is kept anyway.
    if (received + chunk.length > bytes) return void req.destroy();
    chunk.copy(body, received);
    received += chunk.length;
  });
  req.once("end", () => {
    if (received === bytes) then(body);
  });
  req.once("error", () => req.destroy());
}

function writeFailure(res: ServerResponse, cors: typeof ANY_ORIGIN | undefined, failure: OAuthFailure): void {
  const response = oauthErrorResponse(failure);
  writeErrorResponse(res, cors === undefined ? response : Object.assign({}, response, { headers: Object.assign({}, cors, response.headers) }));
}

/** A 200 with the RFC's JSON: no-store (RFC 6749 §5.1), and CORS for the token endpoint. */
function writeJson(res: ServerResponse, cors: typeof ANY_ORIGIN | undefined, body: string): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string> = Object.assign({}, cors, NO_STORE, { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(body)) });
  res.writeHead(200, headers);
  res.end(body);
}

/** The form's media type, alone or with a UTF-8 charset: anything else is fastify's to refuse or accept. */
function isFormContentType(value: string | undefined): boolean {
  return value === FORM || (value !== undefined && FORM_UTF8.test(value));
}

const FORM = "application/x-www-form-urlencoded";
const FORM_UTF8 = /^application\/x-www-form-urlencoded; ?charset=(?:utf|UTF)-8$/;
const BASIC = /^basic(?:\s|$)/i;
/** A named tenant's path segment (tenant-routing.ts SLUG_PATTERN). */
const TENANT_SEGMENT = /^[a-z0-9-]+$/;
const SLASH = 0x2f;

/** The token and introspection endpoints beneath fastify; registered by gateway/app.ts before the guard's entry. */
export const leanTokenEndpoints = fp(plugin, { name: "lean-token-endpoints", fastify: "5.x" });
