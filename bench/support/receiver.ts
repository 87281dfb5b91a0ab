import { createServer, type Server } from "node:http";

/**
 * Webhook receivers for the benchmark: each answers every POST 204, records what it got (so a
 * bare client can replay the very same requests) and when, and counts the connections opened to
 * it. Kept apart from the tests' receiver so that benchmarks never import from test/.
 */

/** One request as a receiver got it: enough to send it again. */
export interface ReceivedRequest {
  port: number;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** performance.now() when the whole request had arrived. */
  at: number;
}

export interface BenchReceiver {
  url: string;
  port: number;
  received: ReceivedRequest[];
  /** Connections opened to this receiver since the last `reset()`. */
  connections(): number;
  /** Forgets what was received and counted. */
  reset(): void;
  close(): Promise<void>;
}

/** Headers a replay sends again (the rest — host, connection, content-length — are the client's). */
const REPLAYED = ["content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"];

export async function startReceiver(): Promise<BenchReceiver> {
  const received: ReceivedRequest[] = [];
  let connections = 0;
  let port = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const name of REPLAYED) {
        const value = req.headers[name];
        if (typeof value === "string") headers[name] = value;
      }
      received.push({
        port,
        path: req.url ?? "/",
        headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: performance.now(),
      });
      res.writeHead(204).end();
    });
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    received,
    connections: () => connections,
    reset() {
      received.length = 0;
      connections = 0;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
