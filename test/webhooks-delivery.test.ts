import { describe, expect, it } from "vitest";
import { verifyWebhook, WebhookVerificationError } from "../src/index.js";
import { BACKENDS } from "./support/backends.js";
import {
  addEndpoint,
  allIn,
  deliveriesOf,
  PACKAGE_VERSION,
  quietPeriod,
  rigsFor,
  waitForDeliveries,
} from "./support/delivery-rig.js";
import { ADMIN_TOKEN } from "./support/harness.js";
import { type Received, waitFor } from "./support/receiver.js";
import { independentSignature } from "./support/signature.js";
import { startSlowReceiver } from "./support/special-receivers.js";

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const EVENT_ID = /^evt_[0-9a-f]{24}$/;
const FEED_KEYS = ["id", "type", "created_at", "data", "title", "body", "link"];
const WEBHOOK_ONLY_KEYS = ["id", "type", "created_at", "data"];

const bodyOf = (r: Received) => JSON.parse(r.body);
const typesOf = (rs: Received[]) => rs.map((r) => bodyOf(r).type).sort();

/** `webhook-timestamp` is the attempt's own time: at most a second from when the request arrived. */
function expectAttemptTimestamp(r: Received): string {
  const timestamp = r.headers["webhook-timestamp"] as string;
  expect(timestamp).toMatch(/^\d+$/);
  expect(Math.abs(Number(timestamp) - Math.floor(r.at / 1000))).toBeLessThanOrEqual(1);
  return timestamp;
}

