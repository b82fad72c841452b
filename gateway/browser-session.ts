import { randomBytes } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { AuthzClient } from "./rpc/authz-client.js";

/** A resource owner's login session, as the authz service knows it. */
export interface BrowserSession {
  /** The cookie's value: the bearer of the session; only its hash is stored (authz service). */
  token: string;
  subject: string;
  /** Seconds since the epoch. */
  authTime: bigint;
  /** The session's public id (OpenID Connect `sid`). */
  sid: string;
}

export interface BrowserSessions {
  /**
   * The live session the request's cookie names, or undefined when there is
   * none (no cookie, unknown or expired session). Throws when the authz
   * service cannot be asked: the caller refuses (503), it never guesses.
   */
  lookup(request: FastifyRequest): Promise<BrowserSession | undefined>;
  /** The raw session cookie, for ending a session; undefined when absent or malformed. */
  tokenOf(request: FastifyRequest): string | undefined;
  /** Sets the session cookie for `maxAge` seconds. */
  open(reply: FastifyReply, token: string, maxAge: number): void;
  /** Removes the session cookie. */
  clear(reply: FastifyReply): void;
  /**
   * The login form's double-submit value (see csrf.ts): the one in the
   * request's cookie, or a new one set on the reply.
   */
  loginNonce(request: FastifyRequest, reply: FastifyReply): string;
  /** The login form's double-submit value from the request's cookie, if any. */
  presentedLoginNonce(request: FastifyRequest): string | undefined;
}

/** Session tokens and nonces are base64url; anything else in the cookie is not ours. */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;
/** The login form's nonce lives as long as someone may take to type a password. */
const LOGIN_NONCE_SECONDS = 3_600;

/**
 * The session cookie: `HttpOnly` (scripts never see it), `SameSite=Lax` (no
 * cross-site POST carries it, but the top-level redirect back from a client
 * does), `Path=/`, and `Secure` whenever the issuer is https, so it never
 * travels over plain HTTP. Its value is the session token SessionService.Login
 * returned; the session itself lives in the authz service's store, so every
 * gateway replica sees it.
 */
export function createBrowserSessions(options: {
  authz: AuthzClient;
  cookieName: string;
  secure: boolean;
  /** The cookies' Path: a named tenant's are `/{tenant}`, so the browser sends them to that tenant's endpoints only. Default "/". */
  path?: string;
  /** RPC metadata for GetSession: the tenant whose store holds the session (issue 11). */
  rpcHeaders?: Readonly<Record<string, string>>;
}): BrowserSessions {
  const { authz, cookieName, secure } = options;
  const nonceCookie = `${cookieName}_login`;
  const attributes = `; Path=${options.path ?? "/"}; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
  const callOptions = options.rpcHeaders === undefined ? undefined : { headers: { ...options.rpcHeaders } };
  const serialize = (name: string, value: string, maxAge: number) => `${name}=${value}; Max-Age=${maxAge}${attributes}`;
  const read = (request: FastifyRequest, name: string): string | undefined => {
    const value = readCookie(request.headers.cookie, name);
    return value !== undefined && TOKEN.test(value) ? value : undefined;
  };
  const append = (reply: FastifyReply, cookie: string) => {
    const existing = reply.getHeader("set-cookie");
    const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
    reply.header("set-cookie", [...list, cookie]);
  };

  return {
    async lookup(request) {
      const token = read(request, cookieName);
      if (token === undefined) return undefined;
      const session = await authz.sessions.getSession({ sessionToken: token }, callOptions);
      if (!session.active) return undefined;
      return { token, subject: session.subject, authTime: session.authTime, sid: session.sid };
    },
    tokenOf: (request) => read(request, cookieName),
    open(reply, token, maxAge) {
      append(reply, serialize(cookieName, token, maxAge));
    },
    clear(reply) {
      append(reply, serialize(cookieName, "", 0));
    },
    loginNonce(request, reply) {
      const existing = read(request, nonceCookie);
      if (existing !== undefined) return existing;
      const nonce = randomBytes(32).toString("base64url");
      append(reply, serialize(nonceCookie, nonce, LOGIN_NONCE_SECONDS));
      return nonce;
    },
    presentedLoginNonce: (request) => read(request, nonceCookie),
  };
}

/**
 * The first cookie called `name` in a Cookie header (RFC 6265 §5.4 orders the
 * more specific ones first). Values are taken as they are: gatehouse's own
 * cookies are base64url and need no decoding.
 */
function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const pair of header.split(";")) {
    const equals = pair.indexOf("=");
    if (equals !== -1 && pair.slice(0, equals).trim() === name) return pair.slice(equals + 1).trim();
  }
  return undefined;
}
