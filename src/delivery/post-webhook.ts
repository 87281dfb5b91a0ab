import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { ResolvedAddress } from "../network/address-policy.js";
import type { ErrorClass } from "../store/schema.js";

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

/**
 * POSTs `body` to `url`, connecting to exactly `target` (the address the SSRF guard checked; no
 * second DNS lookup can swap it) with TLS verified against the URL's host name. Redirects are not
 * followed. Any 2xx is success; the whole attempt gets `timeoutMs`.
 */
export function postWebhook(
  url: URL,
  target: ResolvedAddress,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<AttemptOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  // Node may ask for one address or, with autoSelectFamily, for all of them.
  const lookup: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: ResolvedAddress[]) => void)(null, [target]);
    } else callback(null, target.address, target.family);
  };
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: AttemptOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(outcome);
    };
    const req = request(url, {
      method: "POST",
      headers: { ...headers, "content-length": Buffer.byteLength(body).toString() },
      lookup,
      servername: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      agent: false,
    });
    const timer = setTimeout(
      () => finish({ status: null, body: null, latencyMs: elapsed(), errorClass: "timeout" }),
      timeoutMs,
    );
    req.on("error", (error) =>
      finish({ status: null, body: null, latencyMs: elapsed(), errorClass: classify(error) }),
    );
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        const text = Buffer.concat(chunks).subarray(0, RESPONSE_BODY_LIMIT).toString("utf8");
        const outcome: AttemptOutcome = {
          status,
          // PostgreSQL text cannot hold U+0000; a receiver's stray NUL should not break the record.
          body: text.replaceAll("\u0000", "\ufffd"),
          latencyMs: elapsed(),
          errorClass: status >= 200 && status < 300 ? null : "http_status",
        };
        const retryAfter = res.headers["retry-after"];
        if (typeof retryAfter === "string") outcome.retryAfter = retryAfter;
        finish(outcome);
      };
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= RESPONSE_BODY_LIMIT) done();
      });
      res.on("end", done);
      res.on("error", done);
    });
    req.end(body);
  });
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
