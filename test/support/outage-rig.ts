import { setTimeout as sleep } from "node:timers/promises";
import type { ServerProcess } from "./process.js";
import { type Receiver, startReceiver } from "./receiver.js";
import { openSse, type SseClient } from "./sse.js";

/** Environment for a server under outage tests: loopback webhooks, quick polling and heartbeats. */
export const outageEnv = (admin: string): Record<string, string> => ({
  BELFRY_ADMIN_TOKEN: admin,
  BELFRY_WEBHOOK_ALLOW_HTTP: "true",
  BELFRY_WEBHOOK_ALLOW_NETWORKS: "127.0.0.0/8,::1/128",
  BELFRY_WEBHOOK_POLL_MS: "200",
  BELFRY_WEBHOOK_RETRY_SCHEDULE: "0,1,1,1,1,1",
  BELFRY_SSE_HEARTBEAT_S: "1",
});

/** One request as a client saw it. */
export interface Sample {
  kind: "ingest" | "unread-count" | "list" | "readyz" | "healthz" | "stream";
  startedAt: number;
  endedAt: number;
  /** 0 when no answer came (connection refused or reset, or no answer within 20 s). */
  status: number;
  errorType?: string;
  retryAfter?: string | null;
}

/** When the store was away: from the moment it was taken away until it accepted connections again. */
export interface Outage {
  from: number;
  to: number;
  /** From `to` until the first acknowledged ingest. */
  recoveryMs: number;
}

interface User {
  id: number;
  key: string;
}

/**
 * A running server under load: ingest clients (half their events for a user with a webhook
 * endpoint and an open live stream, half for another user), readers of the unread count and the
 * list, and pollers of /readyz and /healthz. Every request is recorded with its timing.
 */
export interface OutageRig {
  server: ServerProcess;
  /** The server's exit code or signal, if it died. */
  exited(): number | string | undefined;
  /** Whether the server ended the live stream. */
  streamEnded(): boolean;
  samples: Sample[];
  /** Acknowledged (202) ingests by event id, with the body sent. */
  acknowledged: Map<string, IngestBody>;
  outages: Outage[];
  receiver: Receiver;
  stream: SseClient;
  /** The user with the stream and the webhook endpoint, and another. */
  watched: User;
  other: User;
  /** Takes the store away with `down`, keeps the load on for `holdMs`, brings it back with `up`. */
  outage(down: () => Promise<void>, up: () => Promise<void>, holdMs?: number): Promise<Outage>;
  /** Ingests one event for the watched user, retrying until it is acknowledged. */
  ingestUntilAcknowledged(id: string): Promise<void>;
  /** Stops the load and waits for every client to finish its request. */
  stopLoad(): Promise<void>;
  /** Every notification title in a user's feed, paging through it. */
  feedTitles(user: User): Promise<string[]>;
  /** Re-posts every acknowledged event (batches of 1,000): the answers, per event. */
  repostAcknowledged(): Promise<{ id: string; duplicate?: boolean; error?: unknown }[]>;
  close(): Promise<void>;
}

export interface IngestBody {
  id: string;
  type: "system.payment.received";
  user_id: number;
  data: { amount_cents: number; balance_cents: number };
  /** The event id again, so feed rows, stream events and webhook payloads name their event. */
  title: string;
}

const TIMEOUT_MS = 20_000;

/** One request to the server under test, with a 20 s bound so a hang shows as a failure. */
export async function request(
  server: ServerProcess,
  method: string,
  path: string,
  key: string | undefined,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
): Promise<{ status: number; json: any; retryAfter: string | null }> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(server.url + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await r.text();
  return {
    status: r.status,
    json: text ? JSON.parse(text) : undefined,
    retryAfter: r.headers.get("retry-after"),
  };
}

