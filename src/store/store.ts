import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Sqlite from "better-sqlite3";
import { Kysely, type LogConfig, PostgresDialect, sql, type Transaction } from "kysely";
import pg from "pg";
import { type ChangeBus, localBus } from "../stream/bus.js";
import { type BusLog, pgBus } from "../stream/pg-bus.js";
import type { Database } from "./schema.js";
import { BelfrySqliteDialect } from "./sqlite-dialect.js";

export type Dialect = "sqlite" | "postgres";

/** An open store: the query builder, which backend it is, and how to close it. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Where the data lives, without credentials (for the start-up line and logs). */
  readonly location: string;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Where committed changes are announced (see `transact`). */
  readonly bus: ChangeBus;
  /**
   * The embedded store's connection itself, for bulk writes inside a transaction (which already
   * holds it): synchronous prepared statements, without a query object per row.
   */
  readonly sqlite?: Sqlite.Database;
}

/** A Kysely handle that may or may not be inside a transaction. */
export type Executor = Kysely<Database> | Transaction<Database>;

export interface StoreOptions {
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
  /** Told about errors of idle pooled connections, which would otherwise crash the process. */
  onPoolError?: (error: Error) => void;
  /** Told about trouble the PostgreSQL change bus handles itself (reconnects, failed NOTIFYs). */
  onBusError?: BusLog;
  /** Kysely's query log hook (tests read the SQL actually run, e.g. to EXPLAIN it). */
  log?: LogConfig;
}

export const DEFAULT_DATABASE_URL = "file:./data/belfry.db";

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

function openSqlite(path: string, { log }: StoreOptions): Store {
  if (path === "") throw new Error("DATABASE_URL file: needs a path, e.g. file:./data/belfry.db");
  const memory = path === ":memory:";
  if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
  const database = new Sqlite(path);
  // WAL lets readers run beside the writer; synchronous=FULL makes every commit durable before
  // we answer 2xx (NORMAL could lose the last commits on power loss).
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = FULL");
  database.pragma("foreign_keys = ON");
  database.pragma("busy_timeout = 5000");
  // 16 MiB of page cache (the default is 2 MiB): more index pages stay in memory under bulk ingest
  // (32 MiB gave +27 % events/s but pushed peak RSS past 150 MB under load).
  database.pragma("cache_size = -16384");
  const db = new Kysely<Database>({ dialect: new BelfrySqliteDialect(database), ...(log && { log }) });
  const bus = localBus();
  return {
    db,
    bus,
    sqlite: database,
    dialect: "sqlite",
    location: memory ? "sqlite::memory:" : `sqlite:${resolve(path)}`,
    ping: async () => void (await sql`select 1`.execute(db)),
    close: async () => {
      await bus.close();
      await db.destroy();
    },
  };
}

// int8 (ids, counts, times) as JS numbers: every value Belfry stores is far below 2^53.
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function openPostgres(url: string, { poolSize = 10, onPoolError, onBusError, log }: StoreOptions): Store {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types,
    connectionTimeoutMillis: 5000,
    application_name: "belfry",
  });
  // An idle client's error reaches the pool's "error" event; a checked-out client's reaches only
  // the client itself, and an "error" event nobody listens to kills the process. So every client
  // gets a listener of its own: the query in flight fails (→ 503) and the pool drops the client.
  pool.on("error", (error) => onPoolError?.(error));
  pool.on("connect", (client) => client.on("error", (error) => onPoolError?.(error)));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), ...(log && { log }) });
  const bus = pgBus(url, pool, onBusError);
  const u = new URL(url);
  return {
    db,
    bus,
    dialect: "postgres",
    location: `postgres://${u.host}${u.pathname}`,
    ping: async () => void (await sql`select 1`.execute(db)),
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

/** True when `error` says the store cannot be reached or used right now (→ 503, retry). */
export function isUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : "";
  return (
    /^(08|57P|53)/.test(code) || // connection exceptions, operator shutdown, insufficient resources
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN"].includes(code) ||
    /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN)/.test(code) ||
    /timeout exceeded when trying to connect|Connection terminated|driver has already been destroyed|not queryable|connection has been discarded/i.test(
      message,
    )
  );
}
