import { createServer } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "vitest";
import type { ServerProcess } from "./process.js";
import { type Receiver, startReceiver, waitFor } from "./receiver.js";
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

async function request(
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

/**
 * How long a request waited while the store was away: from when it was sent (or when the outage
 * began, for one already waiting then) until its answer — or, for one that succeeded because the
 * store came back meanwhile, until the store was back. A refusal counts whole, even one that came
 * after the store's return.
 */
export const waitDuringOutage = (s: Sample, outage: Outage) =>
  (s.status === 200 || s.status === 202 ? Math.min(s.endedAt, outage.to) : s.endedAt) -
  Math.max(s.startedAt, outage.from);

/** The longest wait of any request during any outage (see `waitDuringOutage`). */
export const longestWaitDuringOutages = (rig: OutageRig) =>
  rig.samples.reduce((longest, s) => {
    const outage = rig.outages.find((o) => s.startedAt <= o.to && s.endedAt >= o.from);
    return outage ? Math.max(longest, waitDuringOutage(s, outage)) : longest;
  }, 0);

/** A sample that is neither a success nor the 503 the contract allows while the store is away. */
export const isBadAnswer = (s: Sample) =>
  !(
    s.status === 200 ||
    s.status === 202 ||
    (s.status === 503 && s.errorType === "unavailable_error" && /^[1-9]\d*$/.test(s.retryAfter ?? ""))
  );

/** Event ids named by webhook payloads the receiver got (their `title`). */
export const deliveredIds = (receiver: Receiver) =>
  new Set(receiver.received.map((r) => (JSON.parse(r.body) as { title: string }).title));

/** Event ids named by `notification` events on a stream. */
export const streamedIds = (stream: SseClient) =>
  new Set(stream.events.filter((e) => e.event === "notification").map((e) => e.json?.title as string));

/**
 * Checks what the contract promises about a store outage, once the load has stopped: the server
 * lived; while the store was away no client waited more than 2 s and every failure was a 503
 * unavailable_error with Retry-After; /readyz said 503 during each outage and 200 after, /healthz
 * 200 throughout; the server took writes again within 5 s of the store's return; every
 * acknowledged event is stored exactly once; the live stream stayed open and carried every
 * acknowledged event of its user; and the webhook endpoint received every one of them.
 */
export async function expectOutagePromises(rig: OutageRig, { readsServed }: { readsServed: boolean }) {
  expect(rig.exited(), rig.server.output().slice(-3000)).toBeUndefined();
  // The one bound on time besides recovery: the contract's own promise, with a generous margin.
  expect(longestWaitDuringOutages(rig)).toBeLessThanOrEqual(2000);
  expect(rig.samples.filter(isBadAnswer)).toEqual([]);
  for (const outage of rig.outages) {
    const inside = rig.samples.filter((s) => s.startedAt >= outage.from && s.endedAt <= outage.to);
    expect(inside.filter((s) => s.kind === "ingest" && s.status === 503).length).toBeGreaterThan(0);
    expect(inside.filter((s) => s.kind === "readyz" && s.status === 503).length).toBeGreaterThan(0);
    const reads = inside.filter((s) => s.kind === "unread-count");
    // The embedded store can still be read while it cannot be written; PostgreSQL cannot at all.
    if (readsServed) expect(reads.filter((s) => s.status === 200).length).toBeGreaterThan(0);
    else expect(reads.filter((s) => s.status === 503).length).toBeGreaterThan(0);
    expect(outage.recoveryMs).toBeLessThanOrEqual(5000);
  }
  expect(rig.samples.filter((s) => s.kind === "healthz" && s.status !== 200)).toEqual([]);
  expect(rig.samples.filter((s) => s.kind === "readyz").at(-1)?.status).toBe(200);

  // Acknowledged means stored, once: each re-post is a duplicate, each event one feed row.
  const reposted = await rig.repostAcknowledged();
  expect(reposted.filter((r) => r.duplicate !== true)).toEqual([]);
  for (const user of [rig.watched, rig.other]) {
    const counts = new Map<string, number>();
    for (const title of await rig.feedTitles(user)) counts.set(title, (counts.get(title) ?? 0) + 1);
    const theirs = [...rig.acknowledged.values()].filter((b) => b.user_id === user.id).map((b) => b.id);
    expect(theirs.filter((id) => counts.get(id) !== 1)).toEqual([]);
  }

  // The stream, open since before the first outage, carries every acknowledged event of its user:
  // those committed around the outages (caught up afterwards) and those after.
  const watched = [...rig.acknowledged.values()].filter((b) => b.user_id === rig.watched.id).map((b) => b.id);
  await waitFor(() => watched.every((id) => streamedIds(rig.stream).has(id)), 20_000, "the stream");
  expect(rig.streamEnded()).toBe(false);
  // Delivery resumed: each of those events reached the webhook endpoint at least once.
  await waitFor(() => watched.every((id) => deliveredIds(rig.receiver).has(id)), 30_000, "every webhook");
}

/**
 * A delivery the receiver acknowledged while the store was away — so that its outcome could not
 * be recorded then — is recorded once the store is back, and not sent again: at least once, with
 * no duplicate that the outage alone would explain. The receiver takes the store away (`down`)
 * when the delivery arrives, acknowledges it, and brings the store back (`up`) after `holdMs`.
 */
export async function expectAcknowledgedDeliveryKept(
  server: ServerProcess,
  admin: string,
  down: () => Promise<void>,
  up: () => Promise<void>,
  holdMs = 1500,
): Promise<void> {
  const arrived: string[] = [];
  let outage: Promise<void> | undefined;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      arrived.push(String(req.headers["webhook-id"]));
      outage ??= (async () => {
        await down();
        res.writeHead(204).end();
        await sleep(holdMs);
        await up();
      })();
      if (arrived.length > 1) res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = receiver.address() as { port: number };
    const call = async (method: string, path: string, key: string, body?: unknown) => {
      const r = await request(server, method, path, key, body);
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json;
    };
    const user = await call("POST", "/admin/v1/users", admin, { email: `kept-${port}@example.com` });
    const key = (await call("POST", `/admin/v1/users/${user.id}/keys`, admin, { name: "k" })).key;
    const endpoint = await call("POST", "/api/v1/me/webhooks", key, { url: `http://127.0.0.1:${port}/kept` });
    await call("POST", "/admin/v1/events", admin, {
      id: `kept-${port}`,
      type: "system.payment.received",
      user_id: user.id,
      data: { amount_cents: 1, balance_cents: 1 },
    });
    await waitFor(() => arrived.length > 0, 15_000, "the delivery to arrive");
    await outage;
    const delivery = await waitFor(
      async () => {
        const r = await request(server, "GET", `/api/v1/me/webhooks/${endpoint.id}/deliveries`, key);
        const item = r.status === 200 ? r.json.items[0] : undefined;
        return item?.status === "succeeded" ? item : undefined;
      },
      15_000,
      "the delivery to be recorded",
    );
    expect(delivery.attempts.map((a: { response_status: number }) => a.response_status)).toEqual([204]);
    expect(arrived).toHaveLength(1);
  } finally {
    await new Promise<void>((resolve) => {
      receiver.closeAllConnections();
      receiver.close(() => resolve());
    });
  }
}
