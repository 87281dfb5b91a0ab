import { setTimeout as sleep } from "node:timers/promises";
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type LogConfig,
  type QueryResult,
  SqliteAdapter,
  SqliteDialect,
} from "kysely";
import type { SqliteHandle } from "./sqlite-handle.js";

/**
 * Kysely's SQLite dialect, changed where a second process on the file matters:
 * - transactions start with `BEGIN IMMEDIATE`, taking the write lock up front, so a transaction
 *   that reads then writes cannot fail half-way with SQLITE_BUSY when another process (the CLI)
 *   writes the same file;
 * - a lock another process holds is waited for asynchronously, up to `lockWaitMs` (SQLite's own
 *   busy handler would sleep the whole event loop), and once a wait has run out, statements that
 *   meet the lock fail at once until a write gets through: a long-held lock then costs each
 *   request a fast 503 instead of a queue of requests each waiting in turn (see `LockWait`);
 * - a failure that calls for a fresh connection (a read-only or vanished file) gets one, between
 *   transactions (see SqliteHandle);
 * - a rollback after SQLite already rolled back (a failed COMMIT does that) is skipped, so the
 *   caller sees the original error, not "no transaction is active";
 * - prepared statements are cached by SQL text;
 * - a prepared read finding the connection free runs at once, without the queue (`readNow`);
 * - migrations run in one transaction (SQLite's DDL is transactional; Kysely assumes not), so
 *   with `BEGIN IMMEDIATE` processes that migrate one file at once take turns.
 */
export class BelfrySqliteDialect extends SqliteDialect {
  readonly #handle: SqliteHandle;
  readonly #lockWaitMs: number;
  readonly #log: LogConfig | undefined;
  #driver: HandleDriver | undefined;

  /** `log`: the Kysely log hook, told about reads run by {@link readNow} too. */
  constructor(handle: SqliteHandle, lockWaitMs: number, log?: LogConfig) {
    super({ database: { close: () => handle.close(), prepare: (sql) => handle.prepare(sql) } });
    this.#handle = handle;
    this.#lockWaitMs = lockWaitMs;
    this.#log = log;
  }

  override createDriver(): Driver {
    this.#driver = new HandleDriver(this.#handle, new LockWait(this.#lockWaitMs));
    return this.#driver;
  }

  override createAdapter(): DialectAdapter {
    const adapter = new TransactionalDdlSqliteAdapter();
    const driver = this.#driver;
    const log = this.#log;
    if (driver) directReaders.set(adapter, (query) => driver.readNow(query, log));
    return adapter;
  }
}

const directReaders = new WeakMap<DialectAdapter, (query: CompiledQuery) => unknown[] | undefined>();

/**
 * Runs a read at once, synchronously, when the embedded store's one connection is free (no
 * transaction or statement of this process in progress), and gives its rows: what the queued
 * read would have answered, without the queue and its promises. Undefined when the store is not
 * the embedded one, the connection is busy, or the read fails: then the caller takes the usual
 * path, which waits for locks and reopens the file as it should.
 */
export function readNow<R>(adapter: DialectAdapter, query: CompiledQuery): R[] | undefined {
  return directReaders.get(adapter)?.(query) as R[] | undefined;
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/**
 * How long a statement may wait for a lock another connection holds. After a wait has run out
 * the lock is "contended": statements try once and fail at once, until a write succeeds. Without
 * this, with the one connection shared by every request, each queued write would wait its full
 * turn and the tenth would answer after ten waits.
 */
class LockWait {
  #contended = false;

  constructor(readonly waitMs: number) {}

  budgetMs(): number {
    return this.#contended ? 0 : this.waitMs;
  }

  acquired(): void {
    this.#contended = false;
  }

  gaveUp(): void {
    this.#contended = true;
  }
}

/** Pauses between tries for a lock, like SQLite's own busy handler's (ms). */
const LOCK_RETRY_MS = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

const isBusy = (error: unknown) => /^SQLITE_BUSY/.test(String((error as { code?: unknown } | null)?.code));

class HandleDriver implements Driver {
  readonly #mutex = new Mutex();
  readonly #connection: HandleConnection;

  constructor(
    readonly handle: SqliteHandle,
    lock: LockWait,
  ) {
    this.#connection = new HandleConnection(handle, lock);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    // SQLite has one connection: callers take turns.
    await this.#mutex.lock();
    return this.#connection;
  }

  readNow(query: CompiledQuery, log: LogConfig | undefined): unknown[] | undefined {
    const { handle } = this;
    if (this.#mutex.held || handle.db.inTransaction) return undefined;
    try {
      handle.reopenIfDue();
      const statement = handle.prepare(query.sql);
      // A statement with RETURNING is a "reader" too: only plain selects run here.
      if (!statement.reader || !/^\s*select /i.test(query.sql)) return undefined;
      const started = performance.now();
      const rows = handle.allRows(statement, query.parameters as unknown[]);
      if (typeof log === "function")
        log({ level: "query", query, queryDurationMillis: performance.now() - started });
      return rows;
    } catch {
      return undefined;
    }
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.handle.db.inTransaction) await connection.executeQuery(CompiledQuery.raw("rollback"));
  }

  async releaseConnection(): Promise<void> {
    this.#mutex.unlock();
  }

  async destroy(): Promise<void> {
    this.handle.close();
  }
}

class HandleConnection implements DatabaseConnection {
  constructor(
    readonly handle: SqliteHandle,
    readonly lock: LockWait,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const { handle, lock } = this;
    // Inside a transaction the write lock is already held (BEGIN IMMEDIATE): nothing to wait for.
    const outside = !handle.db.inTransaction;
    if (outside) handle.reopenIfDue();
    const deadline = performance.now() + lock.budgetMs();
    for (let attempt = 0; ; attempt++) {
      try {
        const statement = handle.prepare(query.sql);
        const parameters = query.parameters as unknown[];
        if (statement.reader) return { rows: handle.allRows(statement, parameters) as R[] };
        const { changes, lastInsertRowid } = statement.run(parameters);
        if (outside) lock.acquired();
        return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
      } catch (error) {
        if (outside && isBusy(error)) {
          const pause = LOCK_RETRY_MS[Math.min(attempt, LOCK_RETRY_MS.length - 1)] as number;
          if (performance.now() + pause <= deadline) {
            await sleep(pause);
            continue;
          }
          lock.gaveUp();
        }
        handle.failed(error);
        throw error;
      }
    }
  }

  streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported on the embedded store");
  }
}

class Mutex {
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;

  get held(): boolean {
    return this.#held !== undefined;
  }

  async lock(): Promise<void> {
    while (this.#held) await this.#held;
    this.#held = new Promise((resolve) => {
      this.#release = resolve;
    });
  }

  unlock(): void {
    const release = this.#release;
    this.#held = undefined;
    this.#release = undefined;
    release?.();
  }
}
