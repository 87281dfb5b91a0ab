/**
 * The change bus: how a committed change reaches every process that pushes or delivers it. It
 * carries ids only — whose feed changed, which rows were read, whether deliveries became due,
 * which keys were revoked, whose sessions ended, which stream tickets were opened again — and
 * subscribers read the rows themselves. In-process on SQLite (local-bus.ts); LISTEN/NOTIFY on
 * PostgreSQL (pg-bus.ts); NATS on either when BELFRY_BUS_URL is set (nats-bus.ts). wire.ts
 * encodes the messages the last two carry.
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
  /**
   * Announces a committed change to every subscriber: this process's at once, other processes'
   * in the background (the caller does not wait for the round trip; `close` does). Never throws:
   * a change that cannot be sent is logged, and other processes catch up at their next resync.
   */
  publish(changes: Changes): void;
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
