import { type Agent, type IncomingHttpHeaders, request } from "node:http";

/** A request written as-is: the path is not normalised (`..`, `%00` and raw bytes go through). */
export interface RawRequest {
  method: string;
  /** Path and query; each character must be in U+0021–U+00FF (sent as that byte). */
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

export type RawAnswer =
  | { kind: "answer"; status: number; headers: IncomingHttpHeaders; body: string }
  /** A 200 event stream, cut off as soon as its headers arrived (it never ends by itself). */
  | { kind: "stream"; status: number }
  /** The connection failed before an answer arrived. */
  | { kind: "failed"; code: string };

/**
 * Sends one request over a real socket and reads the whole answer. `hangAfterMs` is a liveness
 * guard, not a performance bound: an answer that has not ended by then is reported as a hang.
 */
export function sendRaw(
  base: { host: string; port: number },
  agent: Agent,
  req: RawRequest,
  hangAfterMs = 20_000,
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    // Node frames a GET or HEAD body only when told its length.
    const headers =
      req.body === undefined ? req.headers : { "content-length": String(req.body.length), ...req.headers };
    const r = request({ ...base, agent, method: req.method, path: req.path, headers });
    const timer = setTimeout(() => {
      r.destroy();
      resolve({ kind: "failed", code: "HANG" });
    }, hangAfterMs);
    const done = (answer: RawAnswer) => {
      clearTimeout(timer);
      resolve(answer);
    };
    r.on("response", (res) => {
      const type = String(res.headers["content-type"] ?? "");
      if (res.statusCode === 200 && type.startsWith("text/event-stream")) {
        res.destroy();
        r.destroy();
        done({ kind: "stream", status: 200 });
        return;
      }
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        done({
          kind: "answer",
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", (e: NodeJS.ErrnoException) => done({ kind: "failed", code: e.code ?? e.message }));
    });
    r.on("error", (e: NodeJS.ErrnoException) => done({ kind: "failed", code: e.code ?? e.message }));
    r.end(req.body);
  });
}
