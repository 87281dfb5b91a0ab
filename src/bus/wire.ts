import { type Changes, emptyChanges } from "./change-bus.js";

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
  // A long list of one user's read ids is sent in parts, several of which may share a message.
  for (const [user, ids] of wire.r ?? []) {
    const before = changes.reads.get(user);
    changes.reads.set(user, ids === 1 || before === "all" ? "all" : [...(before ?? []), ...ids]);
  }
  return changes;
}
