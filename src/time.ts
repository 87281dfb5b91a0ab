/** Belfry keeps every time as whole unix seconds; the API shows RFC 3339 UTC with a `Z`. */

/** The clock operations read for recorded times, in whole unix seconds; tests may pass their own. */
export type Clock = () => number;

/**
 * The wall clock in epoch milliseconds, for what is scheduled or leased finer than a second
 * (webhook retries, delivery leases, signature timestamps). Elapsed times measured for timeouts
 * use `performance.now()` instead, which no clock change can move.
 */
export type ClockMs = () => number;

/** Epoch milliseconds, now: the one reading of the system's wall clock. */
export const systemClockMs: ClockMs = () => Date.now();

/** Whole seconds since the epoch, now. */
export const systemClock: Clock = () => Math.floor(systemClockMs() / 1000);

const DAY_S = 86_400;
/** The last day {@link toIso} formatted, and its `YYYY-MM-DDT`: a page's rows mostly share one. */
let lastDay = Number.NaN;
let lastDayPrefix = "";
const twoDigits = (n: number) => (n < 10 ? `0${n}` : String(n));

/**
 * `1779437280` → `"2026-05-22T08:08:00Z"` (a fraction is cut off). A Date formats the day, only
 * when it differs from the last call's (a feed page formats 100 times: this was a tenth of its
 * CPU); the time of day is arithmetic.
 */
export function toIso(seconds: number): string {
  const whole = Math.floor(seconds);
  const day = Math.floor(whole / DAY_S);
  if (day !== lastDay) {
    // toISOString is always `YYYY-MM-DDTHH:MM:SS.sssZ` for the years Belfry accepts.
    lastDayPrefix = new Date(day * DAY_S * 1000).toISOString().slice(0, 11);
    lastDay = day;
  }
  const inDay = whole - day * DAY_S;
  return `${lastDayPrefix}${twoDigits(Math.floor(inDay / 3600))}:${twoDigits(Math.floor(inDay / 60) % 60)}:${twoDigits(inDay % 60)}Z`;
}

export function toIsoOrNull(seconds: number | null): string | null {
  return seconds === null ? null : toIso(seconds);
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 date-time with any offset into unix seconds, truncating fractions.
 * Returns `undefined` for anything else, including impossible dates such as `2026-02-30`.
 */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second, offHour, offMinute] = [1, 2, 3, 4, 5, 6, 8, 9].map((i) =>
    Number(m[i] ?? 0),
  ) as [number, number, number, number, number, number, number, number];
  if (hour > 23 || minute > 59 || second > 60 || offHour > 23 || offMinute > 59) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day); // not Date.UTC: that maps years 0–99 to 1900–1999
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day)
    return undefined;
  // RFC 3339 allows a leap second (:60); it counts as the minute's last second.
  d.setUTCHours(hour, minute, Math.min(second, 59));
  const offset = (offHour * 60 + offMinute) * 60 * (m[7] === "-" ? -1 : 1);
  return d.getTime() / 1000 - offset;
}
