import type { Transaction } from "kysely";
import { bulkColumns, insertMany } from "../store/insert-many.js";
import type { Database } from "../store/schema.js";
import type { Tx } from "../store/transaction.js";

/** A producer's event id and the fingerprint of the content first posted with it. */
export interface EventKey {
  idempotency_key: string;
  fingerprint: string;
}

const COLUMNS = bulkColumns<EventKey>({ text: ["idempotency_key", "fingerprint"] });
/** Keys per statement, far below both backends' bound-parameter limits. */
const CHUNK = 500;

/**
 * Takes each producer id not yet taken (a repeat in `keys` keeps the first), in the caller's
 * transaction, and returns the ones this call took. With concurrent transactions taking one id,
 * PostgreSQL makes the later ones wait for the first to commit, then skip it; SQLite runs write
 * transactions one at a time. On Citus each key goes to the node its hash places it on, so ids
 * stay unique across the cluster.
 */
export async function claimEventKeys(tx: Tx, keys: readonly EventKey[]): Promise<Set<string>> {
  const taken = await insertMany<EventKey, { idempotency_key: string }>(tx, {
    table: "event_keys",
    columns: COLUMNS,
    rows: keys,
    skipConflictsOn: "idempotency_key",
    returning: ["idempotency_key"],
  });
  return new Set(taken.map((r) => r.idempotency_key));
}

/** The fingerprints the given producer ids were first posted with, by id. */
export async function fingerprintsOf(
  trx: Transaction<Database>,
  ids: readonly string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < ids.length; i += CHUNK) {
    const rows = await trx
      .selectFrom("event_keys")
      .select(["idempotency_key", "fingerprint"])
      .where("idempotency_key", "in", ids.slice(i, i + CHUNK))
      .execute();
    for (const r of rows) out.set(r.idempotency_key, r.fingerprint);
  }
  return out;
}

/** Frees producer ids whose events retention deleted: a producer re-posting one gets a new event. */
export async function forgetEventKeys(trx: Transaction<Database>, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await trx.deleteFrom("event_keys").where("idempotency_key", "in", ids).execute();
}
