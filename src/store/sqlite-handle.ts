import Sqlite from "better-sqlite3";

/** Prepared statements kept per connection, by SQL text (Kysely prepares every query anew). */
const CACHE_SIZE = 500;
/** A connection asked to reopen is reopened at most this often. */
const REOPEN_EVERY_MS = 1000;

/**
 * The embedded store's one connection, which it replaces when the file may have changed under it.
 *
 * A connection opened while the file could not be written (a read-only mount or file, wrong
 * permissions after a restore) is silently read-only for its whole life: every write fails with
 * SQLITE_READONLY even once the file is writable again. So after a write fails with READONLY,
 * IOERR or CANTOPEN the connection is reopened — between transactions, at most once a second —
 * and a fresh one sees the file as it is now. An in-memory database is never reopened.
 */
export class SqliteHandle {
  readonly #path: string;
  readonly #reopenable: boolean;
  #db: Sqlite.Database;
  #statements = new Map<string, Sqlite.Statement>();
  /** Each reader's column names, once {@link allRows} has switched it to reading arrays. */
  #columns = new WeakMap<Sqlite.Statement, string[]>();
  #reopenDue = false;
  #openedAt = performance.now();

  /** Opens `path`; `openWaitMs` bounds waiting for a lock while the connection is set up. */
  constructor(path: string, openWaitMs: number) {
    this.#path = path;
    this.#reopenable = path !== ":memory:" && path !== "";
    this.#db = open(path, openWaitMs);
  }

  /** The connection itself (replaced by a reopen; never keep it across transactions). */
  get db(): Sqlite.Database {
    return this.#db;
  }

  prepare(source: string): Sqlite.Statement {
    let statement = this.#statements.get(source);
    if (statement === undefined) {
      statement = this.#db.prepare(source);
      if (this.#statements.size >= CACHE_SIZE)
        this.#statements.delete(this.#statements.keys().next().value as string);
      this.#statements.set(source, statement);
    }
    return statement;
  }

  /**
   * The rows of a reader (a select, or a statement with RETURNING) as objects keyed by column
   * name, as `statement.all` would give them. SQLite's driver makes each row object through V8's
   * API, which costs about as much as running the statement: a 50-row page took 100 µs that way
   * against 50 µs read as arrays and made into objects here.
   */
  allRows(statement: Sqlite.Statement, parameters: unknown[]): Record<string, unknown>[] {
    let columns = this.#columns.get(statement);
    if (columns === undefined) {
      columns = statement.columns().map((column) => column.name);
      statement.raw(true);
      this.#columns.set(statement, columns);
    }
    const rows = statement.all(parameters) as unknown[][];
    // A `select *` re-prepared by SQLite after a schema change can have other columns.
    if (rows.length > 0 && (rows[0] as unknown[]).length !== columns.length) {
      columns = statement.columns().map((column) => column.name);
      this.#columns.set(statement, columns);
    }
    const objects: Record<string, unknown>[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as unknown[];
      const object: Record<string, unknown> = {};
      for (let c = 0; c < columns.length; c++) object[columns[c] as string] = row[c];
      objects[i] = object;
    }
    return objects;
  }

  /** Takes note of a failed statement: some failures call for a fresh connection. */
  failed(error: unknown): void {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === "string" && /^SQLITE_(READONLY|IOERR|CANTOPEN)/.test(code)) this.#reopenDue = true;
  }

  /** Reopens the file if a failure asked for it and no transaction is open. */
  reopenIfDue(): void {
    if (!this.#reopenDue || !this.#reopenable || this.#db.inTransaction) return;
    if (performance.now() - this.#openedAt < REOPEN_EVERY_MS) return;
    this.#openedAt = performance.now();
    let fresh: Sqlite.Database;
    try {
      // No waiting here: a locked file simply means trying again later.
      fresh = open(this.#path, 0);
    } catch {
      return; // still due
    }
    this.#reopenDue = false;
    const stale = this.#db;
    this.#db = fresh;
    this.#statements = new Map();
    try {
      stale.close();
    } catch {}
  }

  close(): void {
    this.#db.close();
  }
}

function open(path: string, openWaitMs: number): Sqlite.Database {
  const database = new Sqlite(path, { timeout: openWaitMs });
  try {
    configure(database);
  } catch (error) {
    database.close();
    throw error;
  }
  return database;
}

function configure(database: Sqlite.Database): void {
  // WAL lets readers run beside the writer; synchronous=FULL makes every commit durable before
  // we answer 2xx (NORMAL could lose the last commits on power loss).
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = FULL");
  database.pragma("foreign_keys = ON");
  // SQLite's own busy handler would sleep the whole process (better-sqlite3 runs on the event
  // loop): a lock held by another process is waited for asynchronously instead (sqlite-dialect.ts).
  database.pragma("busy_timeout = 0");
  // 12 MiB of page cache (the default is 2 MiB): more index pages stay in memory under bulk ingest.
  // Under the ingest benchmark 32 MiB gave +27 % events/s over 16 but pushed peak RSS past 150 MB;
  // 16 MiB peaked at 146-153 MB, 12 MiB at 143, 8 MiB at 134-139 MB for 12 % fewer events/s.
  // Pages not cached here are read from the kernel's file cache, a copy away.
  database.pragma("cache_size = -12288");
}
