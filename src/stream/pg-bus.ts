import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { type ChangeBus, decodeChanges, encodeChanges, LocalListeners } from "./bus.js";

const CHANNEL = "belfry_changes";
const MAX_BACKOFF_MS = 5000;

/** Where the bus reports trouble it handles itself (a lost listener connection, a failed NOTIFY). */
export type BusLog = (message: string, error: unknown) => void;

/**
 * The change bus over PostgreSQL LISTEN/NOTIFY, done the way that scales:
 * - NOTIFY is sent after the write transaction commits, never inside it (a NOTIFY in a committing
 *   transaction takes a global lock that serialises every writer), once per transaction (the
 *   change is already coalesced), with ids only and under the 8000-byte payload limit;
 * - each process keeps one dedicated listening connection, opened on the first subscription,
 *   which reconnects by itself; once it listens (the first time too) it tells subscribers to
 *   resync, since changes committed before it was ready were announced to nobody here.
 */
export function pgBus(connectionString: string, pool: pg.Pool, log: BusLog = () => {}): ChangeBus {
  const origin = randomBytes(8).toString("hex");
  const listeners = new LocalListeners();
  let client: pg.Client | undefined;
  let started = false;
  let closed = false;

  const listen = async () => {
    let backoff = 100;
    while (!closed) {
      const c = new pg.Client({
        connectionString,
        connectionTimeoutMillis: 5000,
        application_name: "belfry-listener",
      });
      const ended = new Promise<void>((resolve) => {
        c.on("end", () => resolve());
        c.on("error", (error) => {
          log("change bus listener failed; reconnecting", error);
          void c.end().catch(() => {});
        });
      });
      c.on("notification", (n) => {
        if (n.channel !== CHANNEL || !n.payload) return;
        const changes = decodeChanges(n.payload, origin);
        if (changes) listeners.emit({ changes });
      });
      try {
        await c.connect();
        await c.query(`listen ${CHANNEL}`);
        client = c;
        backoff = 100;
        // Resync after every LISTEN, the first included: a subscriber that came before the
        // listener was ready (or while it was reconnecting) may have missed a NOTIFY meanwhile.
        listeners.emit({ resync: true });
        await ended;
      } catch (error) {
        if (!closed) log("change bus listener cannot connect; retrying", error);
        await c.end().catch(() => {});
      }
      client = undefined;
      if (!closed) {
        await sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  };

  return {
    async publish(changes) {
      listeners.emit({ changes });
      for (const payload of encodeChanges(changes, origin)) {
        try {
          await pool.query("select pg_notify($1, $2)", [CHANNEL, payload]);
        } catch (error) {
          // The change is committed; other instances catch up at their next resync or heartbeat.
          log("change bus NOTIFY failed", error);
        }
      }
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
      await client?.end().catch(() => {});
    },
  };
}
