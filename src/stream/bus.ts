/**
 * The change bus: how a committed change reaches every process that pushes or delivers it. It
 * carries ids only — whose feed changed, which rows were read, whether deliveries became due,
 * which keys were revoked, whose sessions ended, which stream tickets were opened again — and
 * subscribers read the rows themselves. In-process on SQLite; LISTEN/NOTIFY on PostgreSQL
 * (pg-bus.ts); NATS on either when BELFRY_BUS_URL is set (nats-bus.ts).
 */
export interface Changes {
  /** Users whose feed (rows, counts) changed. */
  readonly feeds: Set<number>;
  /** Per user, the rows marked read, or "all" for a mark-all-read. */
  readonly reads: Map<number, number[] | "all">;
  /** Whether webhook deliveries became due. */
  deliveries: boolean;
  /**
   * Feed rows this change created. Counted by the process that made it (for its metrics): it is
   * not sent to other processes, which hear 0.
   */
  created: number;
  /** API keys revoked: their open streams close. */
  readonly revokedKeys: Set<number>;
  /**
   * Users some of whose browser sessions ended (all of them, or the oldest past the cap): their
   * streams opened with a session re-check it and close if it is gone.
   */
  readonly endedSessions: Set<number>;
  /** Stream tickets (by hash) just opened again: their streams of older generations close. */
  readonly tickets: Map<string, number>;
}

/** What a subscriber hears: a change, or "resync" after the bus may have missed some. */
export type BusMessage = { changes: Changes } | { resync: true };

export interface ChangeBus {
  /** Announces a committed change to every subscriber, here and (where supported) elsewhere. */
  publish(changes: Changes): Promise<void>;
  /** Calls `listener` for every change; returns the unsubscribe. */
  subscribe(listener: (message: BusMessage) => void): () => void;
  close(): Promise<void>;
}

export const emptyChanges = (): Changes => ({
  feeds: new Set(),
  reads: new Map(),
  deliveries: false,
  created: 0,
  revokedKeys: new Set(),
  endedSessions: new Set(),
  tickets: new Map(),
});

export const hasChanges = (c: Changes) =>
  c.feeds.size > 0 ||
  c.deliveries ||
  c.revokedKeys.size > 0 ||
  c.endedSessions.size > 0 ||
  c.tickets.size > 0;

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
    publish: async (changes) => listeners.emit({ changes }),
    subscribe: (listener) => listeners.add(listener),
    close: async () => {},
  };
}

/** The wire form of a change: compact JSON with ids only. */
interface Wire {
  /** Sender, so a process ignores its own messages (it told its subscribers directly). */
  o: string;
  f?: number[];
  r?: [number, number[] | 1][];
  d?: 1;
  k?: number[];
  /** Users whose sessions ended. */
  s?: number[];
  /** Stream tickets opened again: [hash, newest generation]. */
  t?: [string, number][];
}

/**
 * Encodes a change as messages of at most `maxBytes` each (PostgreSQL NOTIFY payloads must stay
 * under 8000 bytes); a big batch's change is split across several.
 */
export function encodeChanges(changes: Changes, origin: string, maxBytes = 7900): string[] {
  const messages: string[] = [];
  const base = JSON.stringify({ o: origin }).length;
  const fresh = () => ({
    d: false,
    f: [] as number[],
    r: [] as [number, number[] | 1][],
    k: [] as number[],
    s: [] as number[],
    t: [] as [string, number][],
  });
  let parts = fresh();
  let bytes = base;
  const flush = () => {
    const wire: Wire = { o: origin };
    if (parts.d) wire.d = 1;
    if (parts.k.length > 0) wire.k = parts.k;
    if (parts.s.length > 0) wire.s = parts.s;
    if (parts.t.length > 0) wire.t = parts.t;
    if (parts.f.length > 0) wire.f = parts.f;
    if (parts.r.length > 0) wire.r = parts.r;
    messages.push(JSON.stringify(wire));
    parts = fresh();
    bytes = base;
  };
  // Each item's size is bounded from above (its JSON plus a key's overhead), so a message never
  // passes maxBytes; no item is near that size on its own.
  const add = (item: unknown, put: (p: ReturnType<typeof fresh>) => void) => {
    const cost = JSON.stringify(item).length + 8;
    if (bytes + cost > maxBytes) flush();
    put(parts);
    bytes += cost;
  };
  if (changes.deliveries)
    add(1, (p) => {
      p.d = true;
    });
  for (const key of changes.revokedKeys) add(key, (p) => p.k.push(key));
  for (const user of changes.endedSessions) add(user, (p) => p.s.push(user));
  for (const [hash, generation] of changes.tickets)
    add([hash, generation], (p) => p.t.push([hash, generation]));
  for (const user of changes.feeds) add(user, (p) => p.f.push(user));
  for (const [user, ids] of changes.reads) {
    if (ids === "all") add([user, 1], (p) => p.r.push([user, 1]));
    // A long list of read ids is split; each part still names its user.
    else
      for (let i = 0; i < ids.length; i += 500) {
        const part = ids.slice(i, i + 500);
        add([user, part], (p) => p.r.push([user, part]));
      }
  }
  if (bytes > base) flush();
  return messages;
}

/** Decodes one message; undefined for a message of this origin or one that cannot be read. */
export function decodeChanges(text: string, self: string): Changes | undefined {
  let wire: Wire;
  try {
    wire = JSON.parse(text) as Wire;
  } catch {
    return undefined;
  }
  if (wire.o === self) return undefined;
  const changes = emptyChanges();
  changes.deliveries = wire.d === 1;
  for (const k of wire.k ?? []) changes.revokedKeys.add(k);
  for (const s of wire.s ?? []) changes.endedSessions.add(s);
  for (const [hash, generation] of wire.t ?? []) changes.tickets.set(hash, generation);
  for (const f of wire.f ?? []) changes.feeds.add(f);
  // A long list of read ids comes in parts, several of which may share a message.
  for (const [user, ids] of wire.r ?? []) {
    const before = changes.reads.get(user);
    changes.reads.set(user, ids === 1 || before === "all" ? "all" : before ? [...before, ...ids] : ids);
  }
  return changes;
}
