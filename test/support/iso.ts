/**
 * `1779437280` → `"2026-05-22T08:08:00Z"`: how the API writes a time (RFC 3339, UTC, whole
 * seconds). Written here rather than imported from src/, so the tests check the server's own.
 */
export const iso = (seconds: number): string => `${new Date(seconds * 1000).toISOString().slice(0, 19)}Z`;
