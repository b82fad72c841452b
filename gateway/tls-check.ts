import type { IncomingMessage } from "node:http";
import { compileTrustedProxies, type TrustedProxy } from "./trusted-proxies.js";

/**
 * Seed 002 (Require HTTPS): did this request come over TLS? On a TLS socket,
 * from a trusted proxy whose last `X-Forwarded-Proto` says https, or from
 * loopback. On a raw request, so the require-https plugin and the guard
 * beneath fastify share it; undefined when requireHttps is off.
 */
export function createTlsCheck(options: { enabled: boolean; trustedProxies: readonly string[] }): ((request: IncomingMessage) => boolean) | undefined {
  if (!options.enabled) return undefined;
  const trusted = compileTrustedProxies(options.trustedProxies);
  return (request) => cameOverTls(request, trusted);
}

function cameOverTls(request: IncomingMessage, trusted: TrustedProxy): boolean {
  const socket = request.socket as typeof request.socket & { encrypted?: boolean };
  if (socket.encrypted === true) return true;
  const peer = socket.remoteAddress ?? "";
  const forwardedProto = request.headers["x-forwarded-proto"];
  if (peer !== "" && trusted(peer, 0)) {
    if (forwardedProto !== undefined) {
      // The proxy's own hop is the last entry (fastify reads it the same way for request.protocol).
      const last = (Array.isArray(forwardedProto) ? forwardedProto.join(",") : forwardedProto).split(",").at(-1)!.trim().toLowerCase();
      return last === "https";
    }
  }
  return isLoopback(peer);
}

function isLoopback(address: string): boolean {
  return address === "::1" || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(address);
}
