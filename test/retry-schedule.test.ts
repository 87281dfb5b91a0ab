import { describe, expect, it } from "vitest";
import { nextDelayMs, retryAfterMs } from "../src/delivery/schedule.js";
import { DEFAULTS } from "../src/settings.js";

/** Pure checks of the webhook retry schedule: no store, no worker. */
describe("nextDelayMs", () => {
  const schedule = DEFAULTS.webhooks.scheduleS;

  it("gives each step's delay exactly at the jitter's midpoint", () => {
    expect(schedule.map((_, step) => nextDelayMs(schedule, step, () => 0.5))).toEqual(
      schedule.map((s) => s * 1000),
    );
  });

  it("jitters by at most ±20 %", () => {
    expect(nextDelayMs([300], 0, () => 0)).toBe(240_000);
    expect(nextDelayMs([300], 0, () => 1)).toBe(360_000);
    for (let i = 0; i < 100; i++) {
      const ms = nextDelayMs([5], 0) as number;
      expect(ms).toBeGreaterThanOrEqual(4000);
      expect(ms).toBeLessThanOrEqual(6000);
    }
  });

  it("is undefined once the schedule is used up", () => {
    expect(nextDelayMs(schedule, schedule.length)).toBeUndefined();
    expect(nextDelayMs([0, 1, 1, 1], 4)).toBeUndefined();
    expect(nextDelayMs([0, 1, 1, 1], 3, () => 0.5)).toBe(1000);
  });
});

describe("retryAfterMs", () => {
  const now = Date.parse("2026-05-22T08:08:00Z");

  it.each<[string | undefined, number | undefined]>([
    [undefined, undefined],
    ["", undefined],
    ["soon", undefined],
    ["120", 120_000],
    [" 30 ", 30_000],
    ["0", 1000], // clamped up to 1 s
    ["999999", 3_600_000], // clamped down to 1 h
    ["Fri, 22 May 2026 08:10:00 GMT", 120_000],
    ["Fri, 22 May 2026 08:00:00 GMT", 1000], // a date in the past: as soon as allowed
  ])("reads Retry-After %j as %j ms", (header, expected) => {
    expect(retryAfterMs(header, now)).toBe(expected);
  });
});
