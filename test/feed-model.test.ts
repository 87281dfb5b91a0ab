import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { FEED_TYPES, FeedModel } from "./support/feed-model.js";
import { List, type Params, Poll, type Tag } from "./support/feed-model-reads.js";
import { type Cmd, checkAll, clock, counts, type Real } from "./support/feed-model-real.js";
import { Batch, Ingest, MarkAllRead, MarkRead, Mute, type Target } from "./support/feed-model-writes.js";
import { type Harness, startHarness } from "./support/harness.js";
import { batchItemArb, singleItemArb } from "./support/ingest-plans.js";
import { proofSeed, reportProof } from "./support/proof-seed.js";

/**
 * Model-based test of the feed: random sequences of ingest (single and batch), mark-read,
 * mark-all-read, mutes and reads run against the real HTTP API for three users, and after every
 * step each user's whole feed, unread count and settings are compared with a small in-memory
 * model (test/support/feed-model.ts). The clock is injected and moves one second per step, so
 * every `created_at` and `read_at` is known exactly. A failure shrinks to a short list of
 * commands.
 */

const SEED = proofSeed(5_22_2026);
const RUNS = 20;
const MAX_COMMANDS = 25;
const USERS = 3;

const userArb = fc.nat({ max: USERS - 1 });
const opt = (values: string[]) => fc.option(fc.constantFrom(...values), { nil: undefined, freq: 2 });
const paramsArb: fc.Arbitrary<Params> = fc.record(
  {
    unread: opt(["", "true", "false", "1", "0", "true", "1", "yes", "TRUE"]),
    read: opt(["", "true", "false", "1", "0", "true", "maybe"]),
    type: opt(["", ...FEED_TYPES, FEED_TYPES[0], FEED_TYPES[1], "system.nope"]),
    page: opt(["", "1", "2", "3", "2", "007", "2147483647", "0", "-1", "1.5", "2147483648"]),
    page_size: opt(["", "1", "2", "3", "5", "200", "201", "5000", "0", "abc"]),
    twice: fc.option(fc.constantFrom("unread", "type", "page", "page_size"), { nil: undefined, freq: 12 }),
  },
  { requiredKeys: [] },
);
const targetArb: fc.Arbitrary<Target> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("own" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("foreign" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: "missing" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("malformed" as const),
      text: fc.constantFrom("0", "-1", "abc", "1.5", "007", "9007199254740993", "%F0%9F%94%94"),
    }),
  },
);
const tagArb: fc.Arbitrary<Tag> = fc.oneof(
  fc.constantFrom<Tag>("current", "weak-stripped", "star", "in a list", "garbage"),
  fc.record({ stale: fc.nat() }),
);

const commandArbs: fc.Arbitrary<Cmd>[] = [
  fc.tuple(userArb, singleItemArb).map(([u, p]) => new Ingest(u, p)),
  fc.tuple(userArb, singleItemArb).map(([u, p]) => new Ingest(u, p)),
  fc.tuple(userArb, fc.array(batchItemArb, { maxLength: 8 })).map(([u, ps]) => new Batch(u, ps)),
  fc.tuple(userArb, targetArb).map(([u, t]) => new MarkRead(u, t)),
  userArb.map((u) => new MarkAllRead(u)),
  fc
    .tuple(
      userArb,
      fc.array(fc.constantFrom<string>(...FEED_TYPES, FEED_TYPES[0], "system.nope"), { maxLength: 4 }),
    )
    .map(([u, ts]) => new Mute(u, ts)),
  fc.tuple(userArb, paramsArb).map(([u, p]) => new List(u, p)),
  fc
    .tuple(userArb, fc.constantFrom("count" as const, "list" as const), tagArb)
    .map(([u, w, t]) => new Poll(u, w, t)),
];

describe.each(BACKENDS)("the feed against its model on %s", (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(backend, { clock: () => clock.now });
  });
  afterAll(() => h.close());

  it(`agrees with the model after every step (${RUNS} runs of up to ${MAX_COMMANDS} commands)`, async () => {
    Object.assign(counts, { requests: 0, steps: 0, runs: 0 });
    const setup = async () => {
      counts.runs++;
      const users = [];
      for (let i = 0; i < USERS; i++) users.push(await h.userWithKey(`model${i}`));
      const model = new FeedModel(users.map((u) => u.id));
      const real: Real = { h, users, etags: new Map(), maxId: 0 };
      await checkAll(model, real);
      return { model, real };
    };
    await fc.assert(
      fc.asyncProperty(fc.commands(commandArbs, { maxCommands: MAX_COMMANDS, size: "max" }), (cmds) =>
        fc.asyncModelRun(setup, cmds),
      ),
      { seed: SEED, numRuns: RUNS },
    );
    reportProof(`feed-model ${backend}`, SEED, { ...counts });
  }, 120_000);
});
