/**
 * How long the store may keep a caller waiting before it gives up with an "unavailable" error
 * (which the HTTP layer answers 503 with `Retry-After`).
 */
export interface StoreTimeouts {
  /** PostgreSQL: to open a connection, and to wait for one of a full pool. */
  readonly connectMs: number;
  /** PostgreSQL: for the answer to one statement, measured on this side; 0 = no limit. */
  readonly queryMs: number;
  /** SQLite: for the file's write lock while another connection or process holds it. */
  readonly lockWaitMs: number;
}

/**
 * What serving processes (`belfry serve`, `belfry worker`) use. They promise that while the store
 * cannot be reached a request gets its 503 within 2 s, never hangs, and that they recover within
 * 5 s of the store coming back. These bounds keep both promises and leave normal traffic alone:
 *
 * - `connectMs` 1000: a PostgreSQL connection opens in a few milliseconds on a LAN, and pg's pool
 *   applies the same bound to a request queued for a connection of a full pool, where a Belfry
 *   transaction holds one for milliseconds. A refused or reset connection (a restart) fails at
 *   once anyway; the bound is for the silent cases — an address that drops packets during a
 *   failover, a pool whose connections all wait on a dead server. Waiting a whole second means
 *   the store is down or saturated, and telling the client to come back is the right answer.
 * - `queryMs` 1500: Belfry's statements are indexed and take milliseconds. One unanswered for
 *   1.5 s is almost always on a connection whose server went silent (a failover, a partition),
 *   where TCP alone would wait some fifteen minutes; that connection is destroyed, so the
 *   rollback that follows fails at once and the request gets its 503 — the worst case is one
 *   connect (1 s) or one silent statement (1.5 s), inside 2 s.
 * - `lockWaitMs` 1000: on the embedded store another process (the CLI, a backup) holds the write
 *   lock for milliseconds per transaction; a write waits for it, asynchronously, up to 1 s. A lock
 *   held longer makes writes fail fast (see sqlite-dialect.ts) until one gets through.
 *
 * Recovery needs no timer: a new request opens a new connection as soon as the server accepts
 * one (the change bus retries every second at most, see pg-bus.ts).
 */
export const SERVING_TIMEOUTS: StoreTimeouts = { connectMs: 1000, queryMs: 1500, lockWaitMs: 1000 };

/**
 * For work that may legitimately wait: migrations (which wait for another instance's), the CLI
 * (beside a running server), tests and benchmarks that load large data sets.
 */
export const PATIENT_TIMEOUTS: StoreTimeouts = { connectMs: 5000, queryMs: 0, lockWaitMs: 5000 };
