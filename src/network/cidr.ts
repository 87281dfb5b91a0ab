import { isIPv4, isIPv6 } from "node:net";

/** A network in CIDR notation, taken apart. */
export interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/**
 * `10.0.0.0/8` → its parts, or undefined when it is not an IPv4 or IPv6 CIDR.
 *
 * @example
 * parseCidr("::1/128"); // { address: "::1", prefix: 128, family: "ipv6" }
 */
export function parseCidr(cidr: string): Cidr | undefined {
  const [address = "", bits, ...rest] = cidr.split("/");
  const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : undefined;
  const prefix = bits !== undefined && /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
  if (!family || rest.length > 0 || !(prefix >= 0 && prefix <= (family === "ipv4" ? 32 : 128)))
    return undefined;
  return { address, prefix, family };
}

/** True for a bare IPv4 or IPv6 address (no prefix). */
export const isIpAddress = (text: string): boolean => isIPv4(text) || isIPv6(text);
