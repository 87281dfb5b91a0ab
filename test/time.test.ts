import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseRfc3339, toIso } from "../src/time.js";

const at = (iso: string) => Date.parse(iso) / 1000;

describe("parseRfc3339", () => {
  it.each([
    ["2026-05-22T08:08:00Z", "2026-05-22T08:08:00Z"],
    ["2026-05-22t08:08:00z", "2026-05-22T08:08:00Z"],
    ["2026-05-22T10:08:00+02:00", "2026-05-22T08:08:00Z"],
    ["2026-05-22T03:38:00-04:30", "2026-05-22T08:08:00Z"],
    ["2026-05-22T08:08:00.999999Z", "2026-05-22T08:08:00Z"],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"],
    ["2026-12-31T23:59:60Z", "2026-12-31T23:59:59Z"],
    ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"],
    ["0099-06-01T00:00:00Z", "0099-06-01T00:00:00Z"],
  ])("%s → %s", (input, expected) => {
    const seconds = parseRfc3339(input);
    expect(seconds).toBeDefined();
    expect(toIso(seconds!)).toBe(expected);
  });

  it.each([
    "",
    "2026-05-22",
    "2026-05-22 08:08:00Z",
    "2026-05-22T08:08Z",
    "2026-02-30T00:00:00Z",
    "2025-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-05-22T24:00:00Z",
    "2026-05-22T08:60:00Z",
    "2026-05-22T08:08:00+24:00",
    "2026-05-22T08:08:00",
    "2026-05-22T08:08:00+0200",
    "+02026-05-22T08:08:00Z",
    "１２３４-05-22T08:08:00Z",
  ])("refuses %j", (input) => {
    expect(parseRfc3339(input)).toBeUndefined();
  });

  it("agrees with Date.parse on ordinary times", () => {
    expect(parseRfc3339("2026-05-22T08:08:00Z")).toBe(at("2026-05-22T08:08:00Z"));
  });
});

describe("toIso", () => {
  it("formats any second of the years 1-9999 as the Date would, fractions cut off", () => {
    const min = Date.parse("0001-01-01T00:00:00Z") / 1000;
    const max = Date.parse("9999-12-31T23:59:59Z") / 1000;
    const seconds = fc.oneof(
      fc.integer({ min, max }),
      fc.double({ min, max, noNaN: true }),
      // Around day boundaries, where the cached day must change.
      fc
        .tuple(
          fc.integer({ min: min / 86_400, max: Math.floor(max / 86_400) }),
          fc.integer({ min: -2, max: 2 }),
        )
        .map(([day, s]) => Math.min(max, Math.max(min, day * 86_400 + s))),
    );
    fc.assert(
      fc.property(fc.array(seconds, { minLength: 1, maxLength: 5 }), (list) => {
        for (const s of list)
          expect(toIso(s)).toBe(`${new Date(Math.floor(s) * 1000).toISOString().slice(0, 19)}Z`);
      }),
      { numRuns: 2000 },
    );
  });
});
