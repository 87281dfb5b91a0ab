import type { Kysely } from "kysely";

/**
 * Stream tickets become reusable until they expire (so EventSource's own reconnects work), with
 * one open stream per ticket: each open bumps `generation`, and a stream whose generation is no
 * longer the ticket's closes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("stream_tickets")
    .addColumn("generation", "bigint", (c) => c.notNull().defaultTo(0))
    .execute();
}