describe.each(BACKENDS)("webhook delivery on %s", (backend) => {
  const rig = rigsFor(backend);

  it("queues deliveries before the ingest or admin call answers", async () => {
    const { h, receiver } = await rig({}, { workers: 0 });
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    expect((await h.pay(u.id, `queued-${u.id}`)).status).toBe(202);
    const [paid] = await deliveriesOf(h, u, ep.id);
    expect(paid).toMatchObject({ event_type: "system.payment.received", status: "pending", attempts: [] });
    expect(paid!.event_id).toMatch(EVENT_ID);
    expect(paid!.next_attempt_at).toMatch(ISO);

    const patched = await h.request("PATCH", `/admin/v1/users/${u.id}`, {
      key: ADMIN_TOKEN,
      body: { name: "Ada" },
    });
    expect(patched.status).toBe(200);
    const ds = await deliveriesOf(h, u, ep.id);
    expect(ds.map((d) => [d.event_type, d.status])).toEqual([
      ["admin.user.update", "pending"],
      ["system.payment.received", "pending"],
    ]);
    expect(receiver.received).toEqual([]);
  });

  it("delivers a payment once, rendered as in the feed, signed, with the contract's headers", async () => {
    const { h, receiver } = await rig();
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    expect(ep.secret).toMatch(/^whsec_/);
    const data = { amount_cents: 5000, balance_cents: 5480, receipt: "ch_3PYj-mock-49" };
    await h.pay(u.id, `pay-${u.id}`, data, { occurred_at: "2026-05-20T05:08:00Z" });

    const [d] = await waitForDeliveries(h, u, ep.id, allIn("succeeded"), "the payment to be delivered");
    await quietPeriod();
    expect(receiver.received).toHaveLength(1);
    const req = receiver.received[0]!;
    expect([req.method, req.path]).toEqual(["POST", "/hooks"]);
    const body = bodyOf(req);
    expect(Object.keys(body)).toEqual(FEED_KEYS);
    expect(body).toEqual({
      id: d!.event_id,
      type: "system.payment.received",
      created_at: "2026-05-20T05:08:00Z",
      data,
      title: "Payment received · $50.00",
      body: "Stripe receipt #ch_3PYj-mock-49. Your balance is now $54.80.",
      link: "/billing",
    });
    expect(body.id).toMatch(EVENT_ID);
    expect(req.headers["webhook-id"]).toBe(body.id);
    expect(req.headers["content-type"]).toBe("application/json");
    expect(req.headers["user-agent"]).toBe(`Belfry-Webhooks/${PACKAGE_VERSION}`);
    const timestamp = expectAttemptTimestamp(req);
    expect(req.headers["webhook-signature"]).toBe(
      independentSignature(ep.secret, body.id, timestamp, req.body),
    );
    expect(verifyWebhook(ep.secret, req.headers, req.body)).toEqual(body);

    expect(d).toMatchObject({
      event_type: "system.payment.received",
      status: "succeeded",
      next_attempt_at: null,
    });
    expect(d!.attempts).toEqual([
      {
        number: 1,
        attempted_at: expect.stringMatching(ISO),
        response_status: 204,
        response_body: "",
        latency_ms: expect.any(Number),
        error_class: null,
      },
    ]);
    expect(Number.isInteger(d!.attempts[0]!.latency_ms)).toBe(true);
  });

  it("applies producer overrides, and sends webhook-only types without title, body or link", async () => {
    const { h, receiver } = await rig();
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    await h.lowBalance(
      u.id,
      `low-${u.id}`,
      { balance_cents: -300, threshold_cents: 100000 },
      { title: "Top up soon", link: null },
    );
    const before = Math.floor(Date.now() / 1000);
    await h.request("PATCH", `/admin/v1/users/${u.id}`, { key: ADMIN_TOKEN, body: { name: "Ada Renamed" } });
    await waitForDeliveries(h, u, ep.id, allIn("succeeded", 2), "both deliveries");

    const low = receiver.received.map(bodyOf).find((b) => b.type === "system.balance.notify.dispatched");
    expect(Object.keys(low)).toEqual(FEED_KEYS);
    expect(low).toMatchObject({
      title: "Top up soon",
      body: "Your balance of -$3.00 is below your alert threshold of $1,000.00.",
      link: null,
    });
    const update = receiver.received.find((r) => bodyOf(r).type === "admin.user.update")!;
    const body = bodyOf(update);
    expect(Object.keys(body)).toEqual(WEBHOOK_ONLY_KEYS);
    expect(body).toEqual({
      id: update.headers["webhook-id"],
      type: "admin.user.update",
      created_at: expect.stringMatching(ISO),
      data: { user_id: u.id, email: u.email, name: "Ada Renamed", changed: ["name"] },
    });
    expect(Math.abs(Date.parse(body.created_at) / 1000 - before)).toBeLessThanOrEqual(2);
    expect(verifyWebhook(ep.secret, update.headers, update.body)).toEqual(body);
  });

  it("keeps webhook-id and the body across retries; webhook-timestamp is each attempt's", async () => {
    // Retries 2 s ± 20 % apart, so the two attempts fall in different seconds.
    const { h, receiver } = await rig({ scheduleS: [0, 2, 2] });
    receiver.replies = [{ status: 500 }];
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    await h.pay(u.id, `retry-${u.id}`);
    const [d] = await waitForDeliveries(h, u, ep.id, allIn("succeeded"), "the retry to succeed");

    const [first, second] = receiver.received as [Received, Received];
    expect(receiver.received).toHaveLength(2);
    expect(first.headers["webhook-id"]).toBe(d!.event_id);
    expect(second.headers["webhook-id"]).toBe(d!.event_id);
    expect(second.body).toBe(first.body);
    expect(bodyOf(first).id).toBe(d!.event_id);
    const [t1, t2] = [expectAttemptTimestamp(first), expectAttemptTimestamp(second)];
    expect(Number(t2)).toBeGreaterThan(Number(t1));
    for (const r of [first, second]) {
      const timestamp = r.headers["webhook-timestamp"] as string;
      expect(r.headers["webhook-signature"]).toBe(
        independentSignature(ep.secret, d!.event_id, timestamp, r.body),
      );
      expect(verifyWebhook(ep.secret, r.headers, r.body)).toEqual(bodyOf(first));
    }
  });

  it("signs with the new and the previous secret during the rotation overlap", async () => {
    const { h, receiver } = await rig();
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    const rotated = await h.request("POST", `/api/v1/me/webhooks/${ep.id}/rotate-secret`, { key: u.key });
    expect(rotated.status).toBe(200);
    expect(Object.keys(rotated.json)).toEqual(["secret"]);
    const secret: string = rotated.json.secret;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secret).not.toBe(ep.secret);

    await h.pay(u.id, `rotated-${u.id}`);
    await waitFor(() => receiver.received.length === 1, 5000, "the delivery");
    const req = receiver.received[0]!;
    const id = req.headers["webhook-id"] as string;
    const timestamp = expectAttemptTimestamp(req);
    const signatures = (req.headers["webhook-signature"] as string).split(" ");
    expect(signatures).toHaveLength(2);
    expect(signatures.every((s) => s.startsWith("v1,"))).toBe(true);
    expect([...signatures].sort()).toEqual(
      [
        independentSignature(secret, id, timestamp, req.body),
        independentSignature(ep.secret, id, timestamp, req.body),
      ].sort(),
    );
    expect(verifyWebhook(secret, req.headers, req.body)).toEqual(bodyOf(req));
    expect(verifyWebhook(ep.secret, req.headers, req.body)).toEqual(bodyOf(req));
  });

  it("signs with the new secret alone when the rotation overlap is 0", async () => {
    const { h, receiver } = await rig({ rotationOverlapS: 0 });
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    const { secret } = (await h.request("POST", `/api/v1/me/webhooks/${ep.id}/rotate-secret`, { key: u.key }))
      .json;
    await h.pay(u.id, `no-overlap-${u.id}`);
    await waitFor(() => receiver.received.length === 1, 5000, "the delivery");
    const req = receiver.received[0]!;
    const timestamp = expectAttemptTimestamp(req);
    expect(req.headers["webhook-signature"]).toBe(
      independentSignature(secret, req.headers["webhook-id"] as string, timestamp, req.body),
    );
    expect(() => verifyWebhook(ep.secret, req.headers, req.body)).toThrow(WebhookVerificationError);
  });

  it("sends an org's member and key changes to its owners and admins, not to plain members", async () => {
    const r = await rig();
    const { h } = r;
    const ownerHooks = r.receiver;
    const memberHooks = await r.anotherReceiver();
    const [owner, member, newcomer] = [await h.userWithKey(), await h.userWithKey(), await h.userWithKey()];
    const ownerEp = await addEndpoint(h, owner, ownerHooks.url);
    const memberEp = await addEndpoint(h, member, memberHooks.url);
    const admin = (method: string, url: string, body?: object) =>
      h.request(method, url, { key: ADMIN_TOKEN, body });
    const org = (await admin("POST", "/admin/v1/orgs", { name: "Acme", owner_user_id: owner.id })).json;
    const members = `/admin/v1/orgs/${org.id}/members`;
    expect((await admin("POST", members, { user_id: member.id, role: "member" })).status).toBe(201);
    expect((await admin("POST", members, { user_id: newcomer.id, role: "member" })).status).toBe(201);
    expect((await admin("PATCH", `${members}/${newcomer.id}`, { role: "admin" })).status).toBe(200);
    const key = await admin("POST", `/admin/v1/orgs/${org.id}/keys`, { user_id: newcomer.id, name: "ci" });
    expect(key.status).toBe(201);
    expect((await admin("DELETE", `${members}/${newcomer.id}`)).status).toBe(204);
    // The member's own event, so their endpoint is known to work.
    await h.pay(member.id, `member-pay-${member.id}`);

    const ownerDs = await waitForDeliveries(h, owner, ownerEp.id, allIn("succeeded", 5), "the owner's five");
    await waitForDeliveries(h, member, memberEp.id, allIn("succeeded", 1), "the member's payment");
    await quietPeriod();
    expect(ownerDs.map((d) => d.event_type).reverse()).toEqual([
      "admin.org.member.add",
      "admin.org.member.add",
      "admin.org.member.role_change",
      "org.api_key.create",
      "admin.org.member.remove",
    ]);
    expect(typesOf(ownerHooks.received)).toEqual([
      "admin.org.member.add",
      "admin.org.member.add",
      "admin.org.member.remove",
      "admin.org.member.role_change",
      "org.api_key.create",
    ]);
    expect(typesOf(memberHooks.received)).toEqual(["system.payment.received"]);

    const sent = (type: string) => ownerHooks.received.map(bodyOf).filter((b) => b.type === type);
    const orgFacts = { org_id: org.id, org_name: "Acme", user_id: newcomer.id, email: newcomer.email };
    expect(sent("admin.org.member.add").map((b) => b.data.user_id)).toEqual(
      expect.arrayContaining([member.id, newcomer.id]),
    );
    expect(sent("admin.org.member.add").every((b) => Object.keys(b).join() === FEED_KEYS.join())).toBe(true);
    expect(sent("admin.org.member.role_change")[0]).toMatchObject({
      data: { ...orgFacts, role: "admin", previous_role: "member" },
    });
    expect(sent("org.api_key.create")[0].data).toEqual({
      key_id: key.json.id,
      name: "ci",
      prefix: key.json.prefix,
      user_id: newcomer.id,
      org_id: org.id,
      org_name: "Acme",
    });
    expect(sent("admin.org.member.remove")[0].data).toEqual({
      ...orgFacts,
      role: "admin",
      revoked_key_ids: [key.json.id],
    });
    for (const type of ["admin.org.member.role_change", "org.api_key.create", "admin.org.member.remove"])
      expect(Object.keys(sent(type)[0])).toEqual(WEBHOOK_ONLY_KEYS);
  });

  it("delivers a feed type the user muted", async () => {
    const { h, receiver } = await rig();
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    const muted = { muted_types: ["system.payment.received"] };
    expect(
      (await h.request("PUT", "/api/v1/me/notification-settings", { key: u.key, body: muted })).status,
    ).toBe(200);
    const paid = await h.pay(u.id, `muted-${u.id}`);
    expect(paid.json).toEqual({ id: `muted-${u.id}`, duplicate: false, notifications: 0 });
    const [d] = await waitForDeliveries(h, u, ep.id, allIn("succeeded"), "the muted type's delivery");
    expect(receiver.received.map(bodyOf)).toEqual([
      expect.objectContaining({ id: d!.event_id, type: "system.payment.received" }),
    ]);
  });

  it("delivers each of 50 events exactly once with two workers sharing the store", async () => {
    const { h, receiver } = await rig({}, { workers: 2 });
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    const paid = await Promise.all(Array.from({ length: 50 }, (_, i) => h.pay(u.id, `bulk-${i}-${u.id}`)));
    expect(paid.every((r) => r.status === 202)).toBe(true);

    const ds = await waitForDeliveries(h, u, ep.id, allIn("succeeded", 50), "50 deliveries", 20_000);
    await quietPeriod(500);
    expect(receiver.received).toHaveLength(50);
    const ids = new Set(receiver.received.map((r) => r.headers["webhook-id"]));
    expect(ids.size).toBe(50);
    expect([...ids].sort()).toEqual(ds.map((d) => d.event_id).sort());
    expect(ds.every((d) => d.attempts.length === 1 && d.attempts[0]!.response_status === 204)).toBe(true);
  });

  it("stop() resolves once the attempt in flight has completed and been recorded", async () => {
    const r = await rig();
    const { h } = r;
    const slow = await startSlowReceiver(800);
    try {
      const u = await h.userWithKey();
      const ep = await addEndpoint(h, u, slow.url);
      await h.pay(u.id, `in-flight-${u.id}`);
      await waitFor(() => slow.arrived() === 1, 5000, "the request to arrive");

      await r.workers[0]!.stop();
      const [d] = await deliveriesOf(h, u, ep.id);
      expect(d!.status).toBe("succeeded");
      expect(d!.attempts).toMatchObject([{ number: 1, response_status: 204, error_class: null }]);
      expect(d!.attempts[0]!.latency_ms).toBeGreaterThanOrEqual(700);

      // Stopped means stopped: a new event waits for another worker.
      await h.pay(u.id, `after-stop-${u.id}`);
      await quietPeriod();
      expect(slow.arrived()).toBe(1);
      expect((await deliveriesOf(h, u, ep.id))[0]!.status).toBe("pending");
    } finally {
      await slow.close();
    }
  });
});
