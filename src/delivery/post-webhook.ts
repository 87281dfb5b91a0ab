import { type Agent, request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { ErrorClass } from "../store/schema.js";
import { TargetError } from "../webhooks/endpoint-url.js";
import type { ConnectionPool } from "./connection-pool.js";

/** How much of a response body an attempt keeps. */
export const RESPONSE_BODY_LIMIT = 2048;

/** What one HTTP attempt found. */
export interface AttemptOutcome {
  /** The response status, when a response arrived. */
  status: number | null;
  /** The first 2 KB of the response body, as text. */
  body: string | null;
  latencyMs: number;
  /** null on a 2xx. */
  errorClass: ErrorClass | null;
  retryAfter?: string;
}

/** Errors of a kept connection that the server closed just as it was reused. */
const STALE_CONNECTION = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

/**
 * POSTs `body` to `url` over the pool's connections to its origin. A new connection goes only to
 * the address the SSRF guard checked for it (see ConnectionPool), with TLS verified against the
 * URL's host name. Redirects are not followed. Any 2xx is success; the whole attempt gets
 * `timeoutMs`.
 *
 * The first 2 KB of the response body are kept and no more is read: a longer body ends the
 * connection (it cannot be reused with the rest unread). A request that fails on a reused
 * connection before any response — the server closed it as it was picked up — is sent once
 * more, on a fresh connection.
 */
export async function postWebhook(
  pool: ConnectionPool,
  url: URL,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<AttemptOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const deadline = started + timeoutMs;
  const outgoing = { ...headers, "content-length": Buffer.byteLength(body).toString() };
  const agent = pool.acquire(url);
  try {
    const first = await send(url, agent, outgoing, body, deadline, elapsed);
    if (first !== "stale") return first;
    const second = await send(url, pool.fresh(url), outgoing, body, deadline, elapsed);
    // A fresh connection is never reused, so it cannot be stale; typed for completeness.
    return second === "stale"
      ? { status: null, body: null, latencyMs: elapsed(), errorClass: "refused" }
      : second;
  } finally {
    pool.release(url);
  }
}

/** One request on `agent`: its outcome, or "stale" when a reused connection failed before any answer. */
function send(
  url: URL,
  agent: Agent,
  headers: Record<string, string>,
  body: string,
  deadline: number,
  elapsed: () => number,
): Promise<AttemptOutcome | "stale"> {
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: AttemptOutcome | "stale", destroy: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (destroy) req.destroy();
      resolve(outcome);
    };
    const req = request({ ...requestOptions(url), method: "POST", headers, agent });
    const timer = setTimeout(
      () => finish({ status: null, body: null, latencyMs: elapsed(), errorClass: "timeout" }, true),
      Math.max(0, deadline - performance.now()),
    );
    let answered = false;
    req.on("error", (error) => {
      const code = (error as { code?: string }).code ?? "";
      if (!answered && req.reusedSocket && STALE_CONNECTION.has(code) && performance.now() < deadline) {
        finish("stale", true);
        return;
      }
      if (error instanceof TargetError) {
        // Refused before any packet was sent: nothing was attempted on the network.
        finish({ status: null, body: null, latencyMs: 0, errorClass: error.errorClass }, true);
        return;
      }
      finish({ status: null, body: null, latencyMs: elapsed(), errorClass: classify(error) }, true);
    });
    req.on("response", (res) => {
      answered = true;
      readCapped(res, (text, whole) => {
        const status = res.statusCode ?? 0;
        const outcome: AttemptOutcome = {
          status,
          // PostgreSQL text cannot hold U+0000; a receiver's stray NUL should not break the record.
          body: text.includes("\u0000") ? text.replaceAll("\u0000", "\ufffd") : text,
          latencyMs: elapsed(),
          errorClass: status >= 200 && status < 300 ? null : "http_status",
        };
        // Read only where the schedule honours it (the headers object is built on first use).
        const retryAfter = status === 429 || status === 503 ? res.headers["retry-after"] : undefined;
        if (typeof retryAfter === "string") outcome.retryAfter = retryAfter;
        // A body read to its end leaves the connection reusable; one cut short does not.
        finish(outcome, !whole);
      });
    });
    req.end(body);
  });
}

/**
 * Reads at most RESPONSE_BODY_LIMIT bytes of `res` and calls `done` once with them as text, and
 * whether that was the whole body. It stops reading as soon as the body is known to be longer.
 */
function readCapped(res: IncomingMessage, done: (text: string, whole: boolean) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let called = false;
  const call = (whole: boolean) => {
    if (called) return;
    called = true;
    done(Buffer.concat(chunks).toString("utf8"), whole);
  };
  res.on("data", (chunk: Buffer) => {
    const room = RESPONSE_BODY_LIMIT - size;
    if (room > 0) chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
    size += chunk.length;
    // Past the limit, or at it with more announced: the rest is not read.
    if (size > RESPONSE_BODY_LIMIT) call(false);
    else if (size === RESPONSE_BODY_LIMIT && Number(res.headers["content-length"] ?? 0) > size) call(false);
  });
  res.on("end", () => call(true));
  // A body cut off mid-way (the connection failed): keep what arrived; the connection is gone.
  res.on("error", () => call(false));
  res.on("aborted", () => call(false));
}

const options = new WeakMap<URL, { protocol: string; hostname: string; port: string; path: string }>();

/** The request options of `url`, worked out once per URL object (Node would on every request). */
function requestOptions(url: URL) {
  let o = options.get(url);
  if (!o) {
    o = {
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: url.port,
      path: `${url.pathname}${url.search}`,
    };
    options.set(url, o);
  }
  return o;
}

function classify(error: Error): ErrorClass {
  const code = (error as { code?: string }).code ?? "";
  if (["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NODATA", "ESERVFAIL"].includes(code)) return "dns";
  if (
    code.startsWith("ERR_TLS") ||
    code.startsWith("ERR_SSL") ||
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|EPROTO/.test(code)
  ) {
    return "tls";
  }
  if (code === "ETIMEDOUT") return "timeout";
  return "refused";
}
