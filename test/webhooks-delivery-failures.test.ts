import { isIP } from "node:net";
import { describe, expect, it } from "vitest";
import type { Resolve } from "../src/network/address-policy.js";
import { BACKENDS } from "./support/backends.js";
import {
  addEndpoint,
  allIn,
  type Delivery,
  deliveriesOf,
  quietPeriod,
  rigsFor,
  type User,
  waitForDeliveries,
} from "./support/delivery-rig.js";
import { type Harness, isEnvelope } from "./support/harness.js";
import { installPacketTripwire } from "./support/packet-tripwire.js";
import { freePort } from "./support/process.js";
import { waitFor } from "./support/receiver.js";
import { startBarrierReceiver, startIpv6Sentinel, startSlowReceiver } from "./support/special-receivers.js";

// Refused addresses below are values for the SSRF guard only; nothing may connect to them.
const tripwire = installPacketTripwire();

const NAME = "hooks.belfry.test";
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** A resolver stub: NAME resolves to whatever `answer` holds at the time; other names fail. */
function stubResolver(initial: string[] | "unresolvable") {
  const stub = {
    answer: initial,
    resolve: (async (host) => {
      if (host !== NAME || stub.answer === "unresolvable")
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
      return stub.answer.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
    }) as Resolve,
  };
  return stub;
}

/** How one attempt failed: [response_status, error_class]. */
const outcomes = (d: Delivery) => d.attempts.map((a) => [a.response_status, a.error_class]);
const blockedAttempt = { response_status: null, response_body: null, latency_ms: 0, error_class: "blocked" };

/** The attempts of one delivery, once it has any. */
async function attemptsOf(h: Harness, user: User, endpointId: number, deliveryId: number) {
  const ds = await waitForDeliveries(
    h,
    user,
    endpointId,
    (all) => (all.find((d) => d.id === deliveryId)?.attempts.length ?? 0) > 0,
    `an attempt of delivery ${deliveryId}`,
  );
  return ds.find((d) => d.id === deliveryId)!.attempts;
}

