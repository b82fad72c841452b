import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request } from "node:https";
import { BlockList, isIP, type LookupFunction, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";

/**
 * One GET of a URL a client named (its `jwks_uri`) or a cluster's key set,
 * made safe against server-side request forgery (RFC 7591 §5, OWASP SSRF):
 *
 * - https only; no redirects followed (a 3xx is a failure);
 * - the host's addresses are checked after DNS resolution (every address:
 *   one private address among public ones is refused), and the address the
 *   socket actually connected to is checked again (no DNS rebinding between
 *   the check and the connect, and IP-literal hosts that skip the lookup);
 * - private, loopback, link-local, CGNAT, multicast and unspecified ranges
 *   are refused unless the host is on the development allow-list;
 * - the whole exchange is time-bounded, and the body size-bounded.
 */
export interface SafeGetOptions {
  timeoutMs: number;
  maxBytes: number;
  /** Hosts (as written in the URL) whose private addresses may be fetched: development only. */
  allowPrivateHosts: readonly string[];
  /** Extra trusted CA certificates (PEM). */
  ca?: string | undefined;
  /**
   * The DNS resolver: every address of a host (node:dns lookup with `all`
   * by default). A dependency so that tests can answer as a rebinding
   * attacker's name server would. Called once per fetch: the connection is
   * made to an address it returned and checked, never to a second answer.
   */
  resolve?: ((hostname: string) => Promise<LookupAddress[]>) | undefined;
  /** The Accept header; default: JWK Set and JSON. */
  accept?: string | undefined;
}

/** node:dns lookup of every address of `hostname`. */
export function systemResolve(hostname: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true }, (error, addresses) => (error === null ? resolve(addresses) : reject(error)));
  });
}

export interface SafeGetResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export class SafeGetError extends Error {
  override readonly name = "SafeGetError";
}

/** Addresses no fetch on a client's say-so may reach (IANA special-purpose registries, RFC 6890). */
const FORBIDDEN = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["64:ff9b::", 96],
  ["2001:db8::", 32],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, "ipv6");
}

/** True when `address` is in a private, loopback, link-local or otherwise non-public range. */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return FORBIDDEN.check(address, "ipv4");
  if (family === 6) {
    // IPv4-mapped (::ffff:a.b.c.d) is the IPv4 address in disguise.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped !== null) return FORBIDDEN.check(mapped[1]!, "ipv4");
    return FORBIDDEN.check(address, "ipv6");
  }
  return true;
}

export async function safeHttpsGet(url: string, options: SafeGetOptions): Promise<SafeGetResponse> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new SafeGetError("not a URL");
  }
  if (target.protocol !== "https:") throw new SafeGetError("only https URLs are fetched");
  if (target.username !== "" || target.password !== "") throw new SafeGetError("URLs with credentials are not fetched");
  const host = target.hostname.replace(/^\[|\]$/g, "");
  const privateAllowed = options.allowPrivateHosts.includes(host);
  const permitted = (address: string) => privateAllowed || !isForbiddenAddress(address);
  if (isIP(host) !== 0 && !permitted(host)) throw new SafeGetError(`${host} is a private, loopback or link-local address`);

  // The resolver the socket uses: every address checked before one is connected to.
  const resolveHost = options.resolve ?? systemResolve;
  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    resolveHost(hostname).then(
      (addresses) => {
        if (addresses.length === 0) return callback(new SafeGetError(`${hostname} has no address`), "", 0);
        const refused = addresses.find((entry) => !permitted(entry.address));
        if (refused !== undefined) return callback(new SafeGetError(`${hostname} resolves to a private, loopback or link-local address`), "", 0);
        if (lookupOptions.all === true) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, "", 0),
    );
  };

  return new Promise<SafeGetResponse>((resolve, reject) => {
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(error instanceof SafeGetError ? error : new SafeGetError(error.message));
    };
    const timer = setTimeout(() => fail(new SafeGetError(`no complete answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    const req = request(target, {
      method: "GET",
      lookup,
      agent: false,
      ca: options.ca,
      headers: { accept: options.accept ?? "application/jwk-set+json, application/json", "user-agent": "gatehouse" },
    });
    req.on("socket", (socket: Socket) => {
      // After connecting, the peer's address is checked once more: the lookup above is not the only way to an address.
      socket.once("secureConnect", () => {
        const remote = (socket as TLSSocket).remoteAddress;
        if (remote === undefined || !permitted(remote)) fail(new SafeGetError("connected to a private, loopback or link-local address"));
      });
    });
    req.on("error", fail);
    req.on("response", (response) => {
      const remote = response.socket.remoteAddress;
      if (remote === undefined || !permitted(remote)) return fail(new SafeGetError("connected to a private, loopback or link-local address"));
      if (response.statusCode !== undefined && response.statusCode >= 300 && response.statusCode < 400) {
        return fail(new SafeGetError(`answered ${response.statusCode}; redirects are not followed`));
      }
      const declared = Number(response.headers["content-length"] ?? "0");
      if (declared > options.maxBytes) return fail(new SafeGetError(`larger than ${options.maxBytes} bytes`));
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) return fail(new SafeGetError(`larger than ${options.maxBytes} bytes`));
        chunks.push(chunk);
      });
      response.on("error", fail);
      response.on("end", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") });
      });
    });
    req.on("close", () => clearTimeout(timer));
    req.end();
  });
}
