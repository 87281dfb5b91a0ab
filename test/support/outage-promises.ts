import { createServer } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "vitest";
import { type Outage, type OutageRig, request, type Sample } from "./outage-rig.js";
import type { ServerProcess } from "./process.js";
import { type Receiver, waitFor } from "./receiver.js";
import type { SseClient } from "./sse.js";

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
