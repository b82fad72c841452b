import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { WELL_KNOWN_PROTECTED_RESOURCE } from "../config.js";
import type { GuardPipeline } from "../guard/pipeline.js";
import { NOT_FOUND, sendErrorResponse } from "../oauth-error-response.js";
import { ANY_ORIGIN } from "../response-headers.js";

export interface ProtectedResourceMetadataOptions {
  /** The process's guard pipeline: its route table in force says which resources exist. */
  pipeline: GuardPipeline;
}

/** A reload may change a document: clients may keep one for a minute. */
const MAX_AGE_SECONDS = 60;
/**
 * RFC 9728 §3: the document is public and uses no credentials, so any origin
 * may read it (a browser-based MCP client fetches it cross-origin, with an
 * MCP-Protocol-Version header that needs a preflight).
 */
const PREFLIGHT = {
  ...ANY_ORIGIN,
  "access-control-allow-methods": "GET, HEAD, OPTIONS",
  "access-control-allow-headers": "*",
  "access-control-max-age": "86400",
} as const;

/**
 * RFC 9728 §3: the metadata of each protected resource the guard serves, at
 * `/.well-known/oauth-protected-resource` followed by the resource's path
 * (§3.1 path insertion), as JSON (§3.2). Served by every gateway, guard-only
 * sidecars included: the resource server's side of the MCP authorization spec.
 * Which documents exist is the route table's (routes[].resource), so a reload
 * adds and removes them. The documents are unsigned (§2.2 signed_metadata is
 * not produced).
 */
export const protectedResourceMetadata: FastifyPluginAsync<ProtectedResourceMetadataOptions> = async (app, { pipeline }) => {
  const serve = async (request: FastifyRequest, reply: FastifyReply) => {
    const url = request.raw.url ?? "";
    const mark = url.indexOf("?");
    const document = pipeline.protectedResourceMetadata(mark === -1 ? url : url.slice(0, mark));
    if (document === undefined) return sendErrorResponse(reply.headers(ANY_ORIGIN), NOT_FOUND);
    return reply
      .code(200)
      .headers(ANY_ORIGIN)
      .header("cache-control", `public, max-age=${MAX_AGE_SECONDS}`)
      .type("application/json; charset=utf-8")
      .send(JSON.stringify(document));
  };
  const preflight = async (_request: FastifyRequest, reply: FastifyReply) => reply.code(204).headers(PREFLIGHT).send();
  for (const path of [WELL_KNOWN_PROTECTED_RESOURCE, `${WELL_KNOWN_PROTECTED_RESOURCE}/*`]) {
    app.get(path, serve);
    app.options(path, preflight);
  }
};
