import type { ServerResponse } from "node:http";
import type { Static } from "typebox";
import type { BusMessage } from "../bus/change-bus.js";
import type { Deps } from "../deps.js";
import { readFeedSummary } from "../feed/feed-state.js";
import { listRowsAfter, type Notification } from "../feed/notifications.js";
import { credentialOf, type Principal, principalOf } from "../identity/authenticate.js";
import { isUnavailable } from "../store/store.js";
import type { StreamRead, StreamReset, StreamUnreadCount } from "./stream-events.js";
import { renewTicket, type TicketLease } from "./tickets.js";

/** Each event name the stream sends, with its data. */
interface StreamEventData {
  notification: Notification;
  "unread-count": Static<typeof StreamUnreadCount>;
  read: Static<typeof StreamRead>;
  reset: Static<typeof StreamReset>;
}

/** Rows a resume may replay; a client further behind gets `event: reset` and refetches. */
export const MAX_REPLAY = 1000;

export interface StreamOptions {
  /** Seconds between heartbeat comments (each also re-checks the feed and the key or session). */
  heartbeatS: number;
  /**
   * Unsent output a stream may hold for its client. Past it, the stream waits for the client to
   * catch up (up to `drainTimeoutMs`) before writing more, and cuts it off if it does not.
   */
  maxBufferBytes: number;
  drainTimeoutMs?: number;
  /** Streams one credential may hold open on this instance. */
  maxPerCredential: number;
}

const DRAIN_TIMEOUT_MS = 5000;

/** The open streams of this process, so shutdown can end them. */
export class StreamHub {
  readonly #streams = new Set<() => void>();
  readonly #perCredential = new Map<string, number>();

