import { isIP } from "node:net";
import { describe, expect, it } from "vitest";
import { scheduleAttempts } from "../src/delivery/deliver.js";
import { startDeliveryWorker } from "../src/delivery/worker.js";
import type { Resolve } from "../src/network/address-policy.js";
import type { DeliveryStatus } from "../src/store/schema.js";
import { transact } from "../src/store/transaction.js";
import {
  type Claimed,
  claimDueDeliveries,
  newClaimCursor,
  type Outcome,
  recordOutcomes,
} from "../src/webhooks/outbox-claims.js";
import { BACKENDS } from "./support/backends.js";
import {
  addEndpoint,
  allIn,
  deliveriesOf,
  rigsFor,
  type User,
  waitForDeliveries,
} from "./support/delivery-rig.js";
import type { Harness } from "./support/harness.js";
import { installPacketTripwire } from "./support/packet-tripwire.js";
import { waitFor } from "./support/receiver.js";
import { startCountingReceiver, startDroppingReceiver } from "./support/special-receivers.js";

// Refused addresses below are values for the SSRF guard only; nothing may connect to them.
const tripwire = installPacketTripwire();

const NAME = "pooled.belfry.test";

/** A resolver stub: NAME resolves to whatever `answer` holds at the time; other names fail. */
function stubResolver(initial: string[]) {
  const stub = {
    answer: initial,
    resolve: (async (host) => {
      if (host !== NAME)
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
      return stub.answer.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
    }) as Resolve,
  };
  return stub;
}

/** Pays `user` once and waits until the endpoint has `count` deliveries, all succeeded. */
async function payAndWait(h: Harness, user: User, endpointId: number, id: string, count: number) {
  await h.pay(user.id, `${id}-${user.id}`);
  return waitForDeliveries(h, user, endpointId, allIn("succeeded", count), `delivery ${count}`);
}

