/**
 * Seeds for the seeded proof suites (crash under load, the feed model, route fuzzing). Each suite
 * has a fixed default so CI runs the same inputs every time; `BELFRY_PROOF_SEED=<n>` replays or
 * explores another seed. Every suite prints the seed it used, so a failure can be replayed.
 */
export function proofSeed(defaultSeed: number): number {
  const given = process.env.BELFRY_PROOF_SEED;
  if (given === undefined || given === "") return defaultSeed;
  const seed = Number(given);
  if (!Number.isSafeInteger(seed)) throw new Error(`BELFRY_PROOF_SEED must be an integer, got ${given}`);
  return seed;
}

/** One line a suite prints: its seed and how much it ran, so CI logs show both. */
export function reportProof(suite: string, seed: number, counts: Record<string, number | string>): void {
  const parts = Object.entries(counts).map(([k, v]) => `${k}=${v}`);
  console.log(`[${suite}] seed=${seed} ${parts.join(" ")} (replay: BELFRY_PROOF_SEED=${seed})`);
}
