import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DeliveryWorker, startDeliveryWorker } from "../src/delivery/worker.js";
import { BACKENDS } from "./support/backends.js";
import { collectingLog } from "./support/delivery-rig.js";
import { ADMIN_TOKEN, type Harness, isEnvelope, startHarness } from "./support/harness.js";
import { type Receiver, startReceiver, testWebhooks, waitFor } from "./support/receiver.js";
import { openSse } from "./support/sse.js";

const FEED = "/api/v1/me/notifications";

/** One sample of the exposition text: `name{labels} value`, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe.each(BACKENDS)("GET /metrics on %s", (backend) => {
  let h: Harness;
  let base: string;
  let receiver: Receiver;
  let worker: DeliveryWorker | undefined;
  beforeAll(async () => {
    h = await startHarness(backend, { webhooks: testWebhooks() }, { observeMetrics: true });
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await worker?.stop();
    await receiver.close();
    await h.close();
  });

  const scrape = async () => {
    const r = await h.request("GET", "/metrics", { key: ADMIN_TOKEN });
    expect(r.status).toBe(200);
    expect(String(r.headers["content-type"])).toMatch(/^text\/plain; version=0\.0\.4/);
    return r.text;
  };

  it("takes the admin token, and nothing else", async () => {
    const u = await h.userWithKey();
    expect(isEnvelope(await h.request("GET", "/metrics"), 401, "authentication_error")).toBe(true);
    expect(isEnvelope(await h.request("GET", "/metrics", { key: u.key }), 401, "authentication_error")).toBe(
      true,
    );
  });

  it("counts requests by route pattern and status, never by raw URL", async () => {
    const u = await h.userWithKey();
    const route = "/api/v1/me/notifications/unread-count";
    const before = await scrape();
    const ok = (s: string) =>
      sample(s, "belfry_http_requests_total", { route, method: "GET", status: "200" }) ?? 0;
    const first = await h.request("GET", `${FEED}/unread-count`, { key: u.key });
    await h.request("GET", `${FEED}/unread-count`, {
      key: u.key,
      headers: { "if-none-match": String(first.headers.etag) },
    });
    await h.request("POST", `${FEED}/987654321/mark-read`, { key: u.key });
    await h.request("GET", "/no/such/path/zz-secret-looking-path");
    const after = await scrape();
    expect(ok(after) - ok(before)).toBe(1);
    expect(
      sample(after, "belfry_http_requests_total", { route, method: "GET", status: "304" }),
    ).toBeGreaterThan(0);
    expect(
      sample(after, "belfry_http_requests_total", {
        route: "/api/v1/me/notifications/:id/mark-read",
        method: "POST",
        status: "404",
      }),
    ).toBeGreaterThan(0);
    expect(
      sample(after, "belfry_http_requests_total", { route: "unmatched", status: "404" }),
    ).toBeGreaterThan(0);
    expect(after).not.toContain("zz-secret-looking-path");
    expect(after).not.toContain("987654321");
    expect(
      sample(after, "belfry_http_request_duration_seconds_count", { route, status: "200" }),
    ).toBeGreaterThan(0);
  });

  it("histograms how many single ingests shared each commit", async () => {
    const u = await h.userWithKey();
    const size = (s: string, suffix: string, labels: Record<string, string> = {}) =>
      sample(s, `belfry_group_commit_size_${suffix}`, { operation: "ingest", ...labels }) ?? 0;
    const before = await scrape();
    await h.pay(u.id, `g1-${u.id}`); // one at a time: a transaction each
    await h.pay(u.id, `g2-${u.id}`);
    await Promise.all([3, 4, 5].map((i) => h.pay(u.id, `g${i}-${u.id}`))); // together: one
    const after = await scrape();
    expect(size(after, "count") - size(before, "count")).toBe(3);
    expect(size(after, "sum") - size(before, "sum")).toBe(5);
    expect(size(after, "bucket", { le: "1" }) - size(before, "bucket", { le: "1" })).toBe(2);
    expect(size(after, "bucket", { le: "2" }) - size(before, "bucket", { le: "2" })).toBe(2);
    expect(size(after, "bucket", { le: "4" }) - size(before, "bucket", { le: "4" })).toBe(3);
  });

  it("counts ingested events and the feed rows they created, and reads the delivery queue", async () => {
    const u = await h.userWithKey();
    const ep = await h.request("POST", "/api/v1/me/webhooks", {
      key: u.key,
      body: { url: `${receiver.url}/hook` },
    });
    expect(ep.status).toBe(201);
    const before = await scrape();
    const created = (s: string) => sample(s, "belfry_events_ingested_total", { result: "created" }) ?? 0;
    const duplicate = (s: string) => sample(s, "belfry_events_ingested_total", { result: "duplicate" }) ?? 0;
    const rows = (s: string) => sample(s, "belfry_notifications_created_total") ?? 0;
    await h.pay(u.id, `m1-${u.id}`);
    await h.pay(u.id, `m1-${u.id}`);
    await h.request("POST", "/admin/v1/events/batch", {
      key: ADMIN_TOKEN,
      body: {
        events: [2, 3].map((i) => ({
          id: `m${i}-${u.id}`,
          type: "system.payment.received",
          user_id: u.id,
          data: { amount_cents: 100, balance_cents: 100 },
        })),
      },
    });
    const after = await scrape();
    expect(created(after) - created(before)).toBe(3);
    expect(duplicate(after) - duplicate(before)).toBe(1);
    expect(rows(after) - rows(before)).toBe(3);
    // No worker runs yet: the three deliveries wait.
    expect(sample(after, "belfry_webhook_queue_depth")).toBeGreaterThanOrEqual(3);
    expect(sample(after, "belfry_webhook_oldest_due_age_seconds")).toBeGreaterThanOrEqual(0);

    worker = startDeliveryWorker(h.deps, collectingLog());
    await waitFor(() => receiver.received.length >= 3, 15_000, "three deliveries");
    const delivered = await waitFor(async () => {
      const s = await scrape();
      const attempts = sample(s, "belfry_webhook_attempts_total", { outcome: "success" }) ?? 0;
      return attempts >= 3 && sample(s, "belfry_webhook_queue_depth") === 0 ? s : undefined;
    });
    expect(sample(delivered, "belfry_webhook_queue_depth")).toBe(0);
    expect(sample(delivered, "belfry_webhook_oldest_due_age_seconds")).toBe(0);
  });

  it("reports open streams, the pool, bus resyncs and the process", async () => {
    const u = await h.userWithKey();
    const stream = await openSse(`${base}${FEED}/stream`, { authorization: `Bearer ${u.key}` });
    try {
      await stream.waitFor((e) => e.length > 0);
      const text = await scrape();
      expect(sample(text, "belfry_streams_open")).toBeGreaterThanOrEqual(1);
      if (backend === "postgres") {
        expect(sample(text, "belfry_store_pool_connections", { state: "total" })).toBeGreaterThanOrEqual(1);
        // The first LISTEN counts as one (re)connection.
        const resynced = await waitFor(async () =>
          (sample(await scrape(), "belfry_bus_resyncs_total") ?? 0) >= 1 ? true : undefined,
        );
        expect(resynced).toBe(true);
      } else {
        expect(sample(text, "belfry_store_pool_connections", { state: "total" })).toBeUndefined();
      }
      expect(sample(text, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
      expect(text).toContain("nodejs_eventloop_lag_seconds");
    } finally {
      stream.close();
    }
  });
});
