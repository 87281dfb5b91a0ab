import type { BusMessage, ChangeBus } from "./change-bus.js";

/** Subscribers of one process. */
export class LocalListeners {
  readonly #listeners = new Set<(message: BusMessage) => void>();

  get size(): number {
    return this.#listeners.size;
  }

  add(listener: (message: BusMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(message: BusMessage): void {
    for (const listener of this.#listeners) listener(message);
  }
}

/** The in-process bus: enough when one process serves everything (the embedded store). */
export function localBus(): ChangeBus {
  const listeners = new LocalListeners();
  return {
    publish: (changes) => listeners.emit({ changes }),
    subscribe: (listener) => listeners.add(listener),
    close: async () => {},
  };
}
