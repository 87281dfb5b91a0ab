import { describe, expect, it } from "vitest";
import { formatMoney } from "../src/catalog/money.js";

describe("formatMoney", () => {
  it.each([
    [0, "$0.00"],
    [5, "$0.05"],
    [100, "$1.00"],
    [2500, "$25.00"],
    [123450, "$1,234.50"],
    [-300, "-$3.00"],
    [-123456789, "-$1,234,567.89"],
    [100000000, "$1,000,000.00"],
    [Number.MAX_SAFE_INTEGER, "$90,071,992,547,409.91"],
    [-Number.MAX_SAFE_INTEGER, "-$90,071,992,547,409.91"],
  ])("%d cents → %s", (cents, text) => {
    expect(formatMoney(cents)).toBe(text);
  });
});
