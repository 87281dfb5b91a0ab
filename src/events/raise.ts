import type { Directory, EventType } from "../catalog/catalog.js";
import type { Tx } from "../store/transaction.js";
import type { EventInput } from "./event-row.js";
import { insertEvent } from "./event-row.js";
import { fanOut } from "./fan-out.js";

export interface Raised {
  eventId: number;
  /** Feed rows created. */
  notifications: number;
}

/**
 * Records an event and fans it out, inside the caller's transaction: the single path by which
 * an event raised by a domain operation enters Belfry (ingest records its events in bulk and
 * fans them out the same way). `data` is checked against the type's schema at compile time;
 * `directory` answers the recipient rules' questions about orgs (see the catalog).
 *
 * @example
 * await raiseEvent(tx, directory, { type: "admin.user.update", userId: 7, occurredAt: now,
 *   createdAt: now, data: { user_id: 7, email: "ada@example.com", name: "Ada", changed: ["name"] } });
 */
export async function raiseEvent<T extends EventType>(
  tx: Tx,
  directory: Directory,
  input: EventInput<T>,
): Promise<Raised> {
  const { id } = await insertEvent(tx.trx, input).returning("id").executeTakeFirstOrThrow();
  const [notifications = 0] = await fanOut(tx, directory, [{ id, input: input as EventInput }]);
  return { eventId: id, notifications };
}
