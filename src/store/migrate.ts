import { type Kysely, type Migration, Migrator } from "kysely";
import { distributeForCitus } from "./distribute-citus.js";
import * as initial from "./migrations/0001-initial.js";
import * as webhooks from "./migrations/0002-webhooks.js";
import * as readMarks from "./migrations/0003-read-marks.js";
import * as streamTickets from "./migrations/0004-stream-tickets.js";
import * as sessions from "./migrations/0005-sessions.js";
import * as ticketGenerations from "./migrations/0006-stream-ticket-generations.js";
import * as retention from "./migrations/0007-retention.js";
import * as citusReady from "./migrations/0008-citus-ready.js";
import * as endpointClaims from "./migrations/0009-endpoint-claims.js";
import * as eventKeys from "./migrations/0010-event-keys.js";
import type { Store } from "./store.js";

const migrations: Record<string, { up(db: Kysely<unknown>, dialect: Store["dialect"]): Promise<void> }> = {
  "0001-initial": initial,
  "0002-webhooks": webhooks,
  "0003-read-marks": readMarks,
  "0004-stream-tickets": streamTickets,
  "0005-sessions": sessions,
  "0006-stream-ticket-generations": ticketGenerations,
  "0007-retention": retention,
  "0008-citus-ready": citusReady,
  "0009-endpoint-claims": endpointClaims,
  "0010-event-keys": eventKeys,
};

/**
 * Brings the schema up to date. Safe when several instances start at once: Kysely's migrator runs
 * every pending migration in one transaction, under an advisory lock on PostgreSQL and, on SQLite,
 * as a `BEGIN IMMEDIATE` transaction (see sqlite-dialect.ts).
 *
 * On a database with the citus extension it then distributes the schema (distribute-citus.ts).
 *
 * @returns the names of the migrations this call applied, and a line per table it distributed.
 */
export async function migrate(store: Store): Promise<string[]> {
  const provider = {
    getMigrations: async () =>
      Object.fromEntries(
        Object.entries(migrations).map(([name, m]): [string, Migration] => [
          name,
          { up: (db) => m.up(db, store.dialect) },
        ]),
      ),
  };
  const { error, results = [] } = await new Migrator({ db: store.db, provider }).migrateToLatest();
  if (error) throw error;
  const applied = results.filter((r) => r.status === "Success").map((r) => r.migrationName);
  // On a Citus coordinator, the (idempotent) distribution follows: nothing to run by hand.
  return [...applied, ...(await distributeForCitus(store))];
}
