/** Jitter applied to every scheduled delay: ±20 %. */
const JITTER = 0.2;
const RETRY_AFTER_MIN_MS = 1000;
const RETRY_AFTER_MAX_MS = 60 * 60 * 1000;

/**
 * The delay before the next attempt after `attemptsMade` attempts of the current schedule, or
 * undefined when the schedule is used up. `schedule[i]` is the delay before attempt i + 1 (the
 * first entry is the initial delay), in seconds.
 */
export function nextDelayMs(
  schedule: readonly number[],
  attemptsMade: number,
  random: () => number = Math.random,
): number | undefined {
  const seconds = schedule[attemptsMade];
  if (seconds === undefined) return undefined;
  return Math.round(seconds * 1000 * (1 - JITTER + 2 * JITTER * random()));
}

/**
 * A `Retry-After` header (seconds, or an HTTP date) as a delay clamped to [1 s, 1 h], or
 * undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - nowMs;
  }
  return Math.min(Math.max(ms, RETRY_AFTER_MIN_MS), RETRY_AFTER_MAX_MS);
}
