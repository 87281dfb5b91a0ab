import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { ConnectionOptions, NatsConnection } from "nats";
import type { ChangeBus } from "./change-bus.js";
import { LocalListeners } from "./local-bus.js";
import type { BusLog } from "./pg-bus.js";
import { decodeChanges, encodeChanges } from "./wire.js";

/** Where changes travel unless `BELFRY_BUS_SUBJECT` names another subject. */
export const DEFAULT_BUS_SUBJECT = "belfry.changes";

/**
 * The largest message sent. NATS servers take 1 MB by default; 64 KiB makes nearly every
 * transaction a single message (some ten thousand user ids) while staying far below any limit an
 * operator is likely to set, and keeps each message a short parse for the receiving event loop.
 */
const MAX_MESSAGE_BYTES = 64 * 1024;
/**
 * Changes announced while NATS is away wait here, up to this much, and go out once it is back
 * (the size of the Go client's reconnect buffer). Past it they are dropped: other instances catch
 * up at their next resync or heartbeat.
 */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** The first connection is tried again this often while NATS cannot be reached. */
const RETRY_MS = 500;

/** Where and how to reach NATS, parsed from `BELFRY_BUS_URL`. */
export interface NatsTarget {
  /** `host:port` of each server. */
  readonly servers: string[];
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** The servers without credentials, for logs and the start-up line. */
  readonly location: string;
}

/**
 * Parses `nats://host:4222`, `nats://user:pass@host:port`, `nats://token@host`, or several such
 * servers comma-separated (one cluster, the same credentials). Throws an Error saying what is
 * wrong, without repeating any credentials.
 *
 * @example
 * parseNatsUrl("nats://belfry:s3cret@nats-1:4222,nats://belfry:s3cret@nats-2:4222").servers;
 * // → ["nats-1:4222", "nats-2:4222"]
 */
export function parseNatsUrl(value: string): NatsTarget {
  const entries = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new Error("names no server");
  const servers: string[] = [];
  const credentials = new Set<string>();
  let target: { user?: string; pass?: string; token?: string } = {};
  for (const entry of entries) {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {}
    // Credentials are never repeated: an entry with any is shown from its last "@" on.
    const shown = entry.includes("@") ? `…@${entry.slice(entry.lastIndexOf("@") + 1)}` : entry;
    if (url?.protocol !== "nats:" || url.hostname === "")
      throw new Error(`has "${shown}", which is not a nats:// URL with a host`);
    if ((url.pathname !== "" && url.pathname !== "/") || url.search || url.hash)
      throw new Error(`has "${shown}", which has a path, query or fragment`);
    servers.push(`${url.hostname}:${url.port || "4222"}`);
    if (url.username === "" && url.password === "") continue;
    credentials.add(`${url.username}:${url.password}`);
    const user = decodeURIComponent(url.username);
    // A name alone is a token, as NATS URLs have it.
    target = url.password === "" ? { token: user } : { user, pass: decodeURIComponent(url.password) };
  }
  if (credentials.size > 1) throw new Error("gives different credentials for different servers");
  return { servers, ...target, location: servers.map((s) => `nats://${s}`).join(",") };
}

/** Why `subject` cannot carry changes (dot-separated tokens, no wildcards), or undefined. */
export function subjectProblem(subject: string): string | undefined {
  if (subject.length > 200) return "is longer than 200 characters";
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(subject))
    return "must be dot-separated tokens of letters, digits, _ and - (no wildcards), e.g. belfry.changes";
  return undefined;
}

/** Waits for `promise`, but no longer than `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  const timeout = new AbortController();
  await Promise.race([promise, sleep(ms, undefined, { signal: timeout.signal }).catch(() => {})]);
  timeout.abort();
}

export interface NatsBusOptions {
  /** The subject changes travel on: every process of one deployment uses the same, and only it. */
  subject?: string;
  log?: BusLog;
  /** Bound on opening a connection to one server. */
  connectMs?: number;
  /** How long close() waits for a connection to send what is still queued, then to drain. */
  closeMs?: number;
}

/**
 * The change bus over core NATS, for deployments where LISTEN/NOTIFY does not work (PostgreSQL
 * behind PgBouncer in transaction mode) or should not carry the load (many instances):
 * - a change is published after its transaction commits (see `transact`), once per transaction,
 *   in the wire form `encodeChanges` makes, in messages of at most 64 KiB;
 * - local subscribers hear a change at once; the process's own messages are not echoed back to it
 *   (and would be ignored by their origin anyway);
 * - the connection opens in the background on the first subscription or publication, retrying
 *   until NATS answers, so a NATS that is down never stops Belfry from starting; once open, the
 *   client reconnects by itself, forever. After every (re)connection, the first included, local
 *   subscribers are told to resync: changes sent meanwhile reached nobody here. Changes published
 *   while NATS is away are queued (bounded) and sent once it is back;
 * - nothing here throws into a committing request: a failed publication is logged, and other
 *   instances catch up at their next resync or heartbeat.
 *
 * Core NATS (at most once) is enough because subscribers only ever re-read the store: a lost
 * message costs a resync or one heartbeat, never data.
 */
