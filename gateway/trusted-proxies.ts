import proxyAddr from "@fastify/proxy-addr";

/** Whether an address (a peer's, or a hop of X-Forwarded-For) is one of the configured trusted proxies. */
export type TrustedProxy = (address: string, hop: number) => boolean;

/** How many addresses the answer is remembered for; a table that fills up is started afresh. */
const REMEMBERED = 1_024;
/** The longest address remembered (an IPv6 address with a zone and an IPv4 tail is under 64 characters). */
const LONGEST_REMEMBERED = 64;

/**
 * config.trustedProxies compiled once for every part of the gateway that
 * believes X-Forwarded-* only from them (the sidecar, the check endpoint, the
 * token endpoints, the TLS check). proxy-addr parses the address with
 * ipaddr.js on every call (2-3 % of a gateway's CPU under the check
 * endpoint's load); the peers are the few proxies in front, so each answer is
 * remembered. The list names addresses and ranges, not hop counts, so the
 * answer depends on the address alone.
 */
export function compileTrustedProxies(addresses: readonly string[]): TrustedProxy {
  const trusted = proxyAddr.compile([...addresses]);
  const known = new Map<string, boolean>();
  return (address, hop) => {
    // X-Forwarded-For entries are the client's to write: nothing long is kept.
    if (address.length > LONGEST_REMEMBERED) return trusted(address, hop);
    let answer = known.get(address);
    if (answer === undefined) {
      if (known.size >= REMEMBERED) known.clear();
      known.set(address, (answer = trusted(address, hop)));
    }
    return answer;
  };
}
