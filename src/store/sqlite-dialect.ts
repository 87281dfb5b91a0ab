import type BetterSqlite3 from "better-sqlite3";
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  SqliteDriver,
} from "kysely";

/**
 * Kysely's SQLite dialect with three changes:
 * - transactions start with `BEGIN IMMEDIATE`, taking the write lock up front, so a transaction
 *   that reads then writes cannot fail half-way with SQLITE_BUSY when another process (the CLI)
 *   writes the same file; the busy timeout simply waits;
 * - prepared statements are cached by SQL text (Kysely prepares every query anew);
 * - migrations run in one transaction (SQLite's DDL is transactional; Kysely assumes not), so
 *   with `BEGIN IMMEDIATE` processes that migrate one file at once take turns.
 */
export class BelfrySqliteDialect extends SqliteDialect {
  readonly #database: SqliteDatabase;

  constructor(database: BetterSqlite3.Database) {
    const cached = cachingStatements(database);
    super({ database: cached });
    this.#database = cached;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: this.#database });
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }
}

const CACHE_SIZE = 500;

function cachingStatements(db: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => void db.close(),
    prepare(source: string) {
      let stmt = cache.get(source);
      if (stmt === undefined) {
        stmt = db.prepare(source);
        if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
        cache.set(source, stmt);
      }
      return stmt;
    },
  };
}