export function natsBus(
  url: string,
  { subject = DEFAULT_BUS_SUBJECT, log = () => {}, connectMs = 2000, closeMs = 2000 }: NatsBusOptions = {},
): ChangeBus {
  const target = parseNatsUrl(url);
  const problem = subjectProblem(subject);
  if (problem) throw new Error(`NATS subject "${subject}" ${problem}`);
  const origin = randomBytes(8).toString("hex");
  const listeners = new LocalListeners();
  /** The open connection (connected or reconnecting), from its first connect until it closes. */
  let nc: NatsConnection | undefined;
  /** True while `nc` is connected and subscribed: publications go out rather than into `queue`. */
  let ready = false;
  let started = false;
  let closed = false;
  const queue: string[] = [];
  let queuedBytes = 0;
  let dropping = false;
  /** Told the next time the bus is ready (close() waits so to send the queue). */
  const waiting = new Set<() => void>();

  const send = (c: NatsConnection, payload: string) => {
    try {
      c.publish(subject, payload);
    } catch (error) {
      log("change bus publish to NATS failed", error);
    }
  };

  /** Makes sure the server has the subscription, then sends the queue and tells subscribers. */
  const becomeReady = async (c: NatsConnection) => {
    try {
      await c.flush();
    } catch {
      return; // lost again: the next reconnect comes back here
    }
    if (c !== nc || c.isClosed()) return;
    ready = true;
    dropping = false;
    for (const payload of queue.splice(0)) send(c, payload);
    queuedBytes = 0;
    for (const resolve of waiting) resolve();
    waiting.clear();
    if (closed) return;
    // Resync after every connection, the first included: a subscriber that came before it was
    // ready (or while it was reconnecting) may have missed changes meanwhile.
    listeners.emit({ resync: true });
  };

  const watch = async (c: NatsConnection, Events: typeof import("nats").Events) => {
    for await (const status of c.status()) {
      if (status.type === Events.Disconnect) {
        ready = false;
        if (!closed) log("change bus lost its NATS connection; reconnecting", new Error(String(status.data)));
      } else if (status.type === Events.Reconnect) void becomeReady(c);
      // The server refused something (a permission): the client goes on, so say it here.
      else if (status.type === Events.Error) log("NATS reported an error", new Error(String(status.data)));
    }
  };

  const run = async () => {
    const { connect, Events } = await import("nats");
    const options: ConnectionOptions = {
      servers: target.servers,
      ...(target.user !== undefined && { user: target.user, pass: target.pass }),
      ...(target.token !== undefined && { token: target.token }),
      name: `belfry-${process.pid}`,
      noEcho: true,
      timeout: connectMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      // A connection that only receives would not notice a server gone silent (a failover, a
      // partition): a PING every 2 s, two unanswered, and it reconnects.
      pingInterval: 2000,
      maxPingOut: 2,
    };
    // Tried every RETRY_MS while NATS cannot be reached: only the first failure of a streak is logged.
    let failing = false;
    while (!closed) {
      let c: NatsConnection;
      try {
        c = await connect(options);
      } catch (error) {
        if (!closed && !failing) log("change bus cannot connect to NATS; retrying", error);
        failing = true;
        await sleep(RETRY_MS);
        continue;
      }
      failing = false;
      if (closed) {
        await c.close().catch(() => {});
        break;
      }
      nc = c;
      c.subscribe(subject, {
        callback: (error, message) => {
          if (error) return log("change bus subscription to NATS failed", error);
          const changes = decodeChanges(message.string(), origin);
          try {
            if (changes) listeners.emit({ changes });
          } catch (e) {
            log("change bus subscriber failed", e);
          }
        },
      });
      void watch(c, Events).catch((error: unknown) => log("change bus NATS status failed", error));
      await becomeReady(c);
      // With unlimited reconnects the client closes only when told to, or on a fatal error
      // (credentials refused again and again): then a new connection is tried.
      const error = await c.closed();
      ready = false;
      nc = undefined;
      if (!closed) {
        log("change bus NATS connection closed; connecting again", error);
        await sleep(RETRY_MS);
      }
    }
  };

  const start = () => {
    if (started) return;
    started = true;
    void run().catch((error: unknown) => log("change bus stopped", error));
  };

  return {
    publish(changes) {
      listeners.emit({ changes });
      if (closed) return;
      start();
      const limit = Math.min(MAX_MESSAGE_BYTES, nc?.info?.max_payload ?? MAX_MESSAGE_BYTES);
      for (const payload of encodeChanges(changes, origin, limit)) {
        if (ready && nc) {
          send(nc, payload);
        } else if (queuedBytes + payload.length <= MAX_QUEUED_BYTES) {
          queue.push(payload);
          queuedBytes += payload.length;
        } else if (!dropping) {
          dropping = true;
          log("change bus queue is full while NATS is away; dropping changes", new Error("queue full"));
        }
      }
    },
    subscribe(listener) {
      const unsubscribe = listeners.add(listener);
      start();
      return unsubscribe;
    },
    async close() {
      if (closed) return;
      // A short-lived process (`belfry admin`) may commit before its connection is up: give the
      // queue a moment to go out.
      if (queue.length > 0) await within(new Promise<void>((resolve) => waiting.add(resolve)), closeMs);
      closed = true;
      if (queue.length > 0)
        log(
          "change bus closed before NATS took its changes; other processes catch up at their next heartbeat",
          new Error(`${queue.length} message(s) not sent`),
        );
      const c = nc;
      if (!c || c.isClosed()) return;
      await within(
        c.drain().catch(() => {}),
        closeMs,
      );
      await c.close().catch(() => {});
    },
  };
}
