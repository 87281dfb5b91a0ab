import type { Deps } from "../deps.js";
import { type EventCursor, pruneEvents } from "../events/prune-events.js";
import { pruneNotifications } from "../feed/prune-notifications.js";
import { transact } from "../store/transaction.js";
import { pruneDeliveries } from "../webhooks/outbox.js";

/** What one pass deleted, per table. */
export interface PruneResult {
  notifications: number;
  webhook_deliveries: number;
  webhook_attempts: number;
  events: number;
}

/** How a pass works through the store. */
export interface PruneOptions {
  /** Rows per transaction: short transactions, so ingest never waits long behind one. */
  batchSize?: number;
  /** Stops the pass between batches (the server is shutting down). */
  signal?: AbortSignal;
}

/** Rows per transaction by default: a few milliseconds of work on either store. */
export const PRUNE_BATCH = 1000;

/**
 * One retention pass: deletes everything older than `days` days, in batches of `batchSize` rows,
 * each batch its own transaction through the owning module's delete operation — feed rows
 * first, then finished deliveries with their attempts, then the events nothing refers to any
 * longer (the foreign keys want that order). Between batches it yields to the event loop, so
 * requests queued behind a batch run before the next one starts.
 */
export async function prunePass(deps: Deps, days: number, options: PruneOptions = {}): Promise<PruneResult> {
  const { batchSize = PRUNE_BATCH, signal } = options;
  const cutoff = deps.clock() - days * 86_400;
  const result: PruneResult = { notifications: 0, webhook_deliveries: 0, webhook_attempts: 0, events: 0 };
  const count = (table: keyof PruneResult, n: number) => {
    result[table] += n;
    if (n > 0) deps.metrics.retentionDeleted.inc({ table }, n);
  };
  const batches = async (step: () => Promise<boolean>) => {
    while (!signal?.aborted && (await step())) await yieldToRequests();
  };

  await batches(async () => {
    const n = await transact(deps.store, (tx) => pruneNotifications(tx, cutoff, batchSize));
    count("notifications", n);
    return n > 0;
  });
  await batches(async () => {
    const n = await transact(deps.store, (tx) => pruneDeliveries(tx, cutoff, batchSize));
    count("webhook_deliveries", n.deliveries);
    count("webhook_attempts", n.attempts);
    return n.deliveries > 0;
  });
  let cursor: EventCursor | undefined;
  await batches(async () => {
    const n = await transact(deps.store, (tx) => pruneEvents(tx, cutoff, batchSize, cursor));
    count("events", n.deleted);
    cursor = n.next;
    return cursor !== undefined;
  });
  return result;
}

/** Lets whatever waits on the event loop (requests, their transactions) go first. */
const yieldToRequests = () => new Promise<void>((resolve) => setImmediate(resolve));
