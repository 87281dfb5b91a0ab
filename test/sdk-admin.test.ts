import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthenticationError,
  BelfryAdmin,
  ConflictError,
  type IngestEvent,
  IngestManyError,
  InvalidRequestError,
  NotFoundError,
} from "../src/sdk/admin.js";
import { BelfryClient, PermissionError } from "../src/sdk/client.js";
import { BACKENDS } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness } from "./support/harness.js";
import { listeningHarness } from "./support/sdk.js";

/** BelfryAdmin against the real server (in-process, on a loopback port) on every store. */

const PAY = "system.payment.received";

describe.each(BACKENDS)("BelfryAdmin on %s", (backend) => {
  let h: Harness & { url: string };
  let admin: BelfryAdmin;
  /** "METHOD path" of every request the admin client sent. */
  const sent: string[] = [];

  beforeAll(async () => {
    h = await listeningHarness(backend);
    admin = new BelfryAdmin({
      baseUrl: h.url,
      token: ADMIN_TOKEN,
      fetch: (input, init) => {
        sent.push(`${init?.method} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
    });
  });
  afterAll(() => h.close());

  const payment = (id: string, userId: number, amount = 100): IngestEvent => ({
    id,
    type: PAY,
    user_id: userId,
    data: { amount_cents: amount, balance_cents: 1000 },
  });

  it("manages users, keys, orgs, members and org keys", async () => {
    const ada = await admin.users.create({ email: `ada-${backend}@example.com`, name: "Ada" });
    expect(ada).toMatchObject({ email: `ada-${backend}@example.com`, name: "Ada" });
    expect(await admin.users.update(ada.id, { name: null })).toMatchObject({ id: ada.id, name: null });
    const duplicate = await admin.users.create({ email: `ADA-${backend}@example.com` }).catch((e) => e);
    expect(duplicate).toBeInstanceOf(ConflictError);
    expect(duplicate.requestId).toMatch(/^req_/);

    const key = await admin.keys.create(ada.id, { name: "laptop" });
    expect(key).toMatchObject({ user_id: ada.id, org_id: null, revoked_at: null });
    expect(key.key).toMatch(/^bf_/);
    const client = new BelfryClient({ baseUrl: h.url, token: key.key });
    expect(await client.notifications.unreadCount()).toEqual({ count: 0 });

    const bob = await admin.users.create({ email: `bob-${backend}@example.com` });
    const org = await admin.orgs.create({ name: "Acme", owner_user_id: ada.id });
    expect(org).toMatchObject({ name: "Acme" });
    expect(await admin.members.add(org.id, { user_id: bob.id, role: "member" })).toEqual({
      org_id: org.id,
      user_id: bob.id,
      role: "member",
    });
    await expect(admin.members.add(org.id, { user_id: bob.id, role: "admin" })).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect(await admin.members.changeRole(org.id, bob.id, { role: "admin" })).toMatchObject({
      role: "admin",
    });
    await expect(admin.members.changeRole(org.id, ada.id, { role: "member" })).rejects.toBeInstanceOf(
      ConflictError,
    ); // the last owner

    const orgKey = await admin.orgKeys.create(org.id, { user_id: bob.id, name: "ci" });
    expect(orgKey).toMatchObject({ org_id: org.id, user_id: bob.id });
    // The owner revokes Bob's org key with her own key (the user-side route).
    const revokedByOwner = await client.orgKeys.revoke(org.id, orgKey.id);
    expect(revokedByOwner.revoked_at).not.toBeNull();
    expect(await client.orgKeys.revoke(org.id, orgKey.id)).toEqual(revokedByOwner); // idempotent
    const bobKey = await admin.keys.create(bob.id, { name: "b" });
    await admin.members.changeRole(org.id, bob.id, { role: "member" });
    const asMember = new BelfryClient({ baseUrl: h.url, token: bobKey.key });
    await expect(asMember.orgKeys.revoke(org.id, orgKey.id)).rejects.toBeInstanceOf(PermissionError);

    await admin.members.remove(org.id, bob.id);
    await expect(admin.members.remove(org.id, bob.id)).rejects.toBeInstanceOf(NotFoundError);

    const revoked = await admin.keys.revoke(key.id);
    expect(revoked.revoked_at).not.toBeNull();
    expect(await admin.keys.revoke(key.id)).toEqual(revoked); // the same revoked_at
    await expect(client.notifications.unreadCount()).rejects.toBeInstanceOf(AuthenticationError);
    await expect(admin.users.update(987_654, { name: "x" })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("ingests one event idempotently, refusing a reused id with other content", async () => {
    const user = await admin.users.create({ email: `ingest-${backend}@example.com` });
    expect(await admin.events.ingest(payment(`one-${backend}`, user.id))).toEqual({
      id: `one-${backend}`,
      duplicate: false,
      notifications: 1,
    });
    expect(await admin.events.ingest(payment(`one-${backend}`, user.id))).toEqual({
      id: `one-${backend}`,
      duplicate: true,
      notifications: 0,
    });
    const reused = await admin.events.ingest(payment(`one-${backend}`, user.id, 999)).catch((e) => e);
    expect(reused).toBeInstanceOf(ConflictError);
    expect(reused).toMatchObject({ status: 409, type: "conflict_error" });
    const bad = await admin.events
      .ingest({ ...payment("x", user.id), data: { amount_cents: 0 } })
      .catch((e) => e);
    expect(bad).toBeInstanceOf(InvalidRequestError);
    expect(bad.message).toContain("data.");
    const wrongToken = new BelfryAdmin({ baseUrl: h.url, token: "nope" });
    await expect(wrongToken.events.ingest(payment("y", user.id))).rejects.toBeInstanceOf(AuthenticationError);
  });

  it("ingests 2,500 events as three batches, with every result in input order", async () => {
    const user = await admin.users.create({ email: `many-${backend}@example.com` });
    const events: IngestEvent[] = Array.from({ length: 2500 }, (_, i) =>
      payment(`m-${backend}-${i}`, user.id),
    );
    await admin.events.ingest(events[10]!); // already known: a duplicate in the batch
    events[1700] = { ...payment(`m-${backend}-1700`, user.id), data: { amount_cents: -5, balance_cents: 0 } };
    events[2400] = events[2399]!; // the same event twice in one batch: the second is a duplicate

    sent.length = 0;
    const results = await admin.events.ingestMany(events);
    expect(sent).toEqual(Array(3).fill("POST /admin/v1/events/batch"));
    expect(results).toHaveLength(2500);
    results.forEach((r, i) => {
      expect(r.id).toBe(events[i]!.id);
      if (i === 1700) {
        expect(r).toMatchObject({ error: { type: "invalid_request_error" } });
        expect("error" in r && r.error.message).toMatch(/^events\[700\]: data\.amount_cents/);
      } else {
        const duplicate = i === 10 || i === 2400;
        expect(r).toEqual({ id: events[i]!.id, duplicate, notifications: duplicate ? 0 : 1 });
      }
    });
    const client = new BelfryClient({
      baseUrl: h.url,
      token: (await admin.keys.create(user.id, { name: "k" })).key,
    });
    // 2,500 less the refused one and the two duplicates, plus the one ingested beforehand.
    expect(await client.notifications.unreadCount()).toEqual({ count: 2498 });
  });

  it("says which events were committed when a batch fails, and sends nothing after it", async () => {
    const user = await admin.users.create({ email: `fail-${backend}@example.com` });
    const events: IngestEvent[] = Array.from({ length: 1510 }, (_, i) =>
      payment(`f-${backend}-${i}`, user.id),
    );
    // Too large for any batch (over 8 MiB on its own): Belfry refuses that batch with a 413.
    events[1500] = {
      ...payment(`f-${backend}-huge`, user.id),
      data: { amount_cents: 1, balance_cents: 1, receipt: "r".repeat(9 * 1024 * 1024) },
    };

    sent.length = 0;
    const error = await admin.events.ingestMany(events).catch((e) => e);
    expect(error).toBeInstanceOf(IngestManyError);
    expect(error).toMatchObject({
      status: 413,
      type: "invalid_request_error",
      committedCount: 1500,
      failedFrom: 1500,
      failedTo: 1501,
      uncertain: false,
    });
    expect(error.committed).toHaveLength(1500);
    expect(error.message).toContain("events[0..1499] were committed");
    expect(error.message).toContain("events[1500..1500] was not committed");
    expect(sent).toHaveLength(3); // 1,000, then 500 (the next would pass 8 MiB), then the huge one alone
    const client = new BelfryClient({
      baseUrl: h.url,
      token: (await admin.keys.create(user.id, { name: "k" })).key,
    });
    expect(await client.notifications.unreadCount()).toEqual({ count: 1500 });
  });
});
