import { describe, expect, it } from "vitest";
import { type Changes, emptyChanges, hasChanges } from "../src/bus/change-bus.js";
import { decodeChanges, encodeChanges } from "../src/bus/wire.js";

/** Pure checks of the change bus's wire form: what one process tells the others. */

/** Every message decoded (from another origin) and merged back into one change. */
function roundTrip(changes: Changes, maxBytes?: number): { merged: Changes; messages: string[] } {
  const messages = encodeChanges(changes, "sender", maxBytes);
  const merged = emptyChanges();
  for (const message of messages) {
    const part = decodeChanges(message, "receiver");
    if (!part) throw new Error(`undecodable: ${message}`);
    for (const f of part.feeds) merged.feeds.add(f);
    for (const [user, ids] of part.reads) {
      const before = merged.reads.get(user);
      merged.reads.set(user, ids === "all" || before === "all" ? "all" : [...(before ?? []), ...ids]);
    }
    merged.deliveries ||= part.deliveries;
    for (const k of part.revokedKeys) merged.revokedKeys.add(k);
    for (const s of part.endedSessions) merged.endedSessions.add(s);
    for (const [hash, generation] of part.tickets) merged.tickets.set(hash, generation);
  }
  return { merged, messages };
}

function sample(): Changes {
  const c = emptyChanges();
  c.feeds.add(7).add(8);
  c.reads.set(7, [101, 102]).set(8, "all");
  c.deliveries = true;
  c.revokedKeys.add(12);
  c.endedSessions.add(9);
  c.tickets.set("ab12", 3);
  return c;
}

describe("the change bus wire form", () => {
  it("carries every kind of change across, in one message when it is small", () => {
    const { merged, messages } = roundTrip(sample());
    expect(messages).toHaveLength(1);
    expect(merged).toEqual(sample());
  });

  it("encodes an empty change as no message, and hasChanges agrees", () => {
    expect(hasChanges(emptyChanges())).toBe(false);
    expect(encodeChanges(emptyChanges(), "sender")).toEqual([]);
    expect(hasChanges(sample())).toBe(true);
  });

  it("splits a big change into messages under the byte limit that together carry all of it", () => {
    const big = emptyChanges();
    for (let u = 1; u <= 3000; u++) big.feeds.add(u);
    big.reads.set(
      1,
      Array.from({ length: 2000 }, (_, i) => i + 1),
    );
    const { merged, messages } = roundTrip(big, 7900);
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(7900);
    expect(merged).toEqual(big);
  });

  it("ignores the sender's own messages and anything that is not its JSON", () => {
    const [message] = encodeChanges(sample(), "sender");
    expect(decodeChanges(message as string, "sender")).toBeUndefined();
    expect(decodeChanges("not json", "receiver")).toBeUndefined();
    expect(decodeChanges(JSON.stringify({ o: "x" }), "receiver")).toEqual(emptyChanges());
  });
});
