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
  /** Told the number of items each committed transaction carried (for the metrics). */
  committed?(size: number): void;
}

interface Waiting<I, O> {
  item: I;
  resolve(outcome: O): void;
  reject(error: unknown): void;
}

/**
 * Gathers concurrent single writes into shared transactions ("group commit"): callers submit an
 * item and get a promise of that item's own outcome, which settles only once the transaction
 * that carried it has committed (or failed). While a group's transaction runs, new items queue;
 * when it ends, the next group takes what queued — at most `maxItems` — so requests that arrive
 * together share one transaction and one durable commit, without a fixed wait: an idle gatherer
 * starts a group after one event-loop turn, which collects whatever the same turn submitted.
 * One group runs at a time (see the decision "Group commit" for why not several).
 *
 * A group whose transaction fails because the store is unavailable (`isUnavailable`) rejects its
 * items with that error (the usual 503), and so does everything that queued while it
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
  readonly #committed: (size: number) => void;
  #queue: Waiting<I, O>[] = [];
  /** A group is running, or about to start at the end of this event-loop turn. */
  #busy = false;

  constructor(store: Store, { run, maxItems = 128, committed = () => {} }: GroupCommitOptions<I, O>) {
    if (!(maxItems >= 1)) throw new Error("maxItems must be at least 1");
    this.#store = store;
    this.#run = run;
    this.#maxItems = maxItems;
    this.#committed = committed;
  }

  /** Queues `item` for the next group; resolves with its outcome once that group has committed. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Starts the next group at the end of this event-loop turn, unless one is running. */
  #schedule(): void {
    if (this.#busy || this.#queue.length === 0) return;
    this.#busy = true;
    setImmediate(() => {
      const group = this.#queue.splice(0, this.#maxItems);
      void this.#commit(group).finally(() => {
        this.#busy = false;
        this.#schedule();
      });
    });
  }

  async #commit(group: Waiting<I, O>[]): Promise<void> {
    let outcomes: O[];
    try {
      outcomes = await this.#transact(group);
    } catch (error) {
      if (isUnavailable(error)) {
        const waited = this.#queue;
        this.#queue = [];
        for (const w of [...group, ...waited]) w.reject(error);
      } else if (group.length === 1) {
        group[0]?.reject(error);
      } else {
        for (const w of group) await this.#commit([w]);
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
