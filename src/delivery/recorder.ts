import type { Deps } from "../deps.js";
import { attemptOutcome } from "../metrics/metrics.js";
import { retryUnavailable } from "../store/retry-unavailable.js";
import { isUnavailable } from "../store/store.js";
import { transact } from "../store/transaction.js";
import { type Outcome, type PlanAttempt, recordOutcomes } from "../webhooks/outbox-claims.js";
import { errorFacts, type WorkerLog } from "./worker-log.js";

/** The most outcomes one transaction records. */
export const MAX_RECORD_BATCH = 2000;
/** A batch is recorded once it has this many outcomes, without waiting for the worker to go idle. */
export const RECORD_BATCH = 1000;
/** An outcome waits at most this long for its batch to fill while attempts are still running. */
export const RECORD_WAIT_MS = 100;

/**
 * Records a worker's outcomes in batches, one transaction each: a batch is recorded as soon as
 * it has RECORD_BATCH outcomes, or the worker has no attempt left in flight (an idle worker's
 * attempt is in the store milliseconds after its answer), or its first outcome has waited
 * RECORD_WAIT_MS; outcomes that arrive while a batch commits join the next one.
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
  readonly #idle: () => boolean;
  #pending: Outcome[] = [];
  #recording: Promise<void> | undefined;
  #check: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** `idle` tells whether the worker has no attempt in flight (nothing more is about to finish). */
  constructor(deps: Deps, log: WorkerLog, plan: PlanAttempt, stopping: AbortSignal, idle: () => boolean) {
    this.#deps = deps;
    this.#log = log;
    this.#plan = plan;
    this.#stopping = stopping;
    this.#idle = idle;
  }

  /** Queues an outcome; it is recorded with its batch. */
  add(outcome: Outcome): void {
    this.#pending.push(outcome);
    if (this.#recording) return;
    // Decided once the current turn is over: what else finished in it joins the batch.
    this.#check ??= setImmediate(() => {
      this.#check = undefined;
      this.#maybeRecord();
    });
  }

  /** Whether outcomes are waiting or being recorded. */
  get busy(): boolean {
    return this.#pending.length > 0 || this.#recording !== undefined;
  }

  /** Records what is waiting now, and resolves once nothing is waiting or being recorded. */
  async settled(): Promise<void> {
    while (this.busy) {
      this.#start();
      await this.#recording;
    }
  }

  #maybeRecord(): void {
    if (this.#recording || this.#pending.length === 0) return;
    if (this.#pending.length >= RECORD_BATCH || this.#idle()) this.#start();
    else this.#timer ??= setTimeout(() => this.#start(), RECORD_WAIT_MS);
  }

  #start(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#recording || this.#pending.length === 0) return;
    const batch = this.#pending.splice(0, MAX_RECORD_BATCH);
    this.#recording = this.#record(batch).finally(() => {
      this.#recording = undefined;
      // What arrived meanwhile waits for its own batch to fill, as the first did.
      this.#maybeRecord();
    });
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
