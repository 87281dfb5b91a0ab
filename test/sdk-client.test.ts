import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthenticationError,
  BelfryClient,
  BelfryError,
  InvalidRequestError,
  NotFoundError,
  type Notification,
} from "../src/sdk/client.js";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness } from "./support/harness.js";
import { call, freePort, runCli, type ServerProcess, spawnServer } from "./support/process.js";
import { startReceiver, waitFor } from "./support/receiver.js";
import { consume, listeningHarness } from "./support/sdk.js";

/** BelfryClient against the real server (in-process, on a loopback port) on every store. */

const PAY = "system.payment.received";
const LOW = "system.balance.notify.dispatched";

describe.each(BACKENDS)("BelfryClient on %s", (backend) => {
  let h: Harness & { url: string };
  let user: Awaited<ReturnType<Harness["userWithKey"]>>;
  let client: BelfryClient;
  let tag = 0;
  const pay = async (userId = user.id, extra: object = {}) => {
    const r = await h.pay(userId, `${backend}-${++tag}`, undefined, extra);
    expect(r.status).toBe(202);
  };

  beforeAll(async () => {
    h = await listeningHarness(backend);
    user = await h.userWithKey("client");
    client = new BelfryClient({ baseUrl: `${h.url}/`, token: user.key });
  });
  afterAll(() => h.close());

  it("lists, iterates every page, counts and marks read", async () => {
    const batch = await h.request("POST", "/admin/v1/events/batch", {
      key: ADMIN_TOKEN,
      body: {
        events: Array.from({ length: 23 }, (_, i) => ({
          id: `${backend}-list-${i}`,
          type: i % 3 === 0 ? LOW : PAY,
          user_id: user.id,
          data:
            i % 3 === 0
              ? { balance_cents: 100, threshold_cents: 500 }
              : { amount_cents: i + 1, balance_cents: 5 },
        })),
      },
    });
    expect(batch.status).toBe(202);

    const page = await client.notifications.list({ page_size: 10, page: 2 });
    expect(page).toMatchObject({ total: 23, page: 2, page_size: 10 });
    expect(page.items).toHaveLength(10);
    const lows = await client.notifications.list({ type: LOW, unread: true });
    expect(lows.total).toBe(8);
    expect(lows.items.every((n) => n.type === LOW && n.read_at === null)).toBe(true);

    const everything = (await h.request("GET", "/api/v1/me/notifications?page_size=200", { key: user.key }))
      .json.items as Notification[];
    const iterated: Notification[] = [];
    for await (const n of client.notifications.iterate({ page_size: 10 })) iterated.push(n);
    expect(iterated).toEqual(everything); // 3 pages, in order, nothing twice
    const lowIds: number[] = [];
    for await (const n of client.notifications.iterate({ type: LOW, page_size: 3 })) lowIds.push(n.id);
    expect(lowIds).toEqual(lows.items.map((n) => n.id));

    expect(await client.notifications.unreadCount()).toEqual({ count: 23 });
    const first = iterated[0]!;
    const marked = await client.notifications.markRead(first.id);
    expect(marked).toMatchObject({ id: first.id, type: first.type });
    expect(marked.read_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(await client.notifications.markRead(first.id)).toEqual(marked); // idempotent
    expect(await client.notifications.unreadCount()).toEqual({ count: 22 });
    expect(await client.notifications.markAllRead()).toEqual({ marked_read: 22 });
    expect(await client.notifications.markAllRead()).toEqual({ marked_read: 0 });
    expect((await client.notifications.list({ unread: true })).total).toBe(0);
  });

  it("polls the unread count with its ETag", async () => {
    const first = await client.notifications.pollUnreadCount();
    expect(first).toMatchObject({ changed: true, pollIntervalSeconds: 60 });
    expect(first.count).toBe((await client.notifications.unreadCount()).count);
    expect(first.etag).toMatch(/^W\/"u\d+\.v\d+"$/);
    const again = await client.notifications.pollUnreadCount(first.etag);
    expect(again).toEqual({ ...first, changed: false, count: undefined });
    await pay();
    const after = await client.notifications.pollUnreadCount(first.etag);
    expect(after.changed).toBe(true);
    expect(after.count).toBe((first.count ?? 0) + 1);
    expect(after.version).toBeGreaterThan(first.version ?? 0);
  });

  it("gets and replaces the mutes", async () => {
    expect(await client.settings.get()).toEqual({ muted_types: [] });
    expect(await client.settings.put({ muted_types: [LOW, LOW] })).toEqual({ muted_types: [LOW] });
    expect(await client.settings.get()).toEqual({ muted_types: [LOW] });
    expect(await client.settings.put({ muted_types: [] })).toEqual({ muted_types: [] });
  });

  it("throws typed errors carrying the request id", async () => {
    const both = await client.notifications.list({ read: true, unread: true }).catch((e) => e);
    expect(both).toBeInstanceOf(InvalidRequestError);
    expect(both).toBeInstanceOf(BelfryError);
    expect(both).toMatchObject({
      status: 400,
      type: "invalid_request_error",
      message: "read and unread cannot both be true",
    });
    expect(both.requestId).toMatch(/^req_/);

    const missing = await client.notifications.markRead(987_654_321).catch((e) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ status: 404, message: "No such notification." });

    const stranger = new BelfryClient({ baseUrl: h.url, token: "bf_not_a_real_key_0123456789abcdefghijk" });
    const refused = await stranger.notifications.unreadCount().catch((e) => e);
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect(refused).toMatchObject({ status: 401, type: "authentication_error" });
    expect(refused.requestId).toMatch(/^req_/);
    expect(refused.requestId).not.toBe(both.requestId);

    // The admin token is not a user key.
    const admin = new BelfryClient({ baseUrl: h.url, token: ADMIN_TOKEN });
    await expect(admin.notifications.list()).rejects.toBeInstanceOf(AuthenticationError);
  });

  it("manages webhook endpoints and their deliveries", async () => {
    const receiver = await startReceiver();
    try {
      const created = await client.webhooks.create({
        url: receiver.url,
        event_types: [PAY],
        description: "ci",
      });
      expect(created.secret).toMatch(/^whsec_/);
      expect(created).toMatchObject({ url: receiver.url, event_types: [PAY], enabled: true });
      const got = await client.webhooks.get(created.id);
      expect(got).toMatchObject({ id: created.id, description: "ci", disabled_reason: null });
      expect("secret" in got).toBe(false);
      expect((await client.webhooks.list()).items.map((e) => e.id)).toContain(created.id);

      const updated = await client.webhooks.update(created.id, { event_types: null, description: null });
      expect(updated).toMatchObject({ event_types: null, description: null });
      const rotated = await client.webhooks.rotateSecret(created.id);
      expect(rotated.secret).toMatch(/^whsec_/);
      expect(rotated.secret).not.toBe(created.secret);

      const { delivery_id } = await client.webhooks.test(created.id);
      const deliveries = await client.webhooks.deliveries(created.id, { page_size: 5 });
      expect(deliveries.items.map((d) => [d.id, d.event_type])).toEqual([[delivery_id, "webhook.test"]]);
      expect((await client.webhooks.deliveries(created.id, { status: "succeeded" })).total).toBe(0);
      expect(await client.webhooks.redeliver(created.id, delivery_id)).toEqual({ delivery_id });
      expect(await client.webhooks.recover(created.id, { since: "2020-01-01T00:00:00Z" })).toEqual({
        requeued: expect.any(Number),
      });

      await client.webhooks.delete(created.id);
      await expect(client.webhooks.get(created.id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(client.webhooks.delete(created.id)).rejects.toBeInstanceOf(NotFoundError);
      const bad = await client.webhooks.create({ url: "ftp://example.com" }).catch((e) => e);
      expect(bad).toBeInstanceOf(InvalidRequestError);
    } finally {
      await receiver.close();
    }
  });

  it("streams typed events live, resumes after a cut connection without gaps or repeats, and ends on abort", async () => {
    const u = await h.userWithKey("streamer");
    const c = new BelfryClient({ baseUrl: h.url, token: u.key });
    const ticket = await c.streamTicket();
    expect(ticket.ticket).toMatch(/^bft_/);

    const controller = new AbortController();
    const disconnects: BelfryError[] = [];
    const s = consume(c.stream({ signal: controller.signal, onDisconnect: (e) => void disconnects.push(e) }));
    await waitFor(() => s.events.some((e) => e.type === "unread-count"), 10_000, "the first unread-count");
    expect(s.events[0]).toEqual({ type: "unread-count", data: { count: 0, version: expect.any(Number) } });

    await pay(u.id); // ingested after the stream connected
    await waitFor(() => s.notificationIds().length === 1, 10_000, "the first notification");
    const live = s.events.find((e) => e.type === "notification");
    expect(live?.type === "notification" && live.data).toMatchObject({
      type: PAY,
      title: "Payment received · $25.00",
      link: "/billing",
      read_at: null,
    });
    await waitFor(
      () => s.events.some((e) => e.type === "unread-count" && e.data.count === 1),
      10_000,
      "count 1",
    );
    const [firstId] = s.notificationIds();
    await c.notifications.markRead(firstId!);
    await waitFor(() => s.events.some((e) => e.type === "read"), 10_000, "the read event");
    expect(s.events.find((e) => e.type === "read")).toEqual({ type: "read", data: { ids: [firstId] } });

    // Cut every connection, then add rows while the client is away (or reconnecting).
    h.app.server.closeAllConnections();
    await pay(u.id);
    await pay(u.id);
    await waitFor(() => disconnects.length >= 1, 10_000, "the disconnect");
    await waitFor(() => s.notificationIds().length >= 3, 15_000, "the rows added during the cut");
    await pay(u.id);
    await waitFor(() => s.notificationIds().length >= 4, 10_000, "a row after the resume");
    const feedIds = (await c.notifications.list()).items.map((n) => n.id).reverse();
    expect(s.notificationIds()).toEqual(feedIds);

    controller.abort();
    expect(await s.ended).toBeUndefined();
  });

  it("ends the stream with AuthenticationError when its key is revoked", async () => {
    const u = await h.userWithKey("revoked");
    const c = new BelfryClient({ baseUrl: h.url, token: u.key });
    const s = consume(c.stream());
    await waitFor(() => s.events.length > 0, 10_000, "the stream to open");
    const revoke = await h.request("POST", `/admin/v1/keys/${u.keyId}/revoke`, { key: ADMIN_TOKEN });
    expect(revoke.status).toBe(200);
    const ended = await s.ended;
    expect(ended).toBeInstanceOf(AuthenticationError);
    expect((ended as AuthenticationError).requestId).toMatch(/^req_/);
  });

  it("replays from a known resume point, and resets from one beyond the feed", async () => {
    const u = await h.userWithKey("resumer");
    for (let i = 0; i < 3; i++) await pay(u.id);
    const c = new BelfryClient({ baseUrl: h.url, token: u.key });
    const ids = (await c.notifications.list()).items.map((n) => n.id).reverse();
    const controller = new AbortController();
    const s = consume(c.stream({ lastEventId: ids[0]!, signal: controller.signal }));
    await waitFor(() => s.notificationIds().length === 2, 10_000, "the replay");
    expect(s.notificationIds()).toEqual(ids.slice(1));
    controller.abort();
    await s.ended;

    const stop = new AbortController();
    const beyond = consume(c.stream({ lastEventId: 10_000_000, signal: stop.signal }));
    await waitFor(() => beyond.events.some((e) => e.type === "reset"), 10_000, "the reset");
    expect(beyond.events.find((e) => e.type === "reset")).toEqual({
      type: "reset",
      data: { last_event_id: ids.at(-1) },
    });
    stop.abort();
    await beyond.ended;
  });

  it("resumes across server restarts, even before it saw any notification", async () => {
    const db = await freshDatabase(backend);
    const env = { DATABASE_URL: db.url, BELFRY_ADMIN_TOKEN: ADMIN_TOKEN, BELFRY_WEBHOOK_WORKER: "false" };
    const port = await freePort();
    let server: ServerProcess = await spawnServer(env, port);
    const controller = new AbortController();
    try {
      const u = await call(server.url, "POST", "/admin/v1/users", ADMIN_TOKEN, {
        email: `r-${backend}@example.com`,
      });
      const k = await call(server.url, "POST", `/admin/v1/users/${u.json.id}/keys`, ADMIN_TOKEN, {
        name: "k",
      });
      const c = new BelfryClient({ baseUrl: server.url, token: k.json.key });
      const disconnects: BelfryError[] = [];
      const s = consume(
        c.stream({ signal: controller.signal, onDisconnect: (e) => void disconnects.push(e) }),
      );
      await waitFor(() => s.events.some((e) => e.type === "unread-count"), 10_000, "the stream to open");

      // Down before the stream saw any row; a row is ingested while it is down (by the CLI, on the
      // same store), then the server comes back on the same address.
      const ingestWhileDown = async (id: string) => {
        await server.kill9();
        const event = { id, type: PAY, user_id: u.json.id, data: { amount_cents: 100, balance_cents: 100 } };
        const cli = await runCli(["admin", "ingest", "-"], env, JSON.stringify(event));
        expect(cli.code, cli.stderr).toBe(0);
        server = await spawnServer(env, port);
      };
      await ingestWhileDown("down-1");
      await waitFor(() => s.notificationIds().length === 1, 30_000, "the row ingested while down");
      expect(disconnects.length).toBeGreaterThanOrEqual(1);
      expect(disconnects.every((e) => e.status === 0)).toBe(true); // connection failures, not answers

      await call(server.url, "POST", "/admin/v1/events", ADMIN_TOKEN, {
        id: "up-2",
        type: PAY,
        user_id: u.json.id,
        data: { amount_cents: 200, balance_cents: 300 },
      });
      await waitFor(() => s.notificationIds().length === 2, 10_000, "the live row");
      await ingestWhileDown("down-3");
      await waitFor(() => s.notificationIds().length === 3, 30_000, "the second row ingested while down");
      const feed = await call(server.url, "GET", "/api/v1/me/notifications", k.json.key);
      expect(s.notificationIds()).toEqual(feed.json.items.map((n: Notification) => n.id).reverse());
      controller.abort();
      expect(await s.ended).toBeUndefined();
    } finally {
      controller.abort();
      await server.kill9();
      await db.drop();
    }
  }, 120_000);
});
