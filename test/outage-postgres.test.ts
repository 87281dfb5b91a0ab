import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, it } from "vitest";
import { expectAcknowledgedDeliveryKept, expectOutagePromises } from "./support/outage-promises.js";
import { type OutageRig, outageEnv, startOutageRig } from "./support/outage-rig.js";
import { createPgDatabase } from "./support/pg-database.js";
import {
  type PrivatePostgres,
  privatePostgresAvailable,
  startPrivatePostgres,
} from "./support/private-postgres.js";
import { type ServerProcess, spawnServer } from "./support/process.js";
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
