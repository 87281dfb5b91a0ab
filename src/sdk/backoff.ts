/** The first retry waits about this long; each later one twice as long. */
export const INITIAL_RETRY_DELAY_MS = 500;
/** No backoff step waits longer than this. */
export const MAX_RETRY_DELAY_MS = 8000;
/** A `Retry-After` longer than this is not waited out: the error goes to the caller instead. */
export const MAX_RETRY_AFTER_MS = 60_000;

/**
 * The wait before retry number `retry` (0 for the first): exponential, capped, with "equal
 * jitter" — somewhere in the upper half of the step — so clients that failed together do not
 * retry together, yet never retry immediately.
 *
 * @example
 * backoffDelay(0, Math.random()); // 250–500 ms
 * backoffDelay(2, Math.random()); // 1000–2000 ms
 */
export function backoffDelay(retry: number, random: number, initialMs = INITIAL_RETRY_DELAY_MS): number {
  const step = Math.min(MAX_RETRY_DELAY_MS, initialMs * 2 ** retry);
  return step / 2 + (random * step) / 2;
}

/**
 * The wait a `Retry-After` asks for, plus up to a quarter more of jitter (at most one second),
 * so a crowd of clients told "1" spreads out a little.
 *
 * @example
 * retryAfterDelay(1000, Math.random()); // 1000–1250 ms
 */
export function retryAfterDelay(retryAfterMs: number, random: number): number {
  return retryAfterMs + random * Math.min(1000, retryAfterMs / 4);
}

/**
 * `Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110); undefined when absent or
 * unreadable.
 *
 * @example
 * parseRetryAfter("2"); // 2
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

/** Error codes that mean the connection was never made, so no request reached the server. */
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/**
 * True when a fetch failure certainly happened before the request was sent (connection refused,
 * DNS failure). Node's fetch says so in `cause.code` (or in each error of an AggregateError when
 * several addresses were tried); browsers never say, so there this is always false.
 */
export function failedBeforeSending(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | null)?.cause as
    | { code?: unknown; errors?: unknown }
    | undefined;
  if (cause === undefined || cause === null) return false;
  if (typeof cause.code === "string" && NOT_SENT_CODES.has(cause.code)) return true;
  return (
    Array.isArray(cause.errors) &&
    cause.errors.length > 0 &&
    cause.errors.every((e: { code?: unknown }) => typeof e?.code === "string" && NOT_SENT_CODES.has(e.code))
  );
}

/** Waits `ms`, or less if `signal` aborts (then it rejects with the signal's reason). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
