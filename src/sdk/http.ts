import {
  backoffDelay,
  failedBeforeSending,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  retryAfterDelay,
  sleep,
} from "./backoff.js";
import { type BelfryError, ConnectionError, errorFromResponse, TimeoutError } from "./errors.js";

/** The options of BelfryClient and BelfryAdmin. */
export interface ClientOptions {
  /** Where Belfry answers, e.g. `https://belfry.example.com` (no trailing path needed). */
  baseUrl: string;
  /** A user key (`bf_…`), a session token (`bfs_…`), or for BelfryAdmin the admin token. */
  token: string;
  /** Retries of a failed request that is safe to repeat. Default 2. */
  maxRetries?: number;
  /** Budget of one attempt, answer body included. Default 30,000 ms. */
  timeoutMs?: number;
  /** The fetch to use; default the global one (Node ≥ 20, browsers). */
  fetch?: typeof fetch;
}

/**
 * When a failed request may be sent again:
 * - `safe`: repeating it cannot do anything twice (reads, PUT/PATCH/DELETE, and the POSTs that
 *   Belfry makes idempotent) — retried on connection errors, timeouts, 408, 429 and 5xx;
 * - `unsent`: a create — retried only when it certainly never reached the server.
 */
export type RetryPolicy = "safe" | "unsent";

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
export type QueryValue = string | number | boolean | undefined;

export interface RequestSpec {
  method: Method;
  path: string;
  query?: Record<string, QueryValue> | undefined;
  body?: unknown;
  retry: RetryPolicy;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Answer a 304 instead of throwing (conditional reads). */
  allowNotModified?: boolean;
}

/** A decoded answer: its JSON (undefined for 204/304), status and headers. */
export interface HttpResponse<T> {
  data: T;
  status: number;
  headers: Headers;
}

/** The request core shared by BelfryClient and BelfryAdmin: auth, JSON, timeouts, retries. */
export class HttpCore {
  readonly baseUrl: string;
  readonly maxRetries: number;
  readonly timeoutMs: number;
  readonly #token: string;
  readonly #fetch: typeof fetch;

  constructor({ baseUrl, token, maxRetries = 2, timeoutMs = 30_000, fetch: fetchFn }: ClientOptions) {
    if (!baseUrl) throw new TypeError("baseUrl is required");
    if (!token) throw new TypeError("token is required");
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#token = token;
    this.maxRetries = Math.max(0, Math.floor(maxRetries));
    this.timeoutMs = timeoutMs;
    // Called unbound: browsers refuse `window.fetch` called as another object's method.
    this.#fetch = fetchFn ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** The absolute URL of `path` with `query` (undefined values left out). */
  url(path: string, query: Record<string, QueryValue> = {}): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined) params.set(name, String(value));
    }
    const search = params.toString();
    return `${this.baseUrl}${path}${search ? `?${search}` : ""}`;
  }

  /** The request headers every call sends. */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.#token}`, ...extra };
  }

  /** Sends one request, retrying it as `spec.retry` allows, and decodes the answer. */
  async request<T>(spec: RequestSpec): Promise<HttpResponse<T>> {
    for (let retry = 0; ; retry++) {
      let error: BelfryError;
      let retryable: boolean;
      try {
        const response = await this.#attempt<T>(spec);
        if (!(response instanceof Error)) return response;
        error = response;
        retryable = spec.retry === "safe" && isRetryableStatus(error.status);
        // A DELETE whose earlier attempt may have gone through: "not found" now means done.
        if (retry > 0 && spec.method === "DELETE" && error.status === 404) {
          return { data: undefined as T, status: 204, headers: new Headers() };
        }
      } catch (failure) {
        if (spec.signal?.aborted) throw spec.signal.reason;
        if (!(failure instanceof ConnectionError)) throw failure;
        error = failure;
        retryable =
          spec.retry === "safe" || (!(failure instanceof TimeoutError) && failedBeforeSending(failure.cause));
      }
      if (!retryable || retry >= this.maxRetries) throw error;
      const asked = error.retryAfter;
      if (asked !== undefined && asked * 1000 > MAX_RETRY_AFTER_MS) throw error;
      const delay =
        asked !== undefined
          ? retryAfterDelay(asked * 1000, Math.random())
          : backoffDelay(retry, Math.random());
      await sleep(delay, spec.signal);
    }
  }

  /** One attempt within the timeout: the decoded answer, or the error an answer amounts to. */
  async #attempt<T>(spec: RequestSpec): Promise<HttpResponse<T> | BelfryError> {
    const headers = this.headers({ accept: "application/json", ...spec.headers });
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers["content-type"] = "application/json";
    }
    return this.withTimeout(spec.signal, async (signal) => {
      const response = await this.fetch(this.url(spec.path, spec.query), {
        method: spec.method,
        headers,
        body,
        signal,
      });
      const text = await response.text();
      const requestId = response.headers.get("x-request-id") ?? undefined;
      if (response.ok || (response.status === 304 && spec.allowNotModified)) {
        return {
          data: (text ? JSON.parse(text) : undefined) as T,
          status: response.status,
          headers: response.headers,
        };
      }
      let envelope: unknown;
      try {
        envelope = text ? JSON.parse(text) : undefined;
      } catch {
        envelope = undefined; // a proxy's HTML error page
      }
      return errorFromResponse(
        response.status,
        envelope,
        requestId,
        parseRetryAfter(response.headers.get("retry-after")),
      );
    });
  }

  /**
   * Runs `work` with a signal that aborts after `timeoutMs` or when `outer` aborts. A timeout
   * becomes TimeoutError; any other transport failure, ConnectionError.
   */
  async withTimeout<R>(
    outer: AbortSignal | undefined,
    work: (signal: AbortSignal) => Promise<R>,
    timeoutMs = this.timeoutMs,
  ): Promise<R> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const forward = () => controller.abort(outer?.reason);
    if (outer?.aborted) forward();
    outer?.addEventListener("abort", forward, { once: true });
    try {
      return await work(controller.signal);
    } catch (error) {
      if (outer?.aborted) throw outer.reason;
      throw this.transportError(error, timedOut ? timeoutMs : undefined);
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", forward);
    }
  }

  /** The SDK error for a request that got no usable answer (`timeoutMs` set: it timed out). */
  transportError(error: unknown, timeoutMs?: number): ConnectionError {
    if (timeoutMs !== undefined) {
      return new TimeoutError({
        status: 0,
        type: "timeout_error",
        message: `No answer from Belfry within ${timeoutMs} ms.`,
        cause: error,
      });
    }
    const message =
      error instanceof SyntaxError
        ? "Belfry's answer was not valid JSON."
        : `Could not reach Belfry at ${this.baseUrl}: ${describe(error)}`;
    return new ConnectionError({ status: 0, type: "connection_error", message, cause: error });
  }

  /** The configured fetch. */
  fetch(input: string, init: RequestInit): Promise<Response> {
    return this.#fetch(input, init);
  }
}

/** 408, 429 and 5xx other than 501 may succeed when repeated. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501);
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === "string") return cause.code;
  if (typeof cause?.message === "string" && cause.message) return cause.message;
  return error instanceof Error ? error.message : String(error);
}
