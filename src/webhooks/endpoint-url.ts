import { isIP } from "node:net";
import type { Deps } from "../deps.js";
import { invalidRequest } from "../errors.js";
import { type AddressPolicy, addressPolicy, type ResolvedAddress } from "../network/address-policy.js";

export const MAX_URL_LENGTH = 2048;

/** Why a target cannot be connected to: its name does not resolve, or it is a refused address. */
export class TargetError extends Error {
  constructor(
    readonly errorClass: "dns" | "blocked",
    message: string,
  ) {
    super(message);
    this.name = "TargetError";
  }
}

/**
 * Checks an endpoint URL when it is created or changed: absolute, https (or http when allowed),
 * no credentials or fragment, at most 2048 characters, and not naming or resolving to a refused
 * address. A name that does not resolve yet is accepted; attempts will report `dns`.
 */
export async function checkEndpointUrl(deps: Deps, raw: string): Promise<string> {
  if (raw.length > MAX_URL_LENGTH) throw invalidRequest(`url must be at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidRequest("url must be an absolute URL, e.g. https://example.com/webhooks");
  }
  const schemes = deps.webhooks.allowHttp ? ["https:", "http:"] : ["https:"];
  if (!schemes.includes(url.protocol)) {
    throw invalidRequest(deps.webhooks.allowHttp ? "url must use https or http" : "url must use https");
  }
  if (url.username || url.password) throw invalidRequest("url must not contain credentials");
  if (url.hash) throw invalidRequest("url must not contain a #fragment");
  try {
    await resolveTarget(deps, url);
  } catch (error) {
    if (error instanceof TargetError && error.errorClass === "blocked")
      throw invalidRequest(`url ${error.message}`);
    if (!(error instanceof TargetError)) throw error;
  }
  const normalised = url.toString();
  // Percent-encoding can lengthen a URL: the limit holds for what is stored and shown.
  if (normalised.length > MAX_URL_LENGTH)
    throw invalidRequest(`url must be at most ${MAX_URL_LENGTH} characters`);
  return normalised;
}

const policies = new WeakMap<readonly string[], AddressPolicy>();
const policyFor = (allow: readonly string[]) => {
  let policy = policies.get(allow);
  if (!policy) {
    policy = addressPolicy(allow);
    policies.set(allow, policy);
  }
  return policy;
};

/**
 * The address to connect to for `url`: its literal IP, or the first address its name resolves
 * to — provided every address it resolves to is allowed, so a name that mixes public and
 * private addresses is refused outright. The caller connects to exactly this address.
 */
export async function resolveTarget(deps: Deps, url: URL): Promise<ResolvedAddress> {
  const policy = policyFor(deps.webhooks.allowNetworks);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const literal = isIP(host);
  let addresses: ResolvedAddress[];
  if (literal !== 0) {
    addresses = [{ address: host, family: literal === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await deps.resolve(host);
    } catch {
      throw new TargetError("dns", `host ${host} does not resolve`);
    }
    if (addresses.length === 0) throw new TargetError("dns", `host ${host} does not resolve`);
  }
  const refused = addresses.find((a) => !policy.allows(a.address));
  if (refused) {
    throw new TargetError(
      "blocked",
      `resolves to a refused address (${literal ? "it" : host} is loopback, private, link-local or otherwise not public)`,
    );
  }
  return addresses[0] as ResolvedAddress;
}
