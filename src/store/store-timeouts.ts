/**
 * How long the store may keep a caller waiting before it gives up with an "unavailable" error
 * (which the HTTP layer answers 503 with `Retry-After`).
 */
export interface StoreTimeouts {
  /** PostgreSQL: to open a connection (TCP, startup, authentication). */
  readonly connectMs: number;
  /**
   * PostgreSQL: a wait — for a statement's answer, or for a connection of a full pool — is given
   * up once the server has said nothing at all for this long and does not answer a fresh
   * connection within `probeMs` either; 0 = never (see pg-hearing.ts).
   */
  readonly silenceMs: number;
  readonly probeMs: number;
  /** PostgreSQL: the longest such a wait may last even while the server answers other requests. */
  readonly maxWaitMs: number;
  /** SQLite: for the file's write lock while another connection or process holds it. */
  readonly lockWaitMs: number;
}

/**
 * What serving processes (`belfry serve`, `belfry worker`) use. They promise that while the store
 * cannot be reached a request gets its 503 within 2 s, never hangs, and that they recover within
 * 5 s of the store coming back; these bounds keep both promises and leave normal load alone:
 *
 * - `connectMs` 1500: a PostgreSQL connection opens in milliseconds on a LAN. A refused or reset
 *   one (a restart) fails at once anyway; the bound is for an address that drops packets, such
 *   as a host that died in a failover, with room for a machine that is briefly starved.
 * - `silenceMs` 750 + `probeMs` 500: a statement, or a request queued for a connection, is
 *   abandoned when the server has answered nothing for 750 ms and a fresh connection cannot get
 *   `select 1` answered within 500 ms more — at about 1.3 s. Waiting on a server that does
 *   answer — rows locked by other writers, a pool busy under load, a commit behind a slow disk —
 *   is normal load and goes on (up to `maxWaitMs`); only a server that is gone (a failover, a
 *   partition, where TCP alone would wait some fifteen minutes) is given up on. So the worst case
 *   stays inside the 2 s promise, and a busy store does not turn into spurious 503s.
 * - `maxWaitMs` 10000: even a store that answers is overloaded if one wait lasts this long.
 * - `lockWaitMs` 1000: on the embedded store another process (the CLI, a backup) holds the write
 *   lock for milliseconds per transaction; a write waits for it, asynchronously, up to 1 s. A lock
 *   held longer makes writes fail fast (see sqlite-dialect.ts) until one gets through.
 *
 * Recovery needs no timer: a new request opens a new connection as soon as the server accepts
 * one (the change bus retries every second at most, see pg-bus.ts).
 */
export const SERVING_TIMEOUTS: StoreTimeouts = {
  connectMs: 1500,
  silenceMs: 750,
  probeMs: 500,
  maxWaitMs: 10_000,
  lockWaitMs: 1000,
};

/**
 * For work that may legitimately wait: migrations (which wait for another instance's), the CLI
 * (beside a running server), tests and benchmarks that load large data sets.
 */
export const PATIENT_TIMEOUTS: StoreTimeouts = {
  connectMs: 5000,
  silenceMs: 0,
  probeMs: 0,
  maxWaitMs: 5000,
  lockWaitMs: 5000,
};
