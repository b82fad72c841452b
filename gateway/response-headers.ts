import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * RFC 6749 §5.1: "The authorization server MUST include the HTTP
 * Cache-Control response header field with a value of no-store in any
 * response containing tokens, credentials, or other sensitive information, as
 * well as the Pragma response header field with a value of no-cache". Every
 * answer that carries a token, a secret or an error about one (the token,
 * introspection and registration endpoints) sends both.
 */
export const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" } as const;

/**
 * Endpoints a browser-based public client calls directly (token, revocation,
 * UserInfo, metadata, JWKS, registration, protected-resource metadata) allow
 * any origin: they use no cookies or other ambient credentials, so a
 * cross-origin caller can do nothing it could not do from its own server.
 * Introspection (RFC 7662) is for resource servers only.
 */
export const ANY_ORIGIN = { "access-control-allow-origin": "*" } as const;

/** A fastify onRequest hook that lets any origin read the answer (ANY_ORIGIN). */
export async function allowAnyOrigin(_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.headers(ANY_ORIGIN);
}