export async function startOutageRig(server: ServerProcess, admin: string, tag: string): Promise<OutageRig> {
  const mustCall = async (method: string, path: string, key: string, body?: unknown) => {
    const r = await request(server, method, path, key, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  };
  const user = async (name: string): Promise<User> => {
    const u = await mustCall("POST", "/admin/v1/users", admin, { email: `${name}-${tag}@example.com` });
    const k = await mustCall("POST", `/admin/v1/users/${u.id}/keys`, admin, { name: "main" });
    return { id: u.id, key: k.key };
  };
  const watched = await user("watched");
  const other = await user("other");
  const receiver = await startReceiver();
  await mustCall("POST", "/api/v1/me/webhooks", watched.key, { url: receiver.url });
  const stream = await openSse(`${server.url}/api/v1/me/notifications/stream`, {
    authorization: `Bearer ${watched.key}`,
  });
  if (stream.status !== 200) throw new Error(`stream: ${stream.status}`);
  let exited: number | string | undefined;
  void server.exited.then((code) => (exited = code));
  let streamEnded = false;
  void stream.ended.then(() => (streamEnded = true));

  const samples: Sample[] = [];
  const acknowledged = new Map<string, IngestBody>();
  const outages: Outage[] = [];
  const timed = async (kind: Sample["kind"], method: string, path: string, key?: string, body?: unknown) => {
    const startedAt = Date.now();
    try {
      const r = await request(server, method, path, key, body);
      samples.push({
        kind,
        startedAt,
        endedAt: Date.now(),
        status: r.status,
        errorType: r.json?.error?.type,
        retryAfter: r.retryAfter,
      });
      return r;
    } catch {
      samples.push({ kind, startedAt, endedAt: Date.now(), status: 0 });
      return undefined;
    }
  };
  const ingest = async (body: IngestBody) => {
    const r = await timed("ingest", "POST", "/admin/v1/events", admin, body);
    if (r?.status === 202) acknowledged.set(body.id, body);
    return r?.status;
  };
  const event = (id: string, u: User, n: number): IngestBody => ({
    id,
    type: "system.payment.received",
    user_id: u.id,
    data: { amount_cents: 100 + n, balance_cents: 10_000 },
    title: id,
  });

  let running = true;
  const clients: Promise<void>[] = [];
  // Clients pause between requests, like real ones, so the load stays reasonable on a small
  // machine; a refused request is retried on the next turn with a new id.
  for (let c = 0; c < 12; c++) {
    clients.push(
      (async () => {
        for (let i = 0; running; i++) {
          await ingest(event(`${tag}-${c}-${i}`, c % 2 === 0 ? watched : other, i));
          await sleep(50);
        }
      })(),
    );
  }
  for (let c = 0; c < 4; c++) {
    const u = c % 2 === 0 ? watched : other;
    clients.push(
      (async () => {
        while (running) {
          await timed("unread-count", "GET", "/api/v1/me/notifications/unread-count", u.key);
          await timed("list", "GET", "/api/v1/me/notifications?page=1&page_size=20", u.key);
          await sleep(50);
        }
      })(),
    );
  }
  clients.push(
    (async () => {
      while (running) {
        await timed("readyz", "GET", "/readyz");
        await timed("healthz", "GET", "/healthz");
        await sleep(100);
      }
    })(),
  );

  // The same body every time: a try answered 503 may still have committed, and its repeat must
  // then be a duplicate, not a conflict.
  const ingestUntilAcknowledged = async (id: string) => {
    const body = event(id, watched, 0);
    while ((await ingest(body)) !== 202) await sleep(50);
  };

  const rig: OutageRig = {
    server,
    exited: () => exited,
    streamEnded: () => streamEnded,
    samples,
    acknowledged,
    outages,
    receiver,
    stream,
    watched,
    other,
    async outage(down, up, holdMs = 2500) {
      const from = Date.now();
      await down();
      await sleep(holdMs / 2);
      // A new live stream while the store is away: a 503 like any route, or served by reads alone.
      const startedAt = Date.now();
      const opened = await openSse(`${server.url}/api/v1/me/notifications/stream`, {
        authorization: `Bearer ${watched.key}`,
      }).catch(() => undefined);
      if (opened && opened.status !== 200) await opened.ended;
      samples.push({
        kind: "stream",
        startedAt,
        endedAt: Date.now(),
        status: opened?.status ?? 0,
        errorType: opened?.events.find((e) => e.event === "error")?.json?.error?.type,
        retryAfter: (opened?.headers["retry-after"] as string | undefined) ?? null,
      });
      opened?.close();
      await sleep(holdMs / 2);
      await up();
      const to = Date.now();
      // Recovery: the first acknowledged write after the store is back.
      await ingestUntilAcknowledged(`${tag}-back-${outages.length}`);
      const outage = { from, to, recoveryMs: Date.now() - to };
      outages.push(outage);
      return outage;
    },
    ingestUntilAcknowledged,
    async stopLoad() {
      running = false;
      await Promise.all(clients);
    },
    async feedTitles(u) {
      const titles: string[] = [];
      for (let page = 1; ; page++) {
        const r = await mustCall("GET", `/api/v1/me/notifications?page=${page}&page_size=200`, u.key);
        titles.push(...r.items.map((n: { title: string }) => n.title));
        if (r.items.length < 200) return titles;
      }
    },
    async repostAcknowledged() {
      const bodies = [...acknowledged.values()];
      const results = [];
      for (let i = 0; i < bodies.length; i += 1000) {
        const r = await mustCall("POST", "/admin/v1/events/batch", admin, {
          events: bodies.slice(i, i + 1000),
        });
        results.push(...r.results);
      }
      return results;
    },
    async close() {
      running = false;
      stream.close();
      await receiver.close();
    },
  };
  return rig;
}
