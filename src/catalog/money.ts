/**
 * Renders integer cents as US dollars: `123450` → `$1,234.50`, `-300` → `-$3.00`.
 * Integer arithmetic only, so every safe integer renders exactly.
 */
export function formatMoney(cents: number): string {
  const abs = Math.abs(cents);
  const fraction = abs % 100;
  const dollars = String((abs - fraction) / 100).replace(/\B(?=(\d{3})+$)/g, ",");
  return `${cents < 0 ? "-" : ""}$${dollars}.${String(fraction).padStart(2, "0")}`;
}