describe.each(BACKENDS)("webhook connections and batches on %s", (backend) => {
  const rig = rigsFor(backend);

  it("sends one endpoint's attempts over one kept connection, and closes it once idle", async () => {
    // Long enough that each next delivery comes before it runs out, on a slow cluster too.
    const { h, receiver } = await rig({ keepAliveMs: 2000 });
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    for (let i = 1; i <= 5; i++) await payAndWait(h, u, ep.id, `kept-${i}`, i);
    expect(receiver.received).toHaveLength(5);
    expect(receiver.connections).toBe(1);
    // Idle past the keep-alive time, the worker closes it (the receiver would keep it 5 s).
    await waitFor(() => receiver.closedConnections === 1, 8000, "the idle connection to close");
    await payAndWait(h, u, ep.id, "after-idle", 6);
    expect(receiver.connections).toBe(2);
  });

  it("never runs more attempts at once than the endpoint's concurrency, nor than the worker's", async () => {
    const r = await rig({ concurrency: 5, endpointConcurrency: 2 }, { workers: 0 });
    const { h } = r;
    const slow = await startCountingReceiver(150);
    try {
      // Three endpoints on one origin, ten events each, all due before the worker starts.
      const paths = ["/a", "/b", "/c"];
      const owners = await Promise.all(paths.map(() => h.userWithKey()));
      const endpoints = await Promise.all(
        paths.map((p, i) => addEndpoint(h, owners[i] as User, slow.url(p))),
      );
      for (const [i, u] of owners.entries())
        await Promise.all(Array.from({ length: 10 }, (_, j) => h.pay(u.id, `burst-${i}-${j}-${u.id}`)));
      r.workers.push(startDeliveryWorker(h.deps, r.log));
      for (const [i, u] of owners.entries())
        await waitForDeliveries(h, u, (endpoints[i] as { id: number }).id, allIn("succeeded", 10), "ten");
      expect(slow.arrived()).toBe(30);
      for (const p of paths) expect(slow.most(p), p).toBe(2);
      expect(slow.most()).toBe(5);
    } finally {
      await slow.close();
    }
  });

  it("refuses a name that now resolves to a refused address at its next new connection", async () => {
    const stub = stubResolver(["127.0.0.1"]);
    const { h, receiver } = await rig({ scheduleS: [0] }, { resolve: stub.resolve });
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, `http://${NAME}:${receiver.port}/hooks`);
    await payAndWait(h, u, ep.id, "checked", 1);

    // The open connection goes on to the address that was checked when it opened…
    stub.answer = ["10.0.0.1"];
    await payAndWait(h, u, ep.id, "kept", 2);
    expect(receiver.connections).toBe(1);

    // …and the next connection is checked afresh: refused before any packet.
    receiver.closeIdle();
    await h.pay(u.id, `refused-${u.id}`);
    const [d] = await waitForDeliveries(h, u, ep.id, (ds) => ds[0]?.status === "exhausted", "the refusal");
    expect(d!.attempts).toMatchObject([{ number: 1, response_status: null, error_class: "blocked" }]);
    expect(receiver.received).toHaveLength(2);
    expect(receiver.connections).toBe(1);
    expect(tripwire.stopped).toEqual([]);
  });

  it("keeps the first 2 KB of a longer body and does not reuse its connection", async () => {
    const { h, receiver } = await rig();
    receiver.replies = [{ status: 200, body: "x".repeat(5000) }];
    const u = await h.userWithKey();
    const ep = await addEndpoint(h, u, receiver.url);
    const [first] = await payAndWait(h, u, ep.id, "long", 1);
    expect(first!.attempts).toMatchObject([{ number: 1, response_status: 200, error_class: null }]);
    expect(first!.attempts[0]!.response_body).toBe("x".repeat(2048));
    await payAndWait(h, u, ep.id, "after-long", 2);
    expect(receiver.connections).toBe(2);

    // A body of exactly 2 KB is read to its end: the connection is kept.
    receiver.replies = [{ status: 200, body: "y".repeat(2048) }];
    const [exact] = await payAndWait(h, u, ep.id, "exact", 3);
    expect(exact!.attempts[0]!.response_body).toBe("y".repeat(2048));
    await payAndWait(h, u, ep.id, "after-exact", 4);
    expect(receiver.connections).toBe(2);
  });

  it("sends a request once more, on a fresh connection, when a kept one fails before any answer", async () => {
    const { h } = await rig();
    const dropping = await startDroppingReceiver();
    try {
      const u = await h.userWithKey();
      const ep = await addEndpoint(h, u, dropping.url);
      await payAndWait(h, u, ep.id, "first", 1);
      const ds = await payAndWait(h, u, ep.id, "second", 2);
      // The second request reached the server on the kept connection, which dropped it; sent
      // again on a new connection, it succeeded: one attempt, as far as the delivery is concerned.
      expect(ds.map((d) => d.attempts.map((a) => [a.number, a.response_status]))).toEqual([
        [[1, 204]],
        [[1, 204]],
      ]);
      expect(dropping.arrived()).toBe(3);
      expect(dropping.connections()).toBe(2);
    } finally {
      await dropping.close();
    }
  });

  it("records many outcomes in one transaction: every attempt, each status and count exact", async () => {
    const { h } = await rig({ scheduleS: [0, 60] }, { workers: 0 });
    const [a, b] = [await h.userWithKey(), await h.userWithKey()];
    const [ok, flaky] = [
      await addEndpoint(h, a, "http://127.0.0.1:9/ok"),
      await addEndpoint(h, a, "http://127.0.0.1:9/flaky"),
    ];
    const off = await addEndpoint(h, b, "http://127.0.0.1:9/off");
    for (let i = 0; i < 4; i++) await h.pay(a.id, `batch-a-${i}-${a.id}`);
    for (let i = 0; i < 2; i++) await h.pay(b.id, `batch-b-${i}-${b.id}`);

    const nowMs = Date.now();
    const { claimed } = await claimDueDeliveries(h.store, newClaimCursor(), {
      look: 100,
      limit: 100,
      room: () => 100,
      nowMs,
      leaseMs: 60_000,
      leaseToken: "batch-lease",
    });
    const of = (endpointId: number) => claimed.filter((c) => c.endpointId === endpointId);
    expect([of(ok.id).length, of(flaky.id).length, of(off.id).length]).toEqual([4, 4, 2]);

    // One flaky delivery is redelivered meanwhile (its lease is dropped); the off endpoint is
    // found disabled (written straight into the store, so its deliveries keep their leases).
    const [lost, released, ...failing] = of(flaky.id) as [Claimed, Claimed, ...Claimed[]];
    const redeliver = `/api/v1/me/webhooks/${flaky.id}/deliveries/${lost.id}/redeliver`;
    expect((await h.request("POST", redeliver, { key: a.key })).status).toBe(202);
    await h.store.db
      .updateTable("webhook_endpoints")
      .set({ disabled_at: Math.floor(nowMs / 1000) })
      .where("user_id", "=", b.id)
      .where("id", "=", off.id)
      .execute();

    const attempt = (status: number) => ({
      attemptedAt: Math.floor(nowMs / 1000),
      status,
      body: status === 204 ? "" : "boom",
      latencyMs: 3,
      errorClass: status === 204 ? null : ("http_status" as const),
    });
    const outcomes: Outcome[] = [
      ...of(ok.id).map((c): Outcome => ({ kind: "attempt", claimed: c, attempt: attempt(204) })),
      ...failing.map((c): Outcome => ({ kind: "attempt", claimed: c, attempt: attempt(500) })),
      { kind: "attempt", claimed: lost, attempt: attempt(500) },
      { kind: "release", claimed: released },
      ...of(off.id).map((c): Outcome => ({ kind: "settle", claimed: c })),
    ];
    const plan = scheduleAttempts(h.deps.webhooks, h.deps.clockMs);
    await transact(h.store, (tx) => recordOutcomes(tx, outcomes, plan, Math.floor(Date.now() / 1000)));

    const okDs = await deliveriesOf(h, a, ok.id);
    expect(okDs.map((d) => [d.status, d.attempts.map((x) => [x.number, x.response_status])])).toEqual(
      Array(4).fill(["succeeded", [[1, 204]]]),
    );
    const flakyDs = new Map((await deliveriesOf(h, a, flaky.id)).map((d) => [d.id, d]));
    for (const c of failing) {
      expect(flakyDs.get(c.id)).toMatchObject({ status: "failed", next_attempt_at: expect.any(String) });
      expect(flakyDs.get(c.id)!.attempts).toMatchObject([
        { number: 1, response_status: 500, response_body: "boom" },
      ]);
    }
    // The redelivered one stays where the redelivery put it; its attempt is still logged.
    expect(flakyDs.get(lost.id)).toMatchObject({ status: "pending" });
    expect(flakyDs.get(lost.id)!.attempts).toMatchObject([{ number: 1, response_status: 500 }]);
    expect(flakyDs.get(released.id)).toMatchObject({ status: "pending", attempts: [] });
    // Disabled: held; there is no deliveries list for a disabled endpoint's owner to doubt, so
    // read the rows (by user, as every statement on them must).
    const offRows = await h.store.db
      .selectFrom("webhook_deliveries")
      .select(["status", "lease_token"])
      .where("user_id", "=", b.id)
      .where("endpoint_id", "=", off.id)
      .execute();
    expect(offRows).toEqual(Array(2).fill({ status: "held", lease_token: null }));

    // Every lease is cleared, and the kept counts match a recount.
    for (const [user, endpointId] of [
      [a, ok.id],
      [a, flaky.id],
      [b, off.id],
    ] as const) {
      const rows = await h.store.db
        .selectFrom("webhook_deliveries")
        .select(["status", "lease_token"])
        .where("user_id", "=", user.id)
        .where("endpoint_id", "=", endpointId)
        .execute();
      expect(rows.filter((r) => r.lease_token !== null)).toEqual([]);
      const recount: Record<string, number> = {};
      for (const r of rows) recount[r.status] = (recount[r.status] ?? 0) + 1;
      const kept = await h.store.db
        .selectFrom("webhook_delivery_counters")
        .select(["status", "count"])
        .where("user_id", "=", user.id)
        .where("endpoint_id", "=", endpointId)
        .execute();
      const counted = Object.fromEntries(
        kept.filter((k) => Number(k.count) !== 0).map((k) => [k.status, Number(k.count)]),
      );
      expect(counted, `endpoint ${endpointId}`).toEqual(recount as Record<DeliveryStatus, number>);
    }
  });
});
