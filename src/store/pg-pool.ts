import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";
import pg from "pg";
import { ServerHearing, serverAddress } from "./pg-hearing.js";
import { statementName } from "./statement-names.js";
import type { StoreTimeouts } from "./store-timeouts.js";

// int8 (ids, counts, times) as JS numbers: every value Belfry stores is far below 2^53.
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** How often a wait past `silenceMs` looks again at whether the server is silent. */
const RECHECK_MS = 50;

/** A pool as Kysely takes it, plus one-statement queries under the same bounds (for NOTIFY). */
export interface TimedPool extends PostgresPool {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult<unknown>>;
  /** The pool's connections right now, and the requests waiting for one (for metrics). */
  stats(): PoolStats;
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface TimedPoolOptions {
  max: number;
  timeouts: StoreTimeouts;
  /** Told about errors of pooled connections, which would otherwise crash the process. */
  onError?: (error: Error) => void;
}

/**
 * Calls `check` after `firstMs`, then every RECHECK_MS, until it returns true or `stop` is called.
 */
function watch(firstMs: number, check: () => boolean): () => void {
  let timer = setTimeout(function again() {
    if (!check()) timer = setTimeout(again, RECHECK_MS);
  }, firstMs);
  return () => clearTimeout(timer);
}

/**
 * A pg pool that gives up on a server that is gone, not on a busy one (see SERVING_TIMEOUTS and
 * ServerHearing):
 * - a new connection must open within `connectMs`;
 * - a statement whose server has said nothing for `silenceMs`, and did not answer a fresh
 *   connection either, gets its connection destroyed: the statement fails at once, so does the
 *   rollback that follows (pg would otherwise queue it behind the unanswered statement), and the
 *   pool drops the connection;
 * - a request queued for a connection of a full pool gives up the same way when no server says
 *   anything;
 * - no wait lasts beyond `maxWaitMs`.
 * With `silenceMs` 0 (PATIENT_TIMEOUTS) only the connect and queue bounds apply.
 */
export function openTimedPool(url: string, { max, timeouts, onError }: TimedPoolOptions): TimedPool {
  const { connectMs, silenceMs, maxWaitMs } = timeouts;
  // The pool's own timeout bounds both opening a connection and waiting for one; opening gets
  // the shorter bound from the client itself.
  class Client extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, connectionTimeoutMillis: connectMs });
    }
  }
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types,
    Client,
    connectionTimeoutMillis: maxWaitMs,
    // The OS probes idle connections, so one whose server vanished without a word is found dead
    // and dropped instead of lent out.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: "belfry",
    // A transaction of a process cut off from the server (a partition) keeps its row locks on
    // the server side until this ends it; Belfry's transactions never sit idle for that long.
    ...(silenceMs > 0 && { idle_in_transaction_session_timeout: 5000 }),
  });
  const hearing = new ServerHearing(url, timeouts);
  // An idle client's error reaches the pool's "error" event; a checked-out client's reaches only
  // the client itself, and an "error" event nobody listens to kills the process. So every client
  // gets a listener of its own: the query in flight fails (→ 503) and the pool drops the client.
  pool.on("error", (error) => onError?.(error));
  pool.on("connect", (client) => {
    client.on("error", (error) => onError?.(error));
    hearing.heard(serverAddress(client));
  });

  const timed = new WeakMap<pg.PoolClient, TimedClient>();
  const wrap = (client: pg.PoolClient) => {
    let t = timed.get(client);
    if (!t) {
      t = new TimedClient(client, hearing, timeouts);
      timed.set(client, t);
    }
    return t;
  };
  const connect = (): Promise<TimedClient> => {
    if (silenceMs === 0) return pool.connect().then(wrap);
    return new Promise((resolve, reject) => {
      let gaveUp = false;
      const stop = watch(silenceMs, () => {
        if (!hearing.gone()) return false;
        gaveUp = true;
        reject(new Error("timeout exceeded when trying to connect"));
        return true;
      });
      pool.connect().then(
        (client) => {
          stop();
          if (gaveUp) client.release();
          else resolve(wrap(client));
        },
        (error: unknown) => {
          stop();
          reject(error);
        },
      );
    });
  };
  return {
    // Kysely never asks for a cursor, the one overload TimedClient does not take.
    connect: () => connect() as Promise<unknown> as Promise<PostgresPoolClient>,
    end: () => pool.end(),
    stats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
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
  readonly #address: string;
  #broken = false;

  constructor(
    readonly client: pg.PoolClient,
    readonly hearing: ServerHearing,
    readonly timeouts: StoreTimeouts,
  ) {
    this.#address = serverAddress(client);
  }

  async query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
    if (this.#broken) throw new Error("Client has encountered a connection error and is not queryable");
    const { silenceMs, maxWaitMs } = this.timeouts;
    const started = performance.now();
    const stop =
      silenceMs > 0
        ? watch(silenceMs, () => {
            if (!this.hearing.gone(this.#address) && performance.now() - started < maxWaitMs) return false;
            this.#broken = true;
            // What pg-pool itself does to a connection that times out while connecting.
            this.client.connection.stream.destroy();
            return true;
          })
        : undefined;
    try {
      const name = statementName(sql);
      const values = [...parameters];
      const result = await (name
        ? this.client.query({ name, text: sql, values })
        : this.client.query(sql, values));
      this.hearing.heard(this.#address);
      return result as unknown as PostgresQueryResult<R>;
    } catch (error) {
      // An error the server sent is an answer too.
      if (error instanceof pg.DatabaseError) this.hearing.heard(this.#address);
      throw error;
    } finally {
      stop?.();
    }
  }

  release(destroy?: boolean): void {
    this.client.release(destroy === true || this.#broken);
  }
}
