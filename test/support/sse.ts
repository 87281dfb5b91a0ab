import { request } from "node:http";

/** One Server-Sent Event as a client sees it. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
  /** JSON-parsed `data`, when it parses. */
  // biome-ignore lint/suspicious/noExplicitAny: events are inspected field by field
  json?: any;
}

/** A live SSE connection: every event so far, comments counted, and ways to wait and close. */
export interface SseClient {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  events: SseEvent[];
  comments: number;
  /** Resolves once the server ended the stream. */
  ended: Promise<void>;
  /** Waits until `predicate` holds for the events received so far. */
  waitFor(predicate: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<SseEvent[]>;
  close(): void;
}

/**
 * Opens `url` as an EventSource would (GET, `Accept: text/event-stream`), over a real socket,
 * parsing the stream per the SSE spec. Resolves once the response headers arrive; a non-200
 * answer resolves too, with its body as one `error` event.
 */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: "text/event-stream", ...headers } });
    req.on("error", reject);
    req.on("response", (res) => {
      let buffer = "";
      let resolveEnded: () => void;
      const ended = new Promise<void>((r) => {
        resolveEnded = r;
      });
      const waiters = new Set<() => void>();
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events: [],
        comments: 0,
        ended,
        waitFor(predicate, timeoutMs = 5000) {
          return new Promise((ok, fail) => {
            const check = () => {
              if (!predicate(client.events)) return false;
              clearTimeout(timer);
              waiters.delete(check as () => void);
              ok(client.events);
              return true;
            };
            const timer = setTimeout(() => {
              waiters.delete(check as () => void);
              fail(
                new Error(`timed out; events so far: ${JSON.stringify(client.events.map((e) => e.event))}`),
              );
            }, timeoutMs);
            if (!check()) waiters.add(check as () => void);
          });
        },
        close: () => req.destroy(),
      };
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: SseEvent = { event: "message", data: "" };
          const data: string[] = [];
          let comment = false;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comment = true;
            const [field, ...rest] = line.split(":");
            const value = rest.join(":").replace(/^ /, "");
            if (field === "event") event.event = value;
            else if (field === "data") data.push(value);
            else if (field === "id") event.id = value;
          }
          if (comment && data.length === 0) {
            client.comments++;
            continue;
          }
          if (data.length === 0) continue; // e.g. the `retry:` line
          event.data = data.join("\n");
          try {
            event.json = JSON.parse(event.data);
          } catch {}
          client.events.push(event);
        }
        for (const check of [...waiters]) check();
      });
      const finish = () => resolveEnded();
      res.on("end", finish);
      res.on("close", finish);
      if (client.status !== 200) {
        let body = "";
        res.on("data", (c: string) => (body += c));
        res.on("end", () =>
          client.events.push({ event: "error", data: body, json: JSON.parse(body || "null") }),
        );
      }
      resolve(client);
    });
    req.end();
  });
}
