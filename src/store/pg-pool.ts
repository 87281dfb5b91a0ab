import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";
import pg from "pg";
import type { StoreTimeouts } from "./store-timeouts.js";

// int8 (ids, counts, times) as JS numbers: every value Belfry stores is far below 2^53.
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** pg's own message when a statement outlived `query_timeout`. */
const QUERY_TIMEOUT_MESSAGE = "Query read timeout";

/** A pool as Kysely takes it, plus one-statement queries under the same bounds (for NOTIFY). */
export interface TimedPool extends PostgresPool {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult<unknown>>;
}

export interface TimedPoolOptions {
  max: number;
  timeouts: StoreTimeouts;
  /** Told about errors of pooled connections, which would otherwise crash the process. */
  onError?: (error: Error) => void;
}

/**
 * A pg pool whose connections give up on a silent server. `connectionTimeoutMillis` bounds
 * opening a connection and waiting for one; each statement gets `query_timeout`, and a
 * connection whose statement timed out is destroyed at once — pg would otherwise keep it, with
 * the unanswered statement still in front of the rollback that follows, so the rollback would
 * wait as long again and the connection would go back to the pool still stuck.
 */
export function openTimedPool(url: string, { max, timeouts, onError }: TimedPoolOptions): TimedPool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types,
    connectionTimeoutMillis: timeouts.connectMs,
    // The OS probes idle connections, so one whose server vanished without a word (a failover
    // to another host) is found dead and dropped instead of lent out.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: "belfry",
  });
  // An idle client's error reaches the pool's "error" event; a checked-out client's reaches only
  // the client itself, and an "error" event nobody listens to kills the process. So every client
  // gets a listener of its own: the query in flight fails (→ 503) and the pool drops the client.
  pool.on("error", (error) => onError?.(error));
  pool.on("connect", (client) => client.on("error", (error) => onError?.(error)));

  const timed = new WeakMap<pg.PoolClient, TimedClient>();
  const connect = async (): Promise<TimedClient> => {
    const client = await pool.connect();
    let t = timed.get(client);
    if (!t) {
      t = new TimedClient(client, timeouts.queryMs);
      timed.set(client, t);
    }
    return t;
  };
  return {
    // Kysely never asks for a cursor, the one overload TimedClient does not take.
    connect: () => connect() as Promise<unknown> as Promise<PostgresPoolClient>,
    end: () => pool.end(),
    async query(text, values = []) {
      const client = await connect();
      try {
        return await client.query(text, values);
      } finally {
        client.release();
      }
    },
  };
}

class TimedClient {
  #broken = false;

  constructor(
    readonly client: pg.PoolClient,
    readonly timeoutMs: number,
  ) {}

  async query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
    if (this.#broken) throw new Error("Client has encountered a connection error and is not queryable");
    try {
      // `query_timeout` per statement is pg's, missing from its type definitions.
      const result = await this.client.query({
        text: sql,
        values: [...parameters],
        ...(this.timeoutMs > 0 && { query_timeout: this.timeoutMs }),
      } as pg.QueryConfig);
      return result as unknown as PostgresQueryResult<R>;
    } catch (error) {
      if ((error as Error).message === QUERY_TIMEOUT_MESSAGE) {
        this.#broken = true;
        // What pg-pool itself does to a connection that timed out while connecting.
        this.client.connection.stream.destroy();
      }
      throw error;
    }
  }

  release(destroy?: boolean): void {
    this.client.release(destroy === true || this.#broken);
  }
}
