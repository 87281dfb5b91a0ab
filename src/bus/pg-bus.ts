import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { ChangeBus } from "./change-bus.js";
import { LocalListeners } from "./local-bus.js";
import { decodeChanges, encodeChanges } from "./wire.js";

const CHANNEL = "belfry_changes";
/**
 * The listener retries at least this often while PostgreSQL is away, so that once it is back the
 * listener listens again (and subscribers resync) well within the 5 s recovery promise.
 */
const MAX_BACKOFF_MS = 1000;
/** How often an idle listener checks that its server still answers. */
const CHECK_EVERY_MS = 5000;

/** Where the bus reports trouble it handles itself (a lost listener connection, a failed NOTIFY). */
export type BusLog = (message: string, error: unknown) => void;

/** Where NOTIFYs are sent: the store's pool. */
export interface Notifier {
  query(text: string, values: unknown[]): Promise<unknown>;
}

export interface PgBusOptions {
  /** Bound on opening the listening connection. */
  connectMs?: number;
  /** Bound on the listener's liveness check. */
  checkMs?: number;
}

/**
 * The change bus over PostgreSQL LISTEN/NOTIFY, done the way that scales:
 * - NOTIFY is sent after the write transaction commits, never inside it (a NOTIFY in a committing
 *   transaction takes a global lock that serialises every writer), once per transaction (the
 *   change is already coalesced), with ids only and under the 8000-byte payload limit;
 * - each process keeps one dedicated listening connection, opened on the first subscription,
 *   which reconnects by itself; once it listens (the first time too) it tells subscribers to
 *   resync, since changes committed before it was ready were announced to nobody here.
 *
 * A listening connection only ever receives, so it would not notice a server that vanished
 * without closing it (a failover to another host): every 5 s it runs `select 1`, and a check
 * that fails or goes unanswered ends the connection, which reconnects.
 */
export function pgBus(
  connectionString: string,
  notifier: Notifier,
  log: BusLog = () => {},
  { connectMs = 5000, checkMs = 5000 }: PgBusOptions = {},
): ChangeBus {
  const origin = randomBytes(8).toString("hex");
  const listeners = new LocalListeners();
  /** The listening connection, from its creation on (so close() can end one still connecting). */
  let current: pg.Client | undefined;
  let started = false;
  let closed = false;

  const listen = async () => {
    let backoff = 100;
    // Tried every second during an outage: only the first failure of a streak is logged.
    let failing = false;
    while (!closed) {
      const c = new pg.Client({
        connectionString,
        connectionTimeoutMillis: connectMs,
        keepAlive: true,
        application_name: "belfry-listener",
      });
      current = c;
      const ended = new Promise<void>((resolve) => {
        c.on("end", () => resolve());
        c.on("error", (error) => {
          log("change bus listener failed; reconnecting", error);
          c.connection.stream.destroy();
        });
      });
      c.on("notification", (n) => {
        if (n.channel !== CHANNEL || !n.payload) return;
        const changes = decodeChanges(n.payload, origin);
        if (changes) listeners.emit({ changes });
      });
      let check: NodeJS.Timeout | undefined;
      try {
        await c.connect();
        await c.query(`listen ${CHANNEL}`);
        if (closed) break;
        backoff = 100;
        failing = false;
        check = setInterval(() => {
          c.query({ text: "select 1", query_timeout: checkMs } as pg.QueryConfig).catch((error: unknown) => {
            log("change bus listener stopped answering; reconnecting", error);
            c.connection.stream.destroy();
          });
        }, CHECK_EVERY_MS);
        // Resync after every LISTEN, the first included: a subscriber that came before the
        // listener was ready (or while it was reconnecting) may have missed a NOTIFY meanwhile.
        listeners.emit({ resync: true });
        await ended;
      } catch (error) {
        if (!closed && !failing) log("change bus listener cannot connect; retrying", error);
        failing = true;
        c.connection.stream.destroy();
      }
      clearInterval(check);
      if (!closed) {
        await sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  };

  /** NOTIFYs on their way, which close() lets finish. */
  const sending = new Set<Promise<void>>();
  const notify = async (payloads: string[]) => {
    for (const payload of payloads) {
      try {
        await notifier.query("select pg_notify($1, $2)", [CHANNEL, payload]);
      } catch (error) {
        // The change is committed; other instances catch up at their next resync or heartbeat.
        log("change bus NOTIFY failed", error);
      }
    }
  };

  return {
    publish(changes) {
      listeners.emit({ changes });
      const sent = notify(encodeChanges(changes, origin));
      sending.add(sent);
      void sent.finally(() => sending.delete(sent));
    },
    subscribe(listener) {
      const unsubscribe = listeners.add(listener);
      if (!started) {
        started = true;
        void listen();
      }
      return unsubscribe;
    },
    async close() {
      closed = true;
      await Promise.all(sending);
      await current?.end().catch(() => {});
    },
  };
}
