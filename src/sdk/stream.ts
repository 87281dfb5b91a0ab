import { createParser, type EventSourceMessage } from "eventsource-parser";
import { parseRetryAfter, sleep } from "./backoff.js";
import { ApiError, BelfryError, ConnectionError, errorFromResponse } from "./errors.js";
import type { HttpCore } from "./http.js";
import type { FeedStreamEvent } from "./types.js";

/** Options of `client.stream()`. */
export interface StreamOptions {
  /** Resume after this notification id (e.g. the last one a previous stream delivered). */
  lastEventId?: number;
  /** Ends the stream cleanly (the iteration just stops). */
  signal?: AbortSignal;
  /**
   * Called each time the connection drops or a reconnection attempt fails, with why; the stream
   * then reconnects by itself. Useful to show "offline" meanwhile.
   */
  onDisconnect?: (error: BelfryError) => void;
  /**
   * A connection that receives nothing — not even a heartbeat — for this long is presumed dead
   * (a laptop that slept, a silent network drop) and is replaced. Default 45,000 ms: three of
   * Belfry's default 15 s heartbeats.
   */
  idleTimeoutMs?: number;
}

const STREAM_PATH = "/api/v1/me/notifications/stream";
/** Until the server says otherwise with `retry:`. */
const DEFAULT_RETRY_MS = 1000;
const MAX_RECONNECT_DELAY_MS = 30_000;
const KNOWN_EVENTS = new Set(["notification", "unread-count", "read", "reset"]);

/**
 * The live stream as an async iterable of typed events, over fetch (so it sends the
 * Authorization header, which EventSource cannot). It reconnects by itself after a drop —
 * waiting the server's `retry:` and backing off with jitter while attempts fail — and resumes
 * after the last event id seen, so nothing is missed or repeated. It ends when `signal` aborts;
 * an answer that reconnecting cannot fix (401, 403, 404, 400…) ends it with that typed error.
 */
export async function* feedStream(
  core: HttpCore,
  options: StreamOptions = {},
): AsyncGenerator<FeedStreamEvent> {
  const { signal, onDisconnect, idleTimeoutMs = 45_000 } = options;
  let lastEventId = options.lastEventId;
  let retryMs = DEFAULT_RETRY_MS;
  let failures = 0;
  while (!signal?.aborted) {
    const connection = new AbortController();
    const abort = () => connection.abort();
    let idled = false;
    const idleOut = () => {
      idled = true;
      connection.abort();
    };
    signal?.addEventListener("abort", abort, { once: true });
    let dropped: BelfryError | undefined;
    try {
      const response = await open(core, lastEventId, connection);
      if (!response.ok || !response.body) throw await refusal(response);
      const queue: FeedStreamEvent[] = [];
      const parser = createParser({
        onEvent: (message) => {
          const event = decode(message);
          if (message.id !== undefined && /^\d+$/.test(message.id)) lastEventId = Number(message.id);
          if (event) queue.push(event);
        },
        onRetry: (ms) => {
          retryMs = ms;
        },
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let idle = setTimeout(idleOut, idleTimeoutMs);
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          clearTimeout(idle);
          idle = setTimeout(idleOut, idleTimeoutMs);
          parser.feed(value);
          if (queue.length > 0) failures = 0; // a working connection: the next drop starts afresh
          while (queue.length > 0) yield queue.shift() as FeedStreamEvent;
        }
      } finally {
        clearTimeout(idle);
        reader.cancel().catch(() => {});
      }
      dropped = new ConnectionError({ status: 0, type: "connection_error", message: "The stream ended." });
    } catch (error) {
      if (signal?.aborted) return;
      if (error instanceof BelfryError && !(error instanceof ConnectionError) && !isTransient(error))
        throw error;
      dropped =
        error instanceof BelfryError
          ? error
          : new ConnectionError({
              status: 0,
              type: "connection_error",
              message: idled
                ? `The stream was silent for ${idleTimeoutMs} ms.`
                : `The stream broke: ${error instanceof Error ? error.message : String(error)}`,
              cause: error,
            });
    } finally {
      signal?.removeEventListener("abort", abort);
      connection.abort();
    }
    if (signal?.aborted) return;
    onDisconnect?.(dropped);
    // At least the server's `retry:`, growing by half while attempts fail (a restart that takes
    // seconds is caught within seconds), with up to a quarter of jitter on top.
    const step = Math.min(MAX_RECONNECT_DELAY_MS, retryMs * 1.5 ** failures);
    const asked = (dropped.retryAfter ?? 0) * 1000;
    failures++;
    try {
      await sleep(Math.max(asked, step + (Math.random() * step) / 4), signal);
    } catch {
      return; // aborted while waiting
    }
  }
}

/**
 * Opens the stream, bounding only the wait for the answer's headers by the timeout (the body is
 * endless). `?last_event_id=` rather than the header, which browsers' CORS would have to allow.
 */
async function open(core: HttpCore, lastEventId: number | undefined, connection: AbortController) {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    connection.abort();
  }, core.timeoutMs);
  try {
    return await core.fetch(core.url(STREAM_PATH, { last_event_id: lastEventId }), {
      method: "GET",
      headers: core.headers({ accept: "text/event-stream" }),
      signal: connection.signal,
    });
  } catch (error) {
    throw core.transportError(error, timedOut ? core.timeoutMs : undefined);
  } finally {
    clearTimeout(timer);
  }
}

/** The typed error of a stream that was not opened (or not an event stream). */
async function refusal(response: Response): Promise<BelfryError> {
  const requestId = response.headers.get("x-request-id") ?? undefined;
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  if (response.ok) {
    return new ApiError({
      status: response.status,
      type: "api_error",
      message: "The answer was not an event stream.",
      requestId,
    });
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  return errorFromResponse(response.status, body, requestId, retryAfter);
}

/** 408, 429 and 5xx answers are passing trouble: reconnect. Everything else ends the stream. */
function isTransient(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  return typeof status === "number" && (status === 408 || status === 429 || status >= 500);
}

function decode(message: EventSourceMessage): FeedStreamEvent | undefined {
  if (message.event === undefined || !KNOWN_EVENTS.has(message.event)) return undefined;
  const data = JSON.parse(message.data);
  if (message.event === "notification") return { type: "notification", id: data.id, data };
  return { type: message.event, data } as FeedStreamEvent;
}
