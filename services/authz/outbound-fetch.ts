import { lookup as dnsLookup } from "node:dns";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";

/**
 * Addresses a fetch on someone else's say-so must never reach (SSRF): this
 * host, private networks, link-local (cloud metadata at 169.254.169.254),
 * carrier-grade NAT, multicast and reserved ranges, in IPv4 and IPv6.
 */
const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24], ["203.0.113.0", 24],
  ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) NOT_PUBLIC.addSubnet(network, prefix, "ipv4");
for (const [network, prefix] of [["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8], ["2001:db8::", 32], ["64:ff9b::", 96]] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, "ipv6");
}

/** True for an address a fetch may connect to outside development. IPv4-mapped IPv6 is judged as the IPv4 address. */
export function isPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return isPublicAddress(mapped);
  const family = isIP(address);
  if (family === 0) return false;
  return !NOT_PUBLIC.check(address, family === 4 ? "ipv4" : "ipv6");
}

export interface OutboundFetchOptions {
  /** Development only (requireHttps false): http URLs and private or loopback addresses are allowed. */
  development: boolean;
  /** The body's limit; a longer one is refused. */
  maxBytes?: number;
  /** The whole exchange's limit, connection to last byte. */
  timeoutMs?: number;
}

export class OutboundFetchError extends Error {
  override readonly name = "OutboundFetchError";
}

/**
 * GETs a JSON document from a URL someone else named (DESIGN: "one fetcher"):
 * https only, no redirects, a bounded size and time, and, outside
 * development, only public addresses, checked on the addresses the
 * connection really uses (the check sits in the DNS lookup the socket calls,
 * so a name cannot resolve one way for the check and another for the
 * connection).
 */
export async function fetchJson(url: string, options: OutboundFetchOptions): Promise<unknown> {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const timeoutMs = options.timeoutMs ?? 5_000;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new OutboundFetchError("not an absolute URL");
  }
  if (target.protocol !== "https:" && !(options.development && target.protocol === "http:")) throw new OutboundFetchError("must use https");
  // An address literal is connected to without a lookup: judged here.
  const literal = target.hostname.replace(/^\[|\]$/g, "");
  if (isIP(literal) !== 0 && !options.development && !isPublicAddress(literal)) {
    throw new OutboundFetchError(`${literal} is not a public address`);
  }
  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    dnsLookup(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
      if (error) return callback(error, "", 4);
      const refused = addresses.find((a) => !options.development && !isPublicAddress(a.address));
      if (refused !== undefined) return callback(new OutboundFetchError(`${hostname} resolves to ${refused.address}, which is not a public address`), "", 4);
      if (lookupOptions.all === true) return (callback as unknown as (e: null, all: typeof addresses) => void)(null, addresses);
      return callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  return new Promise<unknown>((resolve, reject) => {
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    const request = send(target, { method: "GET", lookup, headers: { accept: "application/json" }, timeout: timeoutMs }, (response) => {
      // No redirects: a 3xx is an answer like any other non-200.
      if (response.statusCode !== 200) {
        response.resume();
        return reject(new OutboundFetchError(`answered HTTP ${response.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          request.destroy(new OutboundFetchError(`the document is larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        } catch {
          reject(new OutboundFetchError("the document is not JSON"));
        }
      });
      response.on("error", reject);
    });
    const deadline = setTimeout(() => request.destroy(new OutboundFetchError(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    request.on("close", () => clearTimeout(deadline));
    request.on("timeout", () => request.destroy(new OutboundFetchError(`no answer within ${timeoutMs} ms`)));
    request.on("error", (error) => reject(error instanceof OutboundFetchError ? error : new OutboundFetchError(error.message)));
    request.end();
  });
}
