import type { Deps } from "../deps.js";
import { attemptOutcome } from "../metrics/metrics.js";
import { retryUnavailable } from "../store/retry-unavailable.js";
import { isUnavailable } from "../store/store.js";
import { transact } from "../store/transaction.js";
import { type Outcome, type PlanAttempt, recordOutcomes } from "../webhooks/outbox-claims.js";
import { errorFacts, type WorkerLog } from "./worker-log.js";

/** The most outcomes one transaction records. */
export const MAX_RECORD_BATCH = 500;

/**
 * Records a worker's outcomes in batches: one transaction for whatever has finished since the
 * last one began (group commit). An outcome arriving while nothing is being recorded is
 * recorded at once, so an idle worker's attempt is in the store milliseconds after its answer;
 * under load, outcomes gather while the previous transaction commits, and the batch grows with
 * the load — no timer.
 *
 * While the store is unavailable the batch is retried (the outcomes are held, never dropped),
 * and more gather behind it; they are all recorded once the store is back, so an acknowledged
 * delivery is not sent again because of an outage — unless the worker stops first (`stopping`),
 * when the leases run out and the deliveries are sent again (at least once). A batch that fails
 * for another reason is recorded outcome by outcome, so one bad outcome costs only itself.
 */
export class OutcomeRecorder {
  readonly #deps: Deps;
  readonly #log: WorkerLog;
  readonly #stopping: AbortSignal;
  readonly #plan: PlanAttempt;
  #pending: Outcome[] = [];
  #recording: Promise<void> | undefined;

  constructor(deps: Deps, log: WorkerLog, plan: PlanAttempt, stopping: AbortSignal) {
    this.#deps = deps;
    this.#log = log;
    this.#plan = plan;
    this.#stopping = stopping;
  }

  /** Queues an outcome; it is recorded with the next batch. */
  add(outcome: Outcome): void {
    this.#pending.push(outcome);
    this.#recording ??= this.#run().finally(() => {
      this.#recording = undefined;
    });
  }

  /** Whether outcomes are waiting or being recorded. */
  get busy(): boolean {
    return this.#recording !== undefined;
  }

  /** Resolves once nothing is waiting or being recorded. */
  async settled(): Promise<void> {
    while (this.#recording) await this.#recording;
  }

  async #run(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, MAX_RECORD_BATCH);
      await this.#record(batch);
    }
  }

  async #record(batch: Outcome[]): Promise<void> {
    const deps = this.#deps;
    try {
      await retryUnavailable(
        () => transact(deps.store, (tx) => recordOutcomes(tx, batch, this.#plan, deps.clock())),
        { signal: this.#stopping, clockMs: deps.clockMs },
      );
    } catch (error) {
      if (batch.length > 1 && !isUnavailable(error)) {
        for (const outcome of batch) await this.#record([outcome]);
        return;
      }
      this.#log.error(
        { err: errorFacts(error), deliveries: batch.map((o) => o.claimed.id) },
        "recording webhook outcomes failed",
      );
      return;
    }
    for (const outcome of batch) {
      if (outcome.kind !== "attempt") continue;
      const { status, errorClass } = outcome.attempt;
      deps.metrics.webhookAttempts.inc({ outcome: attemptOutcome(status, errorClass) });
    }
  }
}
