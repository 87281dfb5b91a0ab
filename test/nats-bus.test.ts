import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance } from "fastify";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BusMessage, type ChangeBus, type Changes, emptyChanges } from "../src/bus/change-bus.js";
import { natsBus, parseNatsUrl } from "../src/bus/nats-bus.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { createDeps } from "../src/deps.js";
import { buildApp } from "../src/http/app.js";
import { migrate } from "../src/store/migrate.js";
import { openStore, type Store } from "../src/store/store.js";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { NATS_UP, NATS_URL, type PrivateNats, privateNats, uniqueSubject } from "./support/nats.js";
import { runCli } from "./support/process.js";
import { openSse } from "./support/sse.js";
import { startTcpProxy } from "./support/tcp-proxy.js";

const ADMIN = "nats_bus_admin_token_0123456789abcdef";

/** Every change heard by a subscriber, merged, and the resyncs counted. */
function recorder(bus: ChangeBus) {
  const heard: BusMessage[] = [];
  bus.subscribe((m) => heard.push(m));
  const changes = () => heard.filter((m): m is { changes: Changes } => "changes" in m).map((m) => m.changes);
  return {
    heard,
    changes,
    resyncs: () => heard.filter((m) => "resync" in m).length,
    merged(): Changes {
      const all = emptyChanges();
      for (const c of changes()) {
        for (const f of c.feeds) all.feeds.add(f);
        for (const [user, ids] of c.reads) {
          const before = all.reads.get(user);
          all.reads.set(user, ids === "all" || before === "all" ? "all" : [...(before ?? []), ...ids]);
        }
        all.deliveries ||= c.deliveries;
        for (const k of c.revokedKeys) all.revokedKeys.add(k);
        for (const s of c.endedSessions) all.endedSessions.add(s);
        for (const [hash, generation] of c.tickets) all.tickets.set(hash, generation);
      }
      return all;
    },
  };
}

async function until(test: () => boolean, what: string, ms = 5000) {
  for (let waited = 0; waited < ms && !test(); waited += 20) await sleep(20);
  expect(test(), what).toBe(true);
}

/** A change with every field set, and `n` of each id. */
function bigChange(n: number): Changes {
  const c = emptyChanges();
  c.deliveries = true;
  for (let i = 1; i <= n; i++) {
    c.feeds.add(i);
    c.revokedKeys.add(1_000_000 + i);
    c.endedSessions.add(2_000_000 + i);
    c.tickets.set(`${"ab".repeat(28)}${String(i).padStart(8, "0")}`, i);
  }
  c.reads.set(1, "all");
  c.reads.set(
    2,
    Array.from({ length: 3 * n }, (_, i) => i + 1),
  );
  return c;
}

