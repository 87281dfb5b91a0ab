const unsafe = (c: string) => c <= " " || c === "\u007f" || /\s/.test(c);

/**
 * The URL to navigate to for a notification's `link`, or undefined when it is not a
 * console-relative path. Only `/path` is followed: not `//host` or `/\host` (browsers read both as
 * another host), no scheme (`javascript:`, `https:`), and no whitespace or control characters,
 * which URL parsing strips and could turn `/\t/host` into `//host`.
 */
export function safeLink(link: string | null | undefined, base: string): string | undefined {
  if (typeof link !== "string" || !/^\/(?![/\\])/.test(link) || [...link].some(unsafe)) return undefined;
  const url = new URL(link, base);
  return url.origin === new URL(base).origin ? url.href : undefined;
}
