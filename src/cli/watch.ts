import { parseArgs } from "node:util";
import { backoffDelay, sleep } from "../sdk/backoff.js";
import {
  AuthenticationError,
  BelfryClient,
  BelfryError,
  ConnectionError,
  PermissionError,
} from "../sdk/client.js";
import { UsageError } from "./usage-error.js";
import {
  LATEST_COUNT,
  rendererFor,
  WATCH_FORMATS,
  type WatchFormat,
  type WatchState,
} from "./watch-formats.js";

export const WATCH_USAGE = `belfry watch --url <url> --key <key> [--format <format>] [--once]

Prints the unread count for a status bar, then a new line on every change (live stream, else
ETag polling), until interrupted.

  --url      Belfry's address (or BELFRY_URL)
  --key      a user key (or BELFRY_KEY; prefer the variable: arguments show in ps)
  --format   ${WATCH_FORMATS.join(" | ")} (default plain)
  --once     print one line (one frame for xbar) and exit

Exit codes: 0 done (or interrupted); 1 the key was refused, or the URL is not a Belfry;
2 usage error, or with --once Belfry could not be reached (the stale marker was printed).`;

export interface WatchIo {
  env: Record<string, string | undefined>;
  write(text: string): void;
  warn(text: string): void;
  /** Aborts when the process is asked to stop. */
  signal: AbortSignal;
}

/** Failures worth retrying: no answer, or a 5xx / 429 / 408. Anything else is final. */
const isTransient = (error: unknown) =>
  error instanceof ConnectionError ||
  (error instanceof BelfryError && (error.status >= 500 || error.status === 429 || error.status === 408));
const isRefused = (error: unknown) =>
  error instanceof AuthenticationError || error instanceof PermissionError;

/** Runs `belfry watch`; resolves with the exit code. */
export async function runWatch(argv: string[], io: WatchIo): Promise<number> {
  let values: { url?: string; key?: string; format?: string; once?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: "string" },
        key: { type: "string" },
        format: { type: "string", default: "plain" },
        once: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${WATCH_USAGE}`);
  }
  if (values.help) {
    io.write(`${WATCH_USAGE}\n`);
    return 0;
  }
  const url = values.url ?? io.env.BELFRY_URL;
  const key = values.key ?? io.env.BELFRY_KEY;
  const format = values.format as WatchFormat;
  if (!url || !key)
    throw new UsageError(`--url and --key (or BELFRY_URL and BELFRY_KEY) are required.\n\n${WATCH_USAGE}`);
  if (!WATCH_FORMATS.includes(format)) {
    throw new UsageError(`--format must be one of: ${WATCH_FORMATS.join(", ")}`);
  }

  const client = new BelfryClient({ baseUrl: url, token: key, maxRetries: 1, timeoutMs: 10_000 });
  const renderer = rendererFor(format);
  const state: WatchState = { count: undefined, version: undefined, latest: [], stale: false };
  let printed: string | undefined;
  const emit = () => {
    const frame = renderer.frame(state, printed === undefined);
    const text = renderer.frame(state, false).join("\n");
    if (text === printed) return;
    printed = text;
    io.write(`${frame.join("\n")}\n`);
  };
  const refused = (error: BelfryError) => {
    io.warn(
      `belfry watch: ${isRefused(error) ? "the key was refused" : "Belfry refused the request"}: ${error.message}${error.requestId ? ` (request ${error.requestId})` : ""}\n`,
    );
    return 1;
  };
  const goneStale = (error: unknown) => {
    state.stale = true;
    state.reason = error instanceof Error ? error.message : String(error);
    emit();
  };
  /** Fresh count (and version) in hand: fetch the latest titles if shown, then print. */
  const settle = async (count: number, version: number | undefined) => {
    state.count = count;
    state.version = version;
    if (renderer.needsLatest) {
      state.latest = (
        await client.notifications.list({ page_size: LATEST_COUNT }, { signal: io.signal })
      ).items;
    }
    state.stale = false;
    state.reason = undefined;
    emit();
  };

  if (renderer.header.length > 0) io.write(`${renderer.header.join("\n")}\n`);

  if (values.once) {
    try {
      const poll = await client.notifications.pollUnreadCount(undefined, { signal: io.signal });
      await settle(poll.count ?? 0, poll.version);
      return 0;
    } catch (error) {
      if (isTransient(error)) {
        goneStale(error);
        return 2;
      }
      if (error instanceof BelfryError) return refused(error);
      throw error;
    }
  }

  // Live: follow the stream, which reconnects by itself (stale meanwhile).
  try {
    for await (const event of client.stream({ signal: io.signal, onDisconnect: goneStale })) {
      if (event.type !== "unread-count") continue; // every change ends with a new count
      try {
        await settle(event.data.count, event.data.version);
      } catch (error) {
        if (io.signal.aborted) return 0;
        if (!isTransient(error)) throw error;
        goneStale(error);
      }
    }
    return 0; // interrupted
  } catch (error) {
    if (io.signal.aborted) return 0;
    if (isRefused(error)) return refused(error as BelfryError);
    if (!(error instanceof BelfryError)) throw error;
    io.warn(`belfry watch: the live stream is not available (${error.message}); polling instead.\n`);
  }
  return poll(client, io, settle, goneStale, refused);
}

/**
 * ETag polling at the interval the server advises (`X-Poll-Interval`; a 304 costs the server one
 * indexed read); while Belfry cannot be reached, stale, retried with jittered backoff (1–2 s,
 * doubling to 4–8 s).
 */
async function poll(
  client: BelfryClient,
  io: WatchIo,
  settle: (count: number, version: number | undefined) => Promise<void>,
  goneStale: (error: unknown) => void,
  refused: (error: BelfryError) => number,
): Promise<number> {
  let etag: string | undefined;
  let failures = 0;
  let count = 0;
  let version: number | undefined;
  while (!io.signal.aborted) {
    let waitMs: number;
    try {
      const answer = await client.notifications.pollUnreadCount(etag, { signal: io.signal });
      etag = answer.etag;
      if (answer.changed) {
        count = answer.count ?? 0;
        version = answer.version;
      }
      // Unchanged and not stale: nothing to print, nothing more to fetch.
      if (answer.changed || failures > 0) await settle(count, version);
      failures = 0;
      waitMs = Math.max(1, answer.pollIntervalSeconds ?? 60) * 1000;
    } catch (error) {
      if (io.signal.aborted) break;
      if (!isTransient(error)) {
        if (error instanceof BelfryError) return refused(error);
        throw error;
      }
      goneStale(error);
      waitMs = backoffDelay(failures++, Math.random(), 2000);
    }
    try {
      await sleep(Math.min(waitMs, 60_000), io.signal);
    } catch {
      break; // interrupted
    }
  }
  return 0;
}
