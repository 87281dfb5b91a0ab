import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { parseCidr } from "./cidr.js";

/** A resolved address of a host. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses. */
export type Resolve = (host: string) => Promise<ResolvedAddress[]>;

const RESOLVE_TIMEOUT_MS = 5000;

/** The system resolver (getaddrinfo), every address, bounded in time. */
export const systemResolve: Resolve = async (host) => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error("DNS timeout"), { code: "ETIMEOUT" })),
      RESOLVE_TIMEOUT_MS,
    );
  });
  try {
    const found = await Promise.race([lookup(host, { all: true, verbatim: true }), timeout]);
    return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
  } finally {
    clearTimeout(timer);
  }
};

/**
 * Addresses a webhook must never reach unless configured: everything that is not the public
 * internet. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are checked against the IPv4 rules
 * by BlockList itself; NAT64 and 6to4 prefixes, which embed an IPv4 address, are refused whole.
 */
const REFUSED: [string, number, "ipv4" | "ipv6"][] = [
  ["0.0.0.0", 8, "ipv4"], // "this network", unspecified
  ["10.0.0.0", 8, "ipv4"], // private
  ["100.64.0.0", 10, "ipv4"], // CGNAT
  ["127.0.0.0", 8, "ipv4"], // loopback
  ["169.254.0.0", 16, "ipv4"], // link-local, cloud metadata
  ["172.16.0.0", 12, "ipv4"], // private
  ["192.0.0.0", 24, "ipv4"], // IETF protocol assignments
  ["192.0.2.0", 24, "ipv4"], // documentation
  ["192.88.99.0", 24, "ipv4"], // 6to4 relay
  ["192.168.0.0", 16, "ipv4"], // private
  ["198.18.0.0", 15, "ipv4"], // benchmarking
  ["198.51.100.0", 24, "ipv4"], // documentation
  ["203.0.113.0", 24, "ipv4"], // documentation
  ["224.0.0.0", 4, "ipv4"], // multicast
  ["240.0.0.0", 4, "ipv4"], // reserved, broadcast
  ["::", 96, "ipv6"], // unspecified, loopback, IPv4-compatible
  ["::ffff:0:0:0", 96, "ipv6"], // IPv4-translated (RFC 2765)
  ["64:ff9b::", 96, "ipv6"], // NAT64
  ["64:ff9b:1::", 48, "ipv6"], // local-use NAT64
  ["100::", 64, "ipv6"], // discard
  ["2001::", 23, "ipv6"], // IETF protocol assignments (Teredo among them)
  ["2001:db8::", 32, "ipv6"], // documentation
  ["2002::", 16, "ipv6"], // 6to4
  ["fc00::", 7, "ipv6"], // unique local
  ["fe80::", 10, "ipv6"], // link-local
  ["fec0::", 10, "ipv6"], // site-local (deprecated)
  ["ff00::", 8, "ipv6"], // multicast
];

/** Decides which addresses webhook deliveries may connect to. */
export interface AddressPolicy {
  allows(address: string): boolean;
}

export function addressPolicy(allowNetworks: readonly string[]): AddressPolicy {
  const refused = new BlockList();
  for (const [address, prefix, family] of REFUSED) refused.addSubnet(address, prefix, family);
  const allowed = new BlockList();
  for (const cidr of allowNetworks) {
    const c = parseCidr(cidr);
    if (c) allowed.addSubnet(c.address, c.prefix, c.family);
  }
  return {
    allows(address) {
      const family = isIP(address) === 6 ? "ipv6" : isIP(address) === 4 ? "ipv4" : undefined;
      if (!family) return false;
      return allowed.check(address, family) || !refused.check(address, family);
    },
  };
}
