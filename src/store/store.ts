import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type Sqlite from "better-sqlite3";
import { Kysely, type LogConfig, PostgresDialect, sql, type Transaction } from "kysely";
import type { ChangeBus } from "../bus/change-bus.js";
import { localBus } from "../bus/local-bus.js";
import { natsBus } from "../bus/nats-bus.js";
import { type BusLog, pgBus } from "../bus/pg-bus.js";
import { DEFAULT_DATABASE_URL, DEFAULTS } from "../settings.js";
import { openTimedPool, type PoolStats } from "./pg-pool.js";
import type { Database } from "./schema.js";
import { BelfrySqliteDialect } from "./sqlite-dialect.js";
import { SqliteHandle } from "./sqlite-handle.js";
import { PATIENT_TIMEOUTS, type StoreTimeouts } from "./store-timeouts.js";

export type Dialect = "sqlite" | "postgres";

/** An open store: the query builder, which backend it is, and how to close it. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /**
   * Whether each statement is a round trip to a server (PostgreSQL), so that reading more in one
   * statement pays; on the embedded store a statement is a call into the process.
   */
  readonly roundTrips: boolean;
  /**
   * Whether the database spreads tables over several nodes (PostgreSQL with the citus
   * extension), where a statement that locks rows must stay on one shard. Asked once.
   */
  sharded(): Promise<boolean>;
  /** Where the data lives, without credentials (for the start-up line and logs). */
  readonly location: string;
  /**
   * Resolves when the store answers and would take a write: PostgreSQL is reachable and not a
   * read-only standby; the SQLite file takes a commit (its write lock is free, the file writable).
   */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Where committed changes are announced (see `transact`). */
  readonly bus: ChangeBus;
  /**
   * The embedded store's connection itself, for bulk writes inside a transaction (which already
   * holds it): synchronous prepared statements, without a query object per row. It can be
   * replaced between transactions (see SqliteHandle), so read it inside the transaction.
   */
  readonly sqlite?: Sqlite.Database;
  /** The PostgreSQL pool's connections (undefined on the embedded store). */
  poolStats?(): PoolStats;
}

/** A Kysely handle that may or may not be inside a transaction. */
export type Executor = Kysely<Database> | Transaction<Database>;

export interface StoreOptions {
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
  /**
   * How long a caller may be kept waiting before the store gives up (→ 503). Default
   * PATIENT_TIMEOUTS; serving processes pass SERVING_TIMEOUTS (see store-timeouts.ts).
   */
  timeouts?: StoreTimeouts;
  /** Told about errors of idle pooled connections, which would otherwise crash the process. */
  onPoolError?: (error: Error) => void;
  /** Told about trouble the change bus handles itself (reconnects, failed NOTIFYs or publishes). */
  onBusError?: BusLog;
  /**
   * Share changes over NATS (`BELFRY_BUS_URL`) instead of LISTEN/NOTIFY (PostgreSQL) or within
   * the process (SQLite). The connection opens on first use, so a store opened only to migrate
   * never connects.
   */
  bus?: { url: string; subject?: string };
  /** Kysely's query log hook (tests read the SQL actually run, e.g. to EXPLAIN it). */
  log?: LogConfig;
}

/**
 * Opens the store a `DATABASE_URL` names: unset or empty → the embedded SQLite file
 * `./data/belfry.db`; `file:<path>` → SQLite at that path; `postgres://…` → PostgreSQL.
 *
 * @example
 * const store = openStore("file:/tmp/belfry.db");
 * await migrate(store);
 */
