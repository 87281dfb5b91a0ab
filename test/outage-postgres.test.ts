import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectAcknowledgedDeliveryKept, expectOutagePromises } from "./support/outage-promises.js";
import { type OutageRig, outageEnv, request, startOutageRig } from "./support/outage-rig.js";
import { createPgDatabase } from "./support/pg-database.js";
import {
  type PrivatePostgres,
  privatePostgresAvailable,
  startPrivatePostgres,
} from "./support/private-postgres.js";
import { type ServerProcess, spawnServer } from "./support/process.js";
import { startReceiver, waitFor } from "./support/receiver.js";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.js";

const ADMIN = "outage_pg_admin_token_0123456789abcdef";

if (!privatePostgresAvailable && process.env.CI === "true")
  throw new Error("The PostgreSQL outage suite needs PostgreSQL's server binaries (BELFRY_TEST_PG_BIN).");

/**
 * The store's worst day on PostgreSQL, on a cluster of this suite's own (never the shared one):
 * it is stopped — `pg_ctl stop -m fast`, then `-m immediate` — and started again, and the network
 * to it goes silent, while a child-process server takes ingests and reads, holds a live stream
 * open and delivers webhooks to a local receiver.
 */
describe.runIf(privatePostgresAvailable)("a PostgreSQL outage", () => {
  let cluster: PrivatePostgres;
  const servers: ServerProcess[] = [];
  const rigs: OutageRig[] = [];
  let proxy: TcpProxy | undefined;
  beforeAll(async () => {
    cluster = await startPrivatePostgres();
  });
  afterAll(async () => {
    for (const rig of rigs) await rig.close().catch(() => {});
    for (const server of servers) await server.kill9().catch(() => {});
    await proxy?.close();
    await cluster?.destroy();
  });

  const serve = async (database: string, port: number) => {
    await createPgDatabase(cluster.url(), database);
    const url = new URL(cluster.url(database));
    url.port = String(port);
    const server = await spawnServer({ ...outageEnv(ADMIN), DATABASE_URL: url.toString() });
    servers.push(server);
    const rig = await startOutageRig(server, ADMIN, database);
    rigs.push(rig);
    return rig;
  };

  it("stopped and started under load: 503 with Retry-After within 2 s, back within 5 s, nothing lost", async () => {
    const rig = await serve("belfry_restarts", Number(new URL(cluster.url()).port));
    await sleep(1500);
    await rig.outage(
      () => cluster.stop("fast"),
      () => cluster.start(),
    );
    await sleep(1500);
    await rig.outage(
      () => cluster.stop("immediate"),
      () => cluster.start(),
    );
    await sleep(1000);
    await rig.stopLoad();
    await rig.ingestUntilAcknowledged("restarts-after");
    await expectOutagePromises(rig, { readsServed: false });
  }, 120_000);

  it("a delivery acknowledged while it is down is recorded once it is back, and not sent again", async () => {
    await createPgDatabase(cluster.url(), "belfry_kept");
    const server = await spawnServer({ ...outageEnv(ADMIN), DATABASE_URL: cluster.url("belfry_kept") });
    servers.push(server);
    await expectAcknowledgedDeliveryKept(
      server,
      ADMIN,
      () => cluster.stop("fast"),
      () => cluster.start(),
    );
  }, 60_000);

  it("a claim that committed while its answer was lost is released when the store answers, not held for its lease", async () => {
    const name = "belfry_lost_claim";
    await createPgDatabase(cluster.url(), name);
    const side = new pg.Client({ connectionString: cluster.url(name) });
    await side.connect();
    const receiver = await startReceiver();
    try {
      // Commits wait for a standby only where a transaction asks (synchronous_commit = on), and
      // the standby named never comes: such a commit is done here, and never answered.
      await side.query("set synchronous_commit = local");
      await side.query(`alter database ${name} set synchronous_commit = local`);
      await side.query("alter system set synchronous_standby_names = 'nobody'");
      await side.query("select pg_reload_conf()");
      // A lease lasts the attempt timeout and 30 s more: 90 s here, far past this test's waits.
      const server = await spawnServer({
        ...outageEnv(ADMIN),
        DATABASE_URL: cluster.url(name),
        BELFRY_WEBHOOK_TIMEOUT_MS: "60000",
      });
      servers.push(server);
      const call = async (method: string, path: string, key: string, body?: unknown) => {
        const r = await request(server, method, path, key, body);
        expect(r.status).toBeLessThan(300);
        return r.json;
      };
      const user = await call("POST", "/admin/v1/users", ADMIN, { email: "lost-claim@example.com" });
      const key = (await call("POST", `/admin/v1/users/${user.id}/keys`, ADMIN, { name: "k" })).key;
      await call("POST", "/api/v1/me/webhooks", key, { url: `${receiver.url}/lost` });
      // The next claim's commit (the lease) asks to wait for the standby.
      await side.query("create table hold (armed boolean not null)");
      await side.query("insert into hold values (true)");
      await side.query(`create function hold_lease() returns trigger language plpgsql as $$
        begin
          if (select armed from hold) then perform set_config('synchronous_commit', 'on', true); end if;
          return new;
        end $$`);
      await side.query(`create trigger hold_lease before update on webhook_deliveries for each row
        when (new.lease_token is not null and new.lease_token is distinct from old.lease_token)
        execute function hold_lease()`);
      await call("POST", "/admin/v1/events", ADMIN, {
        id: "lost-claim-1",
        type: "system.payment.received",
        user_id: user.id,
        data: { amount_cents: 1, balance_cents: 1 },
      });
      const pid = await waitFor(
        async () =>
          (await side.query("select pid from pg_stat_activity where wait_event = 'SyncRep'")).rows[0]?.pid,
        15_000,
        "the lease's commit to wait",
      );
      // The lease is committed; its claimer sees the connection die and never gets the rows.
      await side.query("update hold set armed = false");
      await side.query("select pg_terminate_backend($1)", [pid]);

      await waitFor(
        () => receiver.received.length > 0,
        20_000,
        "the delivery, long before the lease runs out",
      );
      expect(receiver.received.map((r) => r.path)).toEqual([new URL(`${receiver.url}/lost`).pathname]);
    } finally {
      await side.query("alter system reset synchronous_standby_names");
      await side.query("select pg_reload_conf()");
      await side.end();
      await receiver.close();
    }
  }, 60_000);

  it("gone silent, as a failed-over host is (nothing refused, nothing answered): the same promises", async () => {
    proxy = await startTcpProxy(Number(new URL(cluster.url()).port));
    const silent = proxy;
    const rig = await serve("belfry_silence", proxy.port);
    await sleep(1500);
    await rig.outage(
      async () => silent.freeze(),
      async () => silent.thaw(),
      3000,
    );
    await sleep(1000);
    await rig.stopLoad();
    await rig.ingestUntilAcknowledged("silence-after");
    await expectOutagePromises(rig, { readsServed: false });
  }, 120_000);
});
