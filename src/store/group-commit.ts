import { isUnavailable, type Store } from "./store.js";
import { type Tx, transact } from "./transaction.js";

/** How a {@link GroupCommit} runs its groups. */
export interface GroupCommitOptions<I, O> {
  /**
   * Does the work of a group's items inside its transaction and returns one outcome per item, in
   * order. An item's own failure (a 404, a conflict) is an outcome, not a throw: a throw fails
   * the whole group's transaction.
   */
  run(tx: Tx, items: readonly I[]): Promise<O[]>;
  /** The most items one transaction takes (default 128); the rest wait for the next group. */
  maxItems?: number;
  /**
   * Lanes that commit side by side (default 1), each one group at a time; `laneOf` picks an
   * item's lane. Items whose transactions would wait for each other's locks (the same user's)
   * belong in one lane.
   */
  lanes?: number;
  laneOf?(item: I): number;
  /** Told the number of items each committed transaction carried (for the metrics). */
  committed?(size: number): void;
}

interface Waiting<I, O> {
  item: I;
  resolve(outcome: O): void;
  reject(error: unknown): void;
}

/** One lane's queue, and whether a group of it is running or about to start. */
interface Lane<I, O> {
  queue: Waiting<I, O>[];
  busy: boolean;
}

/**
 * Gathers concurrent single writes into shared transactions ("group commit"): callers submit an
 * item and get a promise of that item's own outcome, which settles only once the transaction
 * that carried it has committed (or failed). While a group's transaction runs, new items queue;
 * when it ends, the next group takes what queued — at most `maxItems` — so requests that arrive
 * together share one transaction and one durable commit, without a fixed wait: an idle lane
 * starts a group after one event-loop turn, which collects whatever the same turn submitted.
 *
 * A group whose transaction fails because the store is unavailable (`isUnavailable`) rejects its
 * items with that error (the usual 503), and so does everything that queued in its lane while it
 * ran (they have waited as long already); the next group is tried as usual, so the gatherer
 * recovers with the store. A group that fails for any other reason is retried item by item, each
 * in a transaction of its own, so one bad item fails only itself.
 *
 * @example
 * const gather = new GroupCommit(store, { run: (tx, items) => recordAll(tx, items) });
 * const outcome = await gather.submit(item); // committed
 */
export class GroupCommit<I, O> {
  readonly #store: Store;
  readonly #run: GroupCommitOptions<I, O>["run"];
  readonly #maxItems: number;
  readonly #lanes: Lane<I, O>[];
  readonly #laneOf: (item: I) => number;
  readonly #committed: (size: number) => void;

  constructor(
    store: Store,
    { run, maxItems = 128, lanes = 1, laneOf = () => 0, committed = () => {} }: GroupCommitOptions<I, O>,
  ) {
    if (!(maxItems >= 1 && lanes >= 1)) throw new Error("maxItems and lanes must be at least 1");
    this.#store = store;
    this.#run = run;
    this.#maxItems = maxItems;
    this.#lanes = Array.from({ length: lanes }, () => ({ queue: [], busy: false }));
    this.#laneOf = laneOf;
    this.#committed = committed;
  }

  /** Queues `item` for its lane's next group; resolves with its outcome once that group has committed. */
  submit(item: I): Promise<O> {
    const index = Math.abs(Math.trunc(this.#laneOf(item))) % this.#lanes.length;
    const lane = this.#lanes[index] as Lane<I, O>;
    return new Promise<O>((resolve, reject) => {
      lane.queue.push({ item, resolve, reject });
      this.#schedule(lane);
    });
  }

  /** Starts the lane's next group at the end of this event-loop turn, unless one runs already. */
  #schedule(lane: Lane<I, O>): void {
    if (lane.busy || lane.queue.length === 0) return;
    lane.busy = true;
    setImmediate(() => {
      const group = lane.queue.splice(0, this.#maxItems);
      void this.#commit(lane, group).finally(() => {
        lane.busy = false;
        this.#schedule(lane);
      });
    });
  }

  async #commit(lane: Lane<I, O>, group: Waiting<I, O>[]): Promise<void> {
    let outcomes: O[];
    try {
      outcomes = await this.#transact(group);
    } catch (error) {
      if (isUnavailable(error)) {
        const waited = lane.queue;
        lane.queue = [];
        for (const w of [...group, ...waited]) w.reject(error);
      } else if (group.length === 1) {
        group[0]?.reject(error);
      } else {
        for (const w of group) await this.#commit(lane, [w]);
      }
      return;
    }
    this.#committed(group.length);
    group.forEach((w, i) => {
      w.resolve(outcomes[i] as O);
    });
  }

  /** Runs the group in one transaction; a wrong number of outcomes rolls it back. */
  #transact(group: Waiting<I, O>[]): Promise<O[]> {
    return transact(this.#store, async (tx) => {
      const outcomes = await this.#run(
        tx,
        group.map((w) => w.item),
      );
      if (outcomes.length !== group.length) {
        throw new Error(`a group of ${group.length} items had ${outcomes.length} outcomes`);
      }
      return outcomes;
    });
  }
}
