import { parseArgs } from "node:util";
import type { Deps } from "../deps.js";
import { createPersonalKey } from "../identity/keys.js";
import { createUser } from "../identity/users.js";
import { ingestBatch } from "../ingest/ingest.js";
import { MAX_BATCH } from "../ingest/ingest-request.js";
import { UsageError } from "./admin.js";

export const SEED_USAGE = `belfry seed --users <N> --per-user <M> [--prefix <text>]

Creates N users, each with a key and M payment notifications (through batch ingest), and prints
{"users": [{"id", "email", "key"}…]} as JSON. Progress goes to stderr.`;

/** What `belfry seed` made: every user with a key, for load tests to use. */
export interface Seeded {
  users: { id: number; email: string; key: string }[];
  events: number;
  seconds: number;
}

/**
 * Fills the store for benchmarks and demos through the same batch ingest producers use, so the
 * rows, counters and versions are exactly what real traffic leaves behind.
 */
export async function runSeed(deps: Deps, argv: string[], progress: (line: string) => void): Promise<Seeded> {
  const { values } = parseArgs({
    args: argv,
    options: { users: { type: "string" }, "per-user": { type: "string" }, prefix: { type: "string" } },
  });
  const users = Number(values.users);
  const perUser = Number(values["per-user"]);
  if (!Number.isSafeInteger(users) || users < 1 || !Number.isSafeInteger(perUser) || perUser < 0) {
    throw new UsageError(SEED_USAGE);
  }
  const prefix = values.prefix ?? `seed-${deps.clockMs().toString(36)}`;
  const started = performance.now();
  const made: Seeded["users"] = [];
  for (let u = 0; u < users; u++) {
    const user = await createUser(deps, { email: `${prefix}-${u}@example.com`, name: `Seed ${u}` });
    const key = await createPersonalKey(deps, user.id, { name: "seed" });
    made.push({ id: user.id, email: user.email, key: key.key });
  }
  const total = users * perUser;
  let done = 0;
  const bar = () => {
    const share = total === 0 ? 1 : done / total;
    const rate = done / ((performance.now() - started) / 1000);
    progress(
      `\r[${"#".repeat(Math.round(share * 30)).padEnd(30)}] ${done}/${total} events  ${Math.round(rate)}/s`,
    );
  };
  // Round-robin across users, a thousand events per transaction, oldest first.
  const base = deps.clock() - perUser;
  for (let i = 0; i < perUser; i += Math.max(1, Math.floor(MAX_BATCH / users))) {
    const step = Math.min(Math.max(1, Math.floor(MAX_BATCH / users)), perUser - i);
    const events = [];
    for (let j = i; j < i + step; j++) {
      for (const user of made) {
        events.push({
          id: `${prefix}-${user.id}-${j}`,
          type: "system.payment.received",
          user_id: user.id,
          data: { amount_cents: 100 + (j % 900), balance_cents: 10_000 + j },
          occurred_at: new Date((base + j) * 1000).toISOString(),
        });
      }
    }
    for (let k = 0; k < events.length; k += MAX_BATCH) {
      await ingestBatch(deps, { events: events.slice(k, k + MAX_BATCH) });
      done += Math.min(MAX_BATCH, events.length - k);
      bar();
    }
  }
  bar();
  progress("\n");
  return { users: made, events: total, seconds: (performance.now() - started) / 1000 };
}
