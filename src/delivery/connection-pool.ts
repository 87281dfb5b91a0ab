import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { LookupFunction } from "node:net";
import type { Duplex } from "node:stream";
import type { ResolvedAddress } from "../network/address-policy.js";

/**
 * Resolves the address a new connection to `url` may use, or throws if it may not connect at all:
 * the SSRF guard (`resolveTarget`), run before every new connection.
 */
export type CheckTarget = (url: URL) => Promise<ResolvedAddress>;

export interface ConnectionPoolOptions {
  /** How long an idle connection is kept for the next request; 0 = a connection per request. */
  keepAliveMs: number;
  /** The SSRF guard, asked before every new connection (never for a reused one). */
  check: CheckTarget;
  /** At most this many origins keep an agent; the least recently used idle one is dropped. */
  maxOrigins?: number;
  /** Told about every connection opened. */
  onOpen?: () => void;
}

/** The default bound on pooled origins. */
export const MAX_POOLED_ORIGINS = 256;

type Connect = (options: object, callback: (error: Error | null, socket?: Duplex) => void) => undefined;

interface Pooled {
  agent: HttpAgent;
  /** Requests using the agent now: an agent in use is never dropped (that would cut them off). */
  inUse: number;
}

/**
 * Keep-alive connections to webhook endpoints, an http(s) Agent per origin (scheme, host, port).
 *
 * Every new connection first runs the SSRF guard and connects to exactly the address it checked
 * (no second lookup can swap it), so a name that now resolves to a refused address is refused at
 * its next connection; a connection already open stays with the address checked when it opened.
 * That check replaces the agent's `createConnection` rather than its `lookup`, because Node skips
 * `lookup` for literal IP hosts. TLS is verified against the URL's host name.
 *
 * Idle connections close after `keepAliveMs`; at most `maxOrigins` origins keep an agent, the
 * least recently used idle one being dropped with its connections.
 */
export class ConnectionPool {
  readonly #agents = new Map<string, Pooled>();
  readonly #options: ConnectionPoolOptions;
  readonly #maxOrigins: number;

  constructor(options: ConnectionPoolOptions) {
    this.#options = options;
    this.#maxOrigins = options.maxOrigins ?? MAX_POOLED_ORIGINS;
  }

  /** The pooled agent of `url`'s origin, counted in use until {@link release}. */
  acquire(url: URL): HttpAgent {
    const key = url.origin;
    let pooled = this.#agents.get(key);
    if (pooled) this.#agents.delete(key);
    else {
      this.#evict();
      pooled = { agent: this.#agent(url, this.#options.keepAliveMs), inUse: 0 };
    }
    // Re-inserted last: the map's order is least recently used first.
    this.#agents.set(key, pooled);
    pooled.inUse++;
    return pooled.agent;
  }

  /** Ends a use that {@link acquire} began. */
  release(url: URL): void {
    const pooled = this.#agents.get(url.origin);
    if (pooled && pooled.inUse > 0) pooled.inUse--;
  }

  /**
   * An agent that opens a fresh connection for one request and does not keep it: for the one
   * retry of a request whose reused connection failed before any response.
   */
  fresh(url: URL): HttpAgent {
    return this.#agent(url, 0);
  }

  /** Origins holding an agent now. */
  get origins(): number {
    return this.#agents.size;
  }

  /** Closes every connection, idle or not. */
  close(): void {
    for (const { agent } of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }

  #evict(): void {
    if (this.#agents.size < this.#maxOrigins) return;
    for (const [key, pooled] of this.#agents) {
      if (pooled.inUse > 0) continue;
      pooled.agent.destroy();
      this.#agents.delete(key);
      return;
    }
  }

  #agent(url: URL, keepAliveMs: number): HttpAgent {
    const keepAlive = keepAliveMs > 0;
    const options = { keepAlive, scheduling: "lifo" as const, ...(keepAlive && { timeout: keepAliveMs }) };
    const agent = url.protocol === "https:" ? new HttpsAgent(options) : new HttpAgent(options);
    const open = agent.createConnection.bind(agent) as (options: object) => Duplex;
    const { check, onOpen } = this.#options;
    const connect: Connect = (connectOptions, callback) => {
      check(url).then(
        (target) => {
          let socket: Duplex;
          try {
            socket = open({ ...connectOptions, lookup: lookupOf(target) });
          } catch (error) {
            callback(error as Error);
            return;
          }
          onOpen?.();
          callback(null, socket);
        },
        (error: Error) => callback(error),
      );
      return undefined;
    };
    // The agent accepts a createConnection that answers through its callback.
    (agent as unknown as { createConnection: Connect }).createConnection = connect;
    return agent;
  }
}

/** A lookup that answers `target`, whatever it is asked (Node may ask for one address or all). */
function lookupOf(target: ResolvedAddress): LookupFunction {
  return (_host, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: ResolvedAddress[]) => void)(null, [target]);
    } else callback(null, target.address, target.family);
  };
}
