import { BelfryError, ConnectionError } from "./errors.js";
import type { HttpCore } from "./http.js";
import type { IngestEvent, IngestItemResult } from "./types.js";

/** Events per `POST /admin/v1/events/batch`, the route's own limit. */
export const BATCH_SIZE = 1000;
/** Bytes per batch body, kept under the route's 8 MiB limit with room for the envelope. */
export const BATCH_BYTES = 8 * 1024 * 1024 - 64 * 1024;

/**
 * Thrown by `events.ingestMany` when a batch failed: says which events were committed (every
 * batch before it) and whether the failed batch's fate is known. Ingest is idempotent by event
 * id, so sending all the events again is always safe.
 *
 * @example
 * try {
 *   await admin.events.ingestMany(events);
 * } catch (error) {
 *   if (error instanceof IngestManyError) await admin.events.ingestMany(events.slice(error.committedCount));
 * }
 */
export class IngestManyError extends BelfryError {
  /** The per-item results of the committed events, in input order (`committedCount` of them). */
  readonly committed: IngestItemResult[];
  /** Events `[0, committedCount)` were committed. */
  readonly committedCount: number;
  /** The failed batch: events `[failedFrom, failedTo)`; nothing after it was sent. */
  readonly failedFrom: number;
  readonly failedTo: number;
  /** True when the failed batch got no answer (it may or may not have been committed). */
  readonly uncertain: boolean;

  constructor(committed: IngestItemResult[], failedTo: number, cause: BelfryError) {
    const from = committed.length;
    const uncertain = cause instanceof ConnectionError;
    const done = from === 0 ? "No events were committed" : `events[0..${from - 1}] were committed`;
    const fate = uncertain ? "may or may not have been committed (no answer arrived)" : "was not committed";
    super({
      status: cause.status,
      type: cause.type,
      message:
        `${done}; the batch of events[${from}..${failedTo - 1}] ${fate}: ${cause.message} ` +
        "Nothing after it was sent. Sending the events again is safe (ingest is idempotent by id).",
      requestId: cause.requestId,
      retryAfter: cause.retryAfter,
      cause,
    });
    this.committed = committed;
    this.committedCount = from;
    this.failedFrom = from;
    this.failedTo = failedTo;
    this.uncertain = uncertain;
  }
}

/**
 * Ingests any number of events as consecutive batches (1,000 events or ~8 MiB each, whichever
 * comes first), in order, and returns every item's result in input order.
 */
export async function ingestMany(
  core: HttpCore,
  events: readonly IngestEvent[],
  signal?: AbortSignal,
): Promise<IngestItemResult[]> {
  const results: IngestItemResult[] = [];
  const encoder = new TextEncoder();
  let start = 0;
  while (start < events.length) {
    let end = start;
    let bytes = 16; // {"events":[…]}
    while (end < events.length && end - start < BATCH_SIZE) {
      const size = encoder.encode(JSON.stringify(events[end])).length + 1;
      if (end > start && bytes + size > BATCH_BYTES) break;
      bytes += size;
      end++;
    }
    try {
      const { data } = await core.request<{ results: IngestItemResult[] }>({
        method: "POST",
        path: "/admin/v1/events/batch",
        body: { events: events.slice(start, end) },
        retry: "safe", // idempotent by event id: a repeat answers `duplicate: true`
        signal,
      });
      results.push(...data.results);
    } catch (error) {
      if (error instanceof BelfryError) throw new IngestManyError(results, end, error);
      throw error;
    }
    start = end;
  }
  return results;
}
