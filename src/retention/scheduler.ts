import type { Deps } from "../deps.js";
import { isUnavailable } from "../store/store.js";
import { type PruneResult, prunePass } from "./prune.js";

/** Where the scheduler reports its passes and its trouble. */
export interface RetentionLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RetentionScheduler {
  /** Settles when the pass started at start-up has ended (tests and `belfry` wait for nothing else). */
  readonly firstPass: Promise<PruneResult | undefined>;
  /** Stops between two batches and resolves once the pass in progress has stopped. */
  stop(): Promise<void>;
}

/** How often a pass runs after the first. */
export const RETENTION_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Runs retention in the background: a pass at start, then one every `intervalMs` (an hour).
 * Passes never overlap in one process; several instances may prune at once, since every batch
 * re-reads what it deletes under the owners' locks. A pass that fails (the store is away) is
 * logged and the next one picks up where it left off: whatever is old is still there.
 */
export function startRetention(
  deps: Deps,
  days: number,
  log: RetentionLog,
  intervalMs = RETENTION_INTERVAL_MS,
): RetentionScheduler {
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<PruneResult | undefined> = Promise.resolve(undefined);
  const run = (): Promise<PruneResult | undefined> => {
    current = prunePass(deps, days, { signal: stopping.signal })
      .then((result) => {
        const deleted = Object.values(result).reduce((a, b) => a + b, 0);
        if (deleted > 0) log.info({ retention: { days, ...result } }, "retention pruned old rows");
        return result;
      })
      .catch((error: unknown) => {
        const facts = { message: (error as Error).message, code: (error as { code?: string }).code };
        log.warn(
          { err: facts, unavailable: isUnavailable(error) },
          "retention pass failed; the next one retries",
        );
        return undefined;
      })
      .finally(() => {
        // Unref'd: a pending pass never keeps a process alive that has nothing else to do.
        if (!stopping.signal.aborted) timer = setTimeout(run, intervalMs).unref();
      });
    return current;
  };
  const firstPass = run();
  return {
    firstPass,
    async stop() {
      stopping.abort();
      clearTimeout(timer);
      await current;
      clearTimeout(timer);
    },
  };
}