describe("BELFRY_BUS_URL", () => {
  it("takes one or several nats:// servers, with user and password or a token", () => {
    expect(parseNatsUrl("nats://127.0.0.1:4222")).toMatchObject({ servers: ["127.0.0.1:4222"] });
    const cluster = parseNatsUrl("nats://bel:p%40ss@n1:4223, nats://bel:p%40ss@n2");
    expect(cluster).toMatchObject({ servers: ["n1:4223", "n2:4222"], user: "bel", pass: "p@ss" });
    expect(cluster.location).toBe("nats://n1:4223,nats://n2:4222");
    expect(parseNatsUrl("nats://s3cret@n1")).toMatchObject({ servers: ["n1:4222"], token: "s3cret" });
    const config = loadConfig({ BELFRY_BUS_URL: "nats://127.0.0.1:4222" });
    expect(config.bus).toEqual({ url: "nats://127.0.0.1:4222", subject: "belfry.changes" });
    expect(loadConfig({}).bus).toBeUndefined();
  });

  it.each([
    ["redis://127.0.0.1:6379", "is not a nats:// URL"],
    ["127.0.0.1:4222", "is not a nats:// URL"],
    ["nats://", "is not a nats:// URL"],
    ["nats://host:4222/belfry", "has a path, query or fragment"],
    [" , ", "names no server"],
    ["nats://a:one@n1,nats://a:two@n2", "different credentials"],
  ])("refuses %j with a message naming the variable", (value, reason) => {
    const load = () => loadConfig({ BELFRY_BUS_URL: value });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/^BELFRY_BUS_URL /);
    expect(load).toThrow(reason);
  });

  it("never repeats a password in its refusal, and checks BELFRY_BUS_SUBJECT", () => {
    let message = "";
    try {
      loadConfig({ BELFRY_BUS_URL: "nats://bel:hunter2@host:4222/x" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("host:4222/x");
    expect(message).not.toContain("hunter2");
    const subject = (value: string) => () =>
      loadConfig({ BELFRY_BUS_URL: "nats://127.0.0.1", BELFRY_BUS_SUBJECT: value });
    expect(subject("acme.belfry").call(null).bus?.subject).toBe("acme.belfry");
    for (const bad of ["belfry.*", "belfry.>", "belfry..changes", "two words", ".belfry"])
      expect(subject(bad)).toThrow(/^BELFRY_BUS_SUBJECT /);
    expect(() => loadConfig({ BELFRY_BUS_SUBJECT: "acme" })).toThrow(
      /BELFRY_BUS_SUBJECT needs BELFRY_BUS_URL/,
    );
  });

  it("stops `belfry serve` with that message and exit code 1", async () => {
    const r = await runCli(["serve"], { BELFRY_BUS_URL: "nats://u:pw@host:4222?x=1", PORT: "0" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("BELFRY_BUS_URL");
    expect(r.stderr).not.toContain(":pw@");
  });
});

describe.runIf(NATS_UP)("the NATS change bus", () => {
  const subject = uniqueSubject("nats-bus");
  const open: ChangeBus[] = [];
  const bus = (url = NATS_URL, s = subject) => {
    const b = natsBus(url, { subject: s, closeMs: 1000 });
    open.push(b);
    return b;
  };
  afterAll(async () => {
    await Promise.all(open.map((b) => b.close()));
  });

  it("tells subscribers to resync once connected, then carries every field to other processes", async () => {
    const s = uniqueSubject("fields");
    const a = recorder(bus(NATS_URL, s));
    const b = bus(NATS_URL, s);
    const heardByB = recorder(b);
    await until(() => a.resyncs() === 1 && heardByB.resyncs() === 1, "a resync after the first connection");
    const small = emptyChanges();
    small.feeds.add(42);
    small.reads.set(42, [1, 2]);
    small.revokedKeys.add(9);
    small.endedSessions.add(7);
    small.tickets.set("cafe".repeat(16), 3);
    small.deliveries = true;
    b.publish(small);
    await until(() => a.changes().length === 1, "b's change on a");
    expect(a.changes()[0]).toEqual(small);
  });

  it("splits a change larger than one message and loses nothing of it", async () => {
    const s = uniqueSubject("big");
    const a = recorder(bus(NATS_URL, s));
    const b = bus(NATS_URL, s);
    recorder(b);
    await until(() => a.resyncs() === 1, "a connected");
    const big = bigChange(5000);
    b.publish(big);
    const whole = () => {
      const m = a.merged();
      const reads = m.reads.get(2);
      return (
        m.feeds.size === 5000 && m.tickets.size === 5000 && Array.isArray(reads) && reads.length === 15_000
      );
    };
    await until(whole, "the whole change");
    expect(a.changes().length).toBeGreaterThan(4);
    expect(a.merged()).toEqual(big);
  });

  it("tells its own subscribers at once and ignores its own messages on the subject", async () => {
    const s = uniqueSubject("own");
    const raw = await connect({ servers: NATS_URL.replace("nats://", "") });
    const onWire: string[] = [];
    raw.subscribe(s, { callback: (_e, m) => onWire.push(m.string()) });
    await raw.flush();
    try {
      const a = bus(NATS_URL, s);
      const mine = recorder(a);
      await until(() => mine.resyncs() === 1, "connected");
      const change = emptyChanges();
      change.feeds.add(5);
      a.publish(change);
      // Heard before publish() even returned: local subscribers never wait for NATS.
      expect(mine.changes()).toEqual([change]);
      await until(() => onWire.length === 1, "the message on the wire");
      await sleep(300);
      expect(mine.changes()).toHaveLength(1);
      expect(JSON.parse(onWire[0]!)).toMatchObject({ f: [5] });
    } finally {
      await raw.close();
    }
  });

  it("sends on close() what a short-lived process committed before its connection was up", async () => {
    const s = uniqueSubject("short");
    const a = recorder(bus(NATS_URL, s));
    await until(() => a.resyncs() === 1, "a connected");
    const cli = natsBus(NATS_URL, { subject: s });
    const change = emptyChanges();
    change.revokedKeys.add(77);
    cli.publish(change);
    await cli.close();
    await until(() => a.changes().length === 1, "the change on a");
    expect(a.changes()[0]?.revokedKeys).toEqual(new Set([77]));
  });

  describe("on a NATS of its own", () => {
    let nats: PrivateNats;
    beforeAll(async () => {
      nats = await privateNats();
    });
    afterAll(async () => {
      await nats.stop();
    });

    it("resyncs after NATS restarts, and carries changes again", async () => {
      const a = recorder(bus(nats.url));
      const bBus = bus(nats.url);
      const b = recorder(bBus);
      await until(() => a.resyncs() === 1 && b.resyncs() === 1, "connected");
      await nats.stop();
      await sleep(300);
      const meanwhile = emptyChanges();
      meanwhile.feeds.add(11);
      expect(() => bBus.publish(meanwhile)).not.toThrow();
      expect(b.changes()).toEqual([meanwhile]);
      await nats.start();
      // What b published while it was away may reach a before a subscribes again: a's resync is
      // what catches it up.
      await until(() => a.resyncs() === 2 && b.resyncs() === 2, "a resync after reconnecting", 10_000);
      const after = emptyChanges();
      after.feeds.add(12);
      bBus.publish(after);
      await until(() => a.changes().some((c) => c.feeds.has(12)), "a change after the reconnection");
    });

    it("notices a NATS gone silent, queues what it publishes meanwhile, and sends it once back", async () => {
      const proxy = await startTcpProxy(Number(new URL(nats.url).port));
      const troubles: string[] = [];
      const s = uniqueSubject("silent");
      const a = recorder(bus(nats.url, s));
      const cut = natsBus(`nats://127.0.0.1:${proxy.port}`, { subject: s, log: (m) => troubles.push(m) });
      open.push(cut);
      const b = recorder(cut);
      try {
        await until(() => a.resyncs() === 1 && b.resyncs() === 1, "connected");
        proxy.freeze();
        await until(
          () => troubles.some((t) => t.includes("lost its NATS connection")),
          "a stale connection",
          15_000,
        );
        const meanwhile = emptyChanges();
        meanwhile.revokedKeys.add(5);
        cut.publish(meanwhile);
        await sleep(200);
        expect(a.changes()).toEqual([]);
        proxy.thaw();
        await until(() => b.resyncs() === 2, "b's resync after reconnecting", 10_000);
        await until(() => a.changes().some((c) => c.revokedKeys.has(5)), "the queued change on a");
        expect(a.resyncs()).toBe(1);
      } finally {
        await proxy.close();
      }
    });

    it("starts while NATS is down without failing, and connects once it is up", async () => {
      await nats.stop();
      try {
        const early = bus(nats.url);
        const heard = recorder(early);
        const change = emptyChanges();
        change.endedSessions.add(3);
        early.publish(change);
        expect(heard.changes()).toEqual([change]);
        await sleep(1200); // several connection attempts, each refused
        expect(heard.resyncs()).toBe(0);
        await nats.start();
        const other = recorder(bus(nats.url));
        await until(() => heard.resyncs() === 1, "a resync once NATS is up", 10_000);
        await until(() => other.changes().some((c) => c.endedSessions.has(3)), "the change queued at start");
      } finally {
        await nats.start().catch(() => {});
      }
    });

    it("closes promptly when NATS never came up", async () => {
      await nats.stop();
      try {
        const troubles: string[] = [];
        const lonely = natsBus(nats.url, { closeMs: 500, log: (m) => troubles.push(m) });
        recorder(lonely);
        const change = emptyChanges();
        change.feeds.add(1);
        expect(() => lonely.publish(change)).not.toThrow();
        await expect(lonely.close()).resolves.toBeUndefined();
        expect(troubles).toContain(
          "change bus closed before NATS took its changes; other processes catch up at their next heartbeat",
        );
      } finally {
        await nats.start();
      }
    });
  });
});

describe.runIf(NATS_UP)("the NATS change bus with credentials", () => {
  it("connects with the user and password of its URL, and only logs (never throws) when refused", async () => {
    const nats = await privateNats(["--user", "belfry", "--pass", "p@ss/word"]);
    const port = new URL(nats.url).port;
    const good = natsBus(`nats://belfry:${encodeURIComponent("p@ss/word")}@127.0.0.1:${port}`);
    const other = natsBus(`nats://belfry:${encodeURIComponent("p@ss/word")}@127.0.0.1:${port}`);
    const troubles: string[] = [];
    const refused = natsBus(`nats://belfry:wrong@127.0.0.1:${port}`, {
      closeMs: 300,
      log: (m) => troubles.push(m),
    });
    try {
      const heard = recorder(good);
      const theirs = recorder(other);
      const refusedHeard = recorder(refused);
      await until(() => heard.resyncs() === 1 && theirs.resyncs() === 1, "connected with credentials");
      const change = emptyChanges();
      change.feeds.add(8);
      other.publish(change);
      await until(() => heard.changes().length === 1, "the change, over an authenticated connection");
      await until(() => troubles.length > 0, "the refusal logged");
      expect(troubles[0]).toBe("change bus cannot connect to NATS; retrying");
      expect(() => refused.publish(change)).not.toThrow();
      expect(refusedHeard.resyncs()).toBe(0);
    } finally {
      await Promise.all([good.close(), other.close(), refused.close()]);
      await nats.stop();
    }
  });
});

describe.runIf(NATS_UP).each(BACKENDS)("two instances on one %s store over NATS", (backend) => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const stores: Store[] = [];
  const apps: FastifyInstance[] = [];
  const base: string[] = [];
  beforeAll(async () => {
    db = await freshDatabase(backend);
    const bus = { url: NATS_URL, subject: uniqueSubject(`instances-${backend}`) };
    for (let i = 0; i < 2; i++) {
      const store = openStore(db.url, { bus });
      if (i === 0) await migrate(store);
      stores.push(store);
      const app = await buildApp({
        deps: createDeps(store),
        adminToken: ADMIN,
        limits: { perCredentialPerMinute: 0, authFailuresPerMinute: 0 },
      });
      await app.listen({ port: 0, host: "127.0.0.1" });
      apps.push(app);
      base.push(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`);
    }
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const store of stores) await store.close();
    await db.drop();
  });

  const call = async (i: number, method: string, path: string, key: string, body?: unknown) => {
    const r = await fetch(base[i] + path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body !== undefined && { "content-type": "application/json" }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : undefined };
  };

  it("pushes on one what the other ingested, and closes a stream there when its key is revoked", async () => {
    const user = (await call(0, "POST", "/admin/v1/users", ADMIN, { email: `n-${backend}@example.com` }))
      .json;
    const key = (await call(0, "POST", `/admin/v1/users/${user.id}/keys`, ADMIN, { name: "k" })).json;
    const stream = await openSse(`${base[1]}/api/v1/me/notifications/stream`, {
      authorization: `Bearer ${key.key}`,
    });
    try {
      await stream.waitFor((e) => e.some((x) => x.event === "unread-count"));
      const paid = await call(0, "POST", "/admin/v1/events", ADMIN, {
        id: `nats-${backend}`,
        type: "system.payment.received",
        user_id: user.id,
        data: { amount_cents: 100, balance_cents: 100 },
      });
      expect(paid.status).toBe(202);
      await stream.waitFor((e) => e.some((x) => x.event === "notification"), 2000);
      expect((await call(0, "POST", `/admin/v1/keys/${key.id}/revoke`, ADMIN)).status).toBe(200);
      // Heartbeats are 15 s apart: ending within 2 s is the bus's doing.
      await Promise.race([
        stream.ended,
        sleep(2000).then(() => Promise.reject(new Error("the revoked key's stream is still open"))),
      ]);
    } finally {
      stream.close();
    }
  });
});