export function openStore(url: string | undefined, options: StoreOptions = {}): Store {
  const target = url === undefined || url === "" ? DEFAULT_DATABASE_URL : url;
  if (target.startsWith("file:")) return openSqlite(target.slice("file:".length), options);
  if (/^postgres(ql)?:\/\//.test(target)) return openPostgres(target, options);
  throw new Error(`DATABASE_URL must be file:<path> or postgres://…, got "${target.split(":")[0]}:…"`);
}

/** The NATS bus when `bus` names one, else `otherwise`. */
function pickBus({ bus, onBusError }: StoreOptions, otherwise: () => ChangeBus): ChangeBus {
  if (bus === undefined) return otherwise();
  return natsBus(bus.url, { ...(bus.subject !== undefined && { subject: bus.subject }), log: onBusError });
}

function openSqlite(path: string, options: StoreOptions): Store {
  const { log, timeouts = PATIENT_TIMEOUTS } = options;
  if (path === "") throw new Error("DATABASE_URL file: needs a path, e.g. file:./data/belfry.db");
  const memory = path === ":memory:";
  if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
  const handle = new SqliteHandle(path, timeouts.lockWaitMs);
  const db = new Kysely<Database>({
    dialect: new BelfrySqliteDialect(handle, timeouts.lockWaitMs, log),
    ...(log && { log }),
  });
  const bus = pickBus(options, localBus);
  return {
    db,
    bus,
    get sqlite() {
      return handle.db;
    },
    dialect: "sqlite",
    roundTrips: false,
    sharded: async () => false,
    location: memory ? "sqlite::memory:" : `sqlite:${resolve(path)}`,
    // Reads can go on while another process holds the write lock or the file refuses writes, so
    // readiness is a real commit: the header's user_version (which Belfry does not use) rewritten
    // with its own value — through the lock, the WAL and fsync, and changing nothing.
    ping: () =>
      db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ user_version: number }>`pragma user_version`.execute(trx);
        await sql.raw(`pragma user_version = ${Number(rows[0]?.user_version ?? 0)}`).execute(trx);
      }),
    close: async () => {
      await bus.close();
      await db.destroy();
    },
  };
}

function openPostgres(url: string, options: StoreOptions): Store {
  const {
    poolSize = DEFAULTS.pgPoolSize,
    timeouts = PATIENT_TIMEOUTS,
    onPoolError,
    onBusError,
    log,
  } = options;
  const pool = openTimedPool(url, { max: poolSize, timeouts, ...(onPoolError && { onError: onPoolError }) });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), ...(log && { log }) });
  const bus = pickBus(options, () =>
    pgBus(url, pool, onBusError, {
      connectMs: timeouts.connectMs,
      ...(timeouts.silenceMs > 0 && { checkMs: timeouts.connectMs }),
    }),
  );
  const u = new URL(url);
  let sharded: Promise<boolean> | undefined;
  return {
    db,
    bus,
    dialect: "postgres",
    roundTrips: true,
    sharded: () => {
      if (!sharded) {
        const asked = sql<{ n: number }>`select count(*)::int as n from pg_extension where extname = 'citus'`
          .execute(db)
          .then(({ rows }) => (rows[0]?.n ?? 0) > 0);
        // A failed look (the store was away) is asked again next time.
        asked.catch(() => {
          sharded = undefined;
        });
        sharded = asked;
      }
      return sharded;
    },
    location: `postgres://${u.host}${u.pathname}`,
    poolStats: () => pool.stats(),
    // After a failover the address may lead to a demoted primary: it answers, but refuses writes.
    ping: async () => {
      const { rows } = await sql<{ standby: boolean }>`select pg_is_in_recovery() as standby`.execute(db);
      if (rows[0]?.standby) throw new Error("PostgreSQL is a read-only standby");
    },
    close: async () => {
      await bus.close();
      await db.destroy();
    },
  };
}

/** True when `error` is a unique-constraint violation on either backend. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
]);

/**
 * True when `error` says the store cannot be reached or used right now (→ 503, retry): the
 * server refused, reset, shut down, restarted, is starting, is a read-only standby, is out of
 * connections or disk; a connection or statement timed out (store-timeouts.ts); the SQLite file
 * is locked by another process, read-only, or failing I/O.
 */
export function isUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown; errors?: unknown } | null;
  // Node reports a connection that failed on every address (IPv6 and IPv4) as an AggregateError.
  if (Array.isArray(e?.errors) && e.errors.some(isUnavailable)) return true;
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : "";
  return (
    // connection exceptions, operator intervention (shutdown, restart, cancel), out of resources,
    // system I/O errors, and a write sent to a standby
    /^(08|57|53|58)/.test(code) ||
    code === "25006" ||
    UNREACHABLE.has(code) ||
    /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|PROTOCOL)/.test(code) ||
    /timeout exceeded when trying to connect|timeout expired|Connection terminated|Query read timeout|driver has already been destroyed|not queryable|connection has been discarded/i.test(
      message,
    )
  );
}