  /** Registers an open stream of `credential`; returns what unregisters it. */
  add(credential: string, close: () => void): () => void {
    this.#streams.add(close);
    this.#perCredential.set(credential, this.openFor(credential) + 1);
    return () => {
      if (!this.#streams.delete(close)) return;
      const left = this.openFor(credential) - 1;
      if (left > 0) this.#perCredential.set(credential, left);
      else this.#perCredential.delete(credential);
    };
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Streams open here for one credential. */
  openFor(credential: string): number {
    return this.#perCredential.get(credential) ?? 0;
  }

  closeAll(): void {
    for (const close of [...this.#streams]) close();
  }
}

/**
 * Serves one Server-Sent Events stream of a user's feed on `res` (already hijacked from Fastify):
 *
 * - on connect, `event: unread-count` `{count, version}`; with `lastEventId`, then the rows
 *   after it in id order (at most 1,000, else `event: reset`);
 * - then, whenever the bus says the feed changed (here or on another instance): each new row as
 *   `event: notification` (SSE `id:` = its id), `event: read` `{ids}` or `{all: true}`, and
 *   `event: unread-count` whenever the version grew — versions never go backwards on a stream;
 * - `unread-count` and `reset` carry the SSE `id:` of the newest row the client now has
 *   accounted for, so a client that reconnects before any row arrived resumes without a gap;
 * - a heartbeat comment every `heartbeatS`, which also catches up on anything the bus missed and
 *   re-checks the key or session (a session that expired ends its streams there); a revoked key's
 *   streams, and an ended session's, close as soon as the bus reports it;
 * - opened with a ticket (`lease`), it closes as soon as a newer stream opens with the same
 *   ticket, and each heartbeat renews the ticket (see tickets.ts);
 * - while the store is unavailable the stream stays open on heartbeats alone (a browser's
 *   EventSource gives up for good on a 503 reconnect), and catches up once the store is back.
 *
 * Catch-ups run one at a time per stream; a change during one schedules another, so nothing is
 * sent twice or out of order.
 */
export async function serveFeedStream(
  deps: Deps,
  hub: StreamHub,
  principal: Principal,
  res: ServerResponse,
  lastEventId: number | undefined,
  options: StreamOptions,
  lease?: TicketLease,
): Promise<void> {
  const { userId } = principal;
  const { db } = deps.store;
  let cursor = 0;
  let sentVersion = -1;
  let reads: number[] | "all" | undefined;
  let running = false;
  let again = false;
  let closed = false;

  const sendEvent = <E extends keyof StreamEventData>(event: E, data: StreamEventData[E], id?: number) => {
    if (closed) return;
    res.write(`${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  /**
   * Backpressure: past the buffer limit, wait for the client to take what it has; a client that
   * does not within the drain timeout is slow, and is cut off — its connection destroyed, not
   * ended, since an end would wait behind the very bytes it is not reading.
   */
  const keepUp = async () => {
    if (closed || res.writableLength <= options.maxBufferBytes) return;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), options.drainTimeoutMs ?? DRAIN_TIMEOUT_MS);
      res.once("drain", () => {
        clearTimeout(timer);
        resolve(true);
      });
      res.once("close", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!drained) cutOff();
  };

  const state = () => readFeedSummary(db, userId);

  /** Sends the rows after `cursor` (up to `lastId`), or a reset when there are too many. */
  const sendRowsAfter = async (lastId: number) => {
    if (lastId <= cursor) return;
    const rows = await listRowsAfter(db, userId, cursor, lastId, MAX_REPLAY + 1);
    if (rows.length > MAX_REPLAY) sendEvent("reset", { last_event_id: lastId }, lastId);
    else
      for (const row of rows) {
        sendEvent("notification", row, row.id);
        await keepUp();
      }
    cursor = lastId;
  };

  const catchUp = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        const s = await state();
        await sendRowsAfter(s.lastId);
        if (reads !== undefined) {
          sendEvent("read", reads === "all" ? { all: true } : { ids: reads });
          reads = undefined;
        }
        if (s.version > sentVersion) {
          sendEvent("unread-count", { count: s.unread, version: s.version }, cursor);
          sentVersion = s.version;
        }
        await keepUp();
      } while (again && !closed);
    } catch (error) {
      // The store is away: the stream stays open (heartbeats go on) and catches up at the next
      // heartbeat or bus message once it is back. Anything else ends it; the client reconnects
      // with Last-Event-ID.
      if (!isUnavailable(error)) close();
    } finally {
      running = false;
    }
  };

  /**
   * Closes the stream unless its key or session still works (revoked, ended, expired → closed).
   * A store that cannot answer says nothing either way: the stream stays open.
   */
  const recheck = async () => {
    try {
      await principalOf(deps, principal);
      return true;
    } catch (error) {
      if (isUnavailable(error)) return true;
      close();
      return false;
    }
  };

  const onMessage = (message: BusMessage) => {
    if ("resync" in message) return void catchUp();
    const { changes } = message;
    if (principal.kind === "key" && changes.revokedKeys.has(principal.keyId)) return close();
    if (lease && (changes.tickets.get(lease.hash) ?? 0) > lease.generation) return close();
    // Some of the user's sessions ended (all of them, or the oldest past the cap): is this one?
    if (principal.kind === "session" && changes.endedSessions.has(userId)) void recheck();
    if (!changes.feeds.has(userId)) return;
    const read = changes.reads.get(userId);
    if (read === "all" || reads === "all") reads = "all";
    else if (read) reads = [...(reads ?? []), ...read];
    void catchUp();
  };

  const holdsTicket = async () => lease === undefined || renewTicket(deps, lease, options.heartbeatS);

  const heartbeat = setInterval(() => {
    if (closed) return;
    // Still over the limit a whole heartbeat later: the client has stopped reading.
    if (res.writableLength > options.maxBufferBytes) return cutOff();
    res.write(": heartbeat\n\n");
    Promise.all([recheck(), holdsTicket()]).then(
      ([ok, holds]) => (!ok || !holds ? close() : catchUp()),
      (error: unknown) => {
        if (!isUnavailable(error)) close();
      },
    );
  }, options.heartbeatS * 1000);
  const unsubscribe = deps.store.bus.subscribe(onMessage);
  const forget = hub.add(credentialOf(principal), () => close());

  function close() {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
    forget();
    res.end();
  }

  function cutOff() {
    close();
    res.destroy();
  }
  res.on("close", close);

  // The start — where the client is, then what it missed — counts as a catch-up, so a change
  // announced meanwhile waits for it and runs after.
  running = true;
  try {
    // A newer stream may have taken the ticket before this one subscribed to hear about it.
    if (!(await holdsTicket())) return close();
    const start = await state();
    const resume = lastEventId !== undefined && lastEventId <= start.lastId;
    cursor = resume ? lastEventId : start.lastId;
    sendEvent("unread-count", { count: start.unread, version: start.version }, cursor);
    sentVersion = start.version;
    if (resume) await sendRowsAfter(start.lastId);
    else if (lastEventId !== undefined) sendEvent("reset", { last_event_id: start.lastId }, start.lastId);
  } catch {
    close();
  } finally {
    running = false;
  }
  await catchUp();
}
