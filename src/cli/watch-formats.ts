import type { Notification } from "../sdk/types.js";

/** The status bars `belfry watch` speaks to, each in its own format. */
export const WATCH_FORMATS = ["waybar", "i3bar", "polybar", "tmux", "xbar", "json", "plain"] as const;
export type WatchFormat = (typeof WATCH_FORMATS)[number];

/** What a bar shows: the last count Belfry gave, and whether it is still current. */
export interface WatchState {
  /** The last unread count seen; undefined before the first answer. */
  count: number | undefined;
  /** The feed version of that count. */
  version: number | undefined;
  /** The newest notifications (xbar and json only). */
  latest: Notification[];
  /** True while Belfry cannot be reached: the count shown may be out of date. */
  stale: boolean;
  /** Why it is stale. */
  reason?: string | undefined;
}

/** How one bar format prints: lines once at start, then one frame per change. */
export interface WatchRenderer {
  header: string[];
  /** The frame's lines (several for xbar). `first`: nothing printed before it. */
  frame(state: WatchState, first: boolean): string[];
  /** Whether frames show the latest titles (fetched with each change). */
  needsLatest: boolean;
}

/** Newest notifications fetched for the formats that list them. */
export const LATEST_COUNT = 5;

const BELL = "🔔";
const klass = (s: WatchState) => (s.stale ? "stale" : (s.count ?? 0) > 0 ? "unread" : "none");
/** The count as a bar shows it: `3`, or `3?` / `?` while stale. */
const shown = (s: WatchState) => (s.count === undefined ? "?" : s.stale ? `${s.count}?` : String(s.count));
const plural = (n: number) => `${n} unread notification${n === 1 ? "" : "s"}`;

function tooltip(s: WatchState): string {
  if (s.stale) {
    const known = s.count === undefined ? "" : ` (last known: ${s.count} unread)`;
    return `Belfry unreachable: ${s.reason ?? "no answer"}${known}`;
  }
  return s.count ? plural(s.count) : "No unread notifications";
}

/** One line of the menu: unread rows marked, titles kept short. */
function titleLine(n: Notification): string {
  const title = n.title.replace(/[|\n\r]/g, " ");
  return `${n.read_at === null ? "● " : ""}${title.length > 60 ? `${title.slice(0, 59)}…` : title}`;
}

const RENDERERS: Record<WatchFormat, WatchRenderer> = {
  // Waybar's custom module with `return-type: json`: `class` drives the CSS, `alt` the icons.
  waybar: {
    header: [],
    needsLatest: false,
    frame: (s) => [JSON.stringify({ text: shown(s), alt: klass(s), tooltip: tooltip(s), class: klass(s) })],
  },
  // The i3bar protocol: a header, the opening of an endless array, then one status line (an
  // array of blocks) per line, each followed by a comma.
  i3bar: {
    header: [JSON.stringify({ version: 1 }), "["],
    needsLatest: false,
    frame: (s) => {
      const block: Record<string, unknown> = {
        full_text: `${BELL} ${shown(s)}`,
        short_text: shown(s),
        name: "belfry",
      };
      if (s.stale) block.color = "#888888";
      else if (s.count) block.color = "#FFCC00";
      return [`${JSON.stringify([block])},`];
    },
  },
  polybar: {
    header: [],
    needsLatest: false,
    frame: (s) => {
      const text = `${BELL} ${shown(s)}`;
      if (s.stale) return [`%{F#888888}${text}%{F-}`];
      return [s.count ? `%{F#FFCC00}${text}%{F-}` : text];
    },
  },
  tmux: {
    header: [],
    needsLatest: false,
    frame: (s) => {
      const text = `${BELL} ${shown(s)}`;
      if (s.stale) return [`#[fg=colour244]${text}#[default]`];
      return [s.count ? `#[fg=yellow]${text}#[default]` : text];
    },
  },
  // xbar (and SwiftBar): the menu-bar line, `---`, then the dropdown. Streaming plugins separate
  // frames with `~~~`.
  xbar: {
    header: [],
    needsLatest: true,
    frame: (s, first) => {
      const lines = first ? [] : ["~~~"];
      lines.push(s.stale ? `${BELL} ${shown(s)} | color=gray` : `${BELL} ${shown(s)}`, "---");
      if (s.stale) lines.push(tooltip(s));
      lines.push(...s.latest.map(titleLine));
      if (s.latest.length === 0 && !s.stale) lines.push("No notifications");
      return lines;
    },
  },
  json: {
    header: [],
    needsLatest: true,
    frame: (s) => [
      JSON.stringify({
        count: s.count ?? null,
        version: s.version ?? null,
        latest: s.latest,
        stale: s.stale,
      }),
    ],
  },
  // For scripts: the number, or `?` while it is not known to be current.
  plain: {
    header: [],
    needsLatest: false,
    frame: (s) => [s.stale || s.count === undefined ? "?" : String(s.count)],
  },
};

/** The renderer of a format. */
export const rendererFor = (format: WatchFormat): WatchRenderer => RENDERERS[format];