describe.each(BACKENDS)("webhook delivery failures on %s", (backend) => {
  const rig = rigsFor(backend);

  it("retries 500, 500, 500 and succeeds on attempt 4, logging every attempt", async () => {
    const { h, receiver } = await rig();
    const big = "x".repeat(5 * 1024);
    receiver.replies = [
      { status: 500, body: big },
      { status: 500, body: "second" },
      { status: 500, body: "third" },
    ];
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    await h.pay(u.id, `flaky-${u.id}`);
    const [d] = await waitForDeliveries(h, u, ep.id, allIn("succeeded"), "attempt 4 to succeed");

    expect(receiver.received).toHaveLength(4);
    expect(new Set(receiver.received.map((r) => r.headers["webhook-id"]))).toEqual(new Set([d!.event_id]));
    expect(d!.next_attempt_at).toBeNull();
    expect(d!.attempts.map((a) => a.number)).toEqual([1, 2, 3, 4]);
    expect(outcomes(d!)).toEqual([
      [500, "http_status"],
      [500, "http_status"],
      [500, "http_status"],
      [204, null],
    ]);
    expect(d!.attempts.map((a) => a.response_body)).toEqual(["x".repeat(2048), "second", "third", ""]);
    expect(Buffer.byteLength(d!.attempts[0]!.response_body!)).toBe(2048);
    for (const a of d!.attempts) {
      expect(Number.isInteger(a.latency_ms) && a.latency_ms >= 0).toBe(true);
      expect(a.attempted_at).toMatch(ISO);
    }
  });

  it("disables the endpoint on 410, holds its events, and sends them all when re-enabled", async () => {
    const { h, receiver } = await rig();
    receiver.replies = [{ status: 410, body: "gone" }];
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    const get = async () => (await h.request("GET", `/api/v1/me/webhooks/${ep.id}`, { key: u.key })).json;
    await h.pay(u.id, `gone-${u.id}`);
    await waitFor(async () => (await get()).enabled === false, 5000, "the endpoint to be disabled");

    expect(await get()).toMatchObject({ enabled: false, disabled_reason: "gone" });
    const [first] = await deliveriesOf(h, u, ep.id);
    expect(first).toMatchObject({ status: "held", next_attempt_at: null });
    expect(first!.attempts).toMatchObject([
      { number: 1, response_status: 410, response_body: "gone", error_class: "http_status" },
    ]);

    await h.pay(u.id, `while-disabled-${u.id}`);
    const [second] = await deliveriesOf(h, u, ep.id);
    expect(second).toMatchObject({ status: "held", attempts: [] });
    await quietPeriod();
    expect(receiver.received).toHaveLength(1);

    const enabled = await h.request("PATCH", `/api/v1/me/webhooks/${ep.id}`, {
      key: u.key,
      body: { enabled: true },
    });
    expect(enabled.json).toMatchObject({ enabled: true, disabled_reason: null });
    const ds = await waitForDeliveries(h, u, ep.id, allIn("succeeded", 2), "the held deliveries");
    expect(receiver.received).toHaveLength(3);
    expect(
      receiver.received
        .slice(1)
        .map((r) => r.headers["webhook-id"])
        .sort(),
    ).toEqual([first!.event_id, second!.event_id].sort());
    expect(ds.map(outcomes)).toEqual([
      [[204, null]],
      [
        [410, "http_status"],
        [204, null],
      ],
    ]);
  });

  it("exhausts after 4 refused attempts, then recover delivers it", async () => {
    const { h, receiver } = await rig();
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, `http://127.0.0.1:${await freePort()}/down`);
    await h.pay(u.id, `down-${u.id}`);
    const [d] = await waitForDeliveries(h, u, ep.id, allIn("exhausted"), "the delivery to be exhausted");

    expect(d!.next_attempt_at).toBeNull();
    expect(d!.attempts.map((a) => a.number)).toEqual([1, 2, 3, 4]);
    expect(d!.attempts.every((a) => a.error_class === "refused" && a.response_status === null)).toBe(true);
    expect(d!.attempts.every((a) => a.response_body === null)).toBe(true);

    const patched = await h.request("PATCH", `/api/v1/me/webhooks/${ep.id}`, {
      key: u.key,
      body: { url: receiver.url },
    });
    expect(patched.status).toBe(200);
    const recover = (since: string) =>
      h.request("POST", `/api/v1/me/webhooks/${ep.id}/recover`, { key: u.key, body: { since } });
    expect((await recover("2999-01-01T00:00:00Z")).json).toEqual({ requeued: 0 });
    const recovered = await recover(d!.created_at);
    expect(recovered.status).toBe(202);
    expect(recovered.json).toEqual({ requeued: 1 });

    const [after] = await waitForDeliveries(h, u, ep.id, allIn("succeeded"), "the recovered delivery");
    expect(receiver.received.map((r) => r.headers["webhook-id"])).toEqual([d!.event_id]);
    expect(after!.attempts.map((a) => a.number)).toEqual([1, 2, 3, 4, 5]);
    expect(after!.attempts[4]).toMatchObject({ response_status: 204, error_class: null });
  });

  it("waits Retry-After on 429 in place of the schedule's delay", async () => {
    const { h, receiver } = await rig();
    receiver.replies = [{ status: 429, headers: { "retry-after": "2" } }];
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    await h.pay(u.id, `throttled-${u.id}`);
    const [d] = await waitForDeliveries(h, u, ep.id, allIn("succeeded"), "the throttled delivery");

    const [first, second] = receiver.received;
    const gap = second!.at - first!.at;
    expect(gap).toBeGreaterThanOrEqual(1900);
    expect(gap).toBeLessThan(3000);
    expect(outcomes(d!)).toEqual([
      [429, "http_status"],
      [204, null],
    ]);
  });

  it("clamps Retry-After to at least 1 s and at most 1 h", async () => {
    // The schedule alone would wait 8–12 s before attempt 2.
    const r = await rig({ scheduleS: [0, 10, 10] });
    const { h, receiver } = r;
    receiver.replies = [{ status: 503, headers: { "retry-after": "0" } }];
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    await h.pay(u.id, `retry-now-${u.id}`);
    await waitForDeliveries(h, u, ep.id, allIn("succeeded"), "the retry after 1 s");
    const gap = receiver.received[1]!.at - receiver.received[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(5000);

    const slowDown = await r.anotherReceiver();
    slowDown.replies = [{ status: 429, headers: { "retry-after": "86400" } }];
    const v = await h.userWithKey();
    const ep2 = await addEndpoint(h, v, slowDown.url);
    await h.pay(v.id, `retry-tomorrow-${v.id}`);
    const [d] = await waitForDeliveries(h, v, ep2.id, (ds) => ds[0]?.status === "failed", "the 429");
    const waitS = Date.parse(d!.next_attempt_at!) / 1000 - Math.floor(Date.now() / 1000);
    expect(waitS).toBeGreaterThanOrEqual(3595);
    expect(waitS).toBeLessThanOrEqual(3602);
  });

  it("records a receiver that never answers as a timeout", async () => {
    const { h, receiver } = await rig({ timeoutMs: 500, scheduleS: [0] });
    receiver.fallback = "hang";
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    await h.pay(u.id, `hang-${u.id}`);
    const [d] = await waitForDeliveries(h, u, ep.id, allIn("exhausted"), "the timeout");

    expect(receiver.received).toHaveLength(1);
    expect(d!.attempts).toMatchObject([
      { number: 1, response_status: null, response_body: null, error_class: "timeout" },
    ]);
    expect(d!.attempts[0]!.latency_ms).toBeGreaterThanOrEqual(450);
    expect(d!.attempts[0]!.latency_ms).toBeLessThan(1500);
  });

  it("counts a 302 as a failure and never requests its Location", async () => {
    const r = await rig();
    const target = await r.anotherReceiver();
    r.receiver.replies = [{ status: 302, headers: { location: target.url } }];
    const u = await r.h.userWithKey();
    const ep = await addEndpoint(r.h, u, r.receiver.url);
    await r.h.pay(u.id, `redirect-${u.id}`);
    const [d] = await waitForDeliveries(r.h, u, ep.id, allIn("succeeded"), "the retry after the 302");

    expect(outcomes(d!)).toEqual([
      [302, "http_status"],
      [204, null],
    ]);
    expect(r.receiver.received).toHaveLength(2);
    expect(target.received).toEqual([]);
  });

  it("re-checks the resolved address at every new connection and refuses without connecting", async () => {
    const stub = stubResolver(["127.0.0.1"]);
    const { h, receiver } = await rig({ scheduleS: [0] }, { resolve: stub.resolve });
    // The receiver closes each connection after answering, so every attempt opens a new one.
    receiver.fallback = { status: 204, headers: { connection: "close" } };
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, `http://${NAME}:${receiver.port}/hooks`);
    await h.pay(u.id, `allowed-${u.id}`);
    await waitForDeliveries(h, u, ep.id, allIn("succeeded"), "the delivery to the allowed address");
    expect(receiver.received.map((r) => r.headers.host)).toEqual([`${NAME}:${receiver.port}`]);

    stub.answer = ["10.0.0.1"];
    await h.pay(u.id, `private-${u.id}`);
    let [d] = await waitForDeliveries(h, u, ep.id, (ds) => ds[0]?.status === "exhausted", "the refusal");
    expect(d!.attempts).toMatchObject([{ number: 1, ...blockedAttempt }]);

    // Every address is checked, not just the one connected to.
    stub.answer = ["127.0.0.1", "10.0.0.1"];
    const redeliver = () =>
      h.request("POST", `/api/v1/me/webhooks/${ep.id}/deliveries/${d!.id}/redeliver`, { key: u.key });
    expect((await redeliver()).status).toBe(202);
    [d] = await waitForDeliveries(h, u, ep.id, (ds) => ds[0]?.attempts.length === 2, "the second refusal");
    expect(d!.attempts[1]).toMatchObject({ number: 2, ...blockedAttempt });
    expect(receiver.received).toHaveLength(1);

    stub.answer = ["127.0.0.1"];
    await redeliver();
    [d] = await waitForDeliveries(h, u, ep.id, (ds) => ds[0]?.status === "succeeded", "the allowed retry");
    expect(outcomes(d!)).toEqual([
      [null, "blocked"],
      [null, "blocked"],
      [204, null],
    ]);
    expect(receiver.received).toHaveLength(2);
    expect(tripwire.stopped).toEqual([]);
  });

  it("refuses a refused literal address written straight into the store, before any packet", async () => {
    const { h, receiver } = await rig(
      { allowNetworks: [], scheduleS: [0] },
      { resolve: stubResolver("unresolvable").resolve },
    );
    const v6 = await startIpv6Sentinel();
    try {
      const u = await h.userWithKey();
      // An unresolvable name passes creation; the store is then edited behind the API's back.
      const ep = await addEndpoint(h, u, `http://${NAME}/hooks`);
      const port = receiver.port;
      const urls = [
        `http://127.0.0.1:${port}/hooks`, // where the receiver listens
        `http://2130706433:${port}/hooks`, // 127.0.0.1 as one number
        `http://[::1]:${v6.port}/hooks`, // where the IPv6 sentinel listens
        `http://[::ffff:127.0.0.1]:${port}/hooks`,
        `http://0.0.0.0:${port}/hooks`,
        `http://10.0.0.1:${port}/hooks`,
        "http://169.254.169.254/latest/meta-data/",
        `http://[fd00::1]:${port}/hooks`,
      ];
      for (const url of urls) {
        await h.store.db
          .updateTable("webhook_endpoints")
          .set({ url })
          .where("user_id", "=", u.id)
          .where("id", "=", ep.id)
          .execute();
        const sent = await h.request("POST", `/api/v1/me/webhooks/${ep.id}/test`, { key: u.key });
        expect(sent.status, url).toBe(202);
        const attempts = await attemptsOf(h, u, ep.id, sent.json.delivery_id);
        expect(attempts, url).toMatchObject([blockedAttempt]);
      }
      expect(receiver.received).toEqual([]);
      expect(v6.hits()).toBe(0);
      expect(tripwire.stopped).toEqual([]);
    } finally {
      await v6.close();
    }
  });

  it("refuses every non-public address class at creation and at attempt time", async () => {
    const stub = stubResolver("unresolvable");
    const { h, receiver } = await rig({ allowNetworks: [], scheduleS: [0] }, { resolve: stub.resolve });
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, `http://${NAME}/hooks`);
    const refused = [
      ...["0.0.0.0", "10.0.0.1", "100.64.0.1", "127.0.0.1", "127.255.255.254", "169.254.169.254"],
      ...["172.16.0.1", "172.31.255.254", "192.0.0.1", "192.0.2.1", "192.168.1.1", "198.18.0.1"],
      ...["198.51.100.1", "203.0.113.1", "224.0.0.1", "240.0.0.1", "255.255.255.255"],
      ...["::", "::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "100::1", "2001::1"],
      ...["2001:db8::1", "2002:a00:1::1", "fc00::1", "fd12:3456::1", "fe80::1", "fec0::1", "ff02::1"],
    ];
    for (const address of refused) {
      const literal = isIP(address) === 6 ? `[${address}]` : address;
      const create = (url: string) => h.request("POST", "/api/v1/me/webhooks", { key: u.key, body: { url } });
      expect(isEnvelope(await create(`http://${literal}/hooks`), 400, "invalid_request_error"), address).toBe(
        true,
      );
      stub.answer = [address];
      expect(isEnvelope(await create(`http://${NAME}/hooks`), 400, "invalid_request_error"), address).toBe(
        true,
      );

      const sent = await h.request("POST", `/api/v1/me/webhooks/${ep.id}/test`, { key: u.key });
      expect(await attemptsOf(h, u, ep.id, sent.json.delivery_id), address).toMatchObject([blockedAttempt]);
    }
    expect(receiver.received).toEqual([]);
    expect(tripwire.stopped).toEqual([]);
  });

  it("disables an endpoint that fails for the disable period and holds its queue", async () => {
    // Ten attempts to the one endpoint at once, so that their failures are recorded side by side.
    const { h } = await rig({ disableAfterS: 1, scheduleS: [0, 30], endpointConcurrency: 10 });
    const failing = await startBarrierReceiver(500);
    try {
      const u = await h.userWithKey();
      const ep = await addEndpoint(h, u, failing.url);
      const get = async () => (await h.request("GET", `/api/v1/me/webhooks/${ep.id}`, { key: u.key })).json;
      await h.pay(u.id, `first-failure-${u.id}`);
      await waitForDeliveries(h, u, ep.id, allIn("failed"), "the first failure");
      expect(await get()).toMatchObject({ enabled: true, disabled_reason: null });

      // A second on, ten more events fail at the same instant: each failure completes the period.
      await quietPeriod(1100);
      failing.setBatch(10);
      await Promise.all(Array.from({ length: 10 }, (_, i) => h.pay(u.id, `failing-${i}-${u.id}`)));
      await waitFor(async () => (await get()).enabled === false, 5000, "the endpoint to be disabled");
      expect(await get()).toMatchObject({ enabled: false, disabled_reason: "failing" });
      await waitForDeliveries(h, u, ep.id, allIn("held", 11), "every delivery held");

      await h.pay(u.id, `while-disabled-${u.id}`);
      await quietPeriod(1000);
      expect(failing.arrived()).toBe(11);
      const ds = await deliveriesOf(h, u, ep.id);
      expect(ds.map((d) => d.status)).toEqual(Array(12).fill("held"));
      expect(ds[0]!.attempts).toEqual([]);
      expect(ds.flatMap((d) => d.attempts).every((a) => a.response_status === 500)).toBe(true);
    } finally {
      await failing.close();
    }
  });

  it("records an attempt that was in flight when its endpoint was disabled", async () => {
    const { h } = await rig();
    // It answers 204, but only after the endpoint has been disabled.
    const slow = await startSlowReceiver(600);
    try {
      const u = await h.userWithKey();
      const ep = await addEndpoint(h, u, slow.url);
      await h.pay(u.id, `in-flight-${u.id}`);
      await waitFor(() => slow.arrived() === 1, 5000, "the request to arrive");
      const disabled = await h.request("PATCH", `/api/v1/me/webhooks/${ep.id}`, {
        key: u.key,
        body: { enabled: false },
      });
      expect(disabled.json).toMatchObject({ enabled: false, disabled_reason: "manual" });

      await quietPeriod(1000);
      const [d] = await deliveriesOf(h, u, ep.id);
      expect(d!.attempts).toMatchObject([{ number: 1, response_status: 204, error_class: null }]);
    } finally {
      await slow.close();
    }
  });

  it("cancels an endpoint's pending deliveries when it is deleted", async () => {
    const { h, receiver } = await rig();
    receiver.fallback = { status: 500 };
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    await h.pay(u.id, `deleted-${u.id}`);
    await waitForDeliveries(h, u, ep.id, allIn("failed"), "the first failure");
    expect((await h.request("DELETE", `/api/v1/me/webhooks/${ep.id}`, { key: u.key })).status).toBe(204);

    await quietPeriod(1500);
    expect(receiver.received).toHaveLength(1);
    const rows = await h.store.db
      .selectFrom("webhook_deliveries")
      .select(["status", "next_attempt_at_ms"])
      .where("user_id", "=", u.id)
      .where("endpoint_id", "=", ep.id)
      .execute();
    expect(rows).toEqual([{ status: "cancelled", next_attempt_at_ms: null }]);
    const list = await h.request("GET", `/api/v1/me/webhooks/${ep.id}/deliveries`, { key: u.key });
    expect(isEnvelope(list, 404, "not_found_error")).toBe(true);
  });
});
