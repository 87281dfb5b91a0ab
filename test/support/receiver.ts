import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_WEBHOOKS, type WebhookConfig } from "../../src/config.js";

/** One request a receiver got. */
export interface Received {
  at: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What the receiver answers: a status (and headers/body), or "hang" to never answer. */
export type Reply = { status: number; headers?: Record<string, string>; body?: string } | "hang";

/**
 * A real HTTP webhook receiver on 127.0.0.1 that records every request. `replies` is consumed
 * in order; when it runs out, `fallback` answers (204 by default).
 */
export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  replies: Reply[];
  fallback: Reply;
  /** Connections opened to it so far, and how many of them have closed. */
  connections: number;
  closedConnections: number;
  /** Closes the connections that are open but not serving a request. */
  closeIdle(): void;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const receiver = {
    received,
    replies: [] as Reply[],
    fallback: { status: 204 } as Reply,
    connections: 0,
    closedConnections: 0,
  } as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({
        at: Date.now(),
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      });
      const reply = receiver.replies.shift() ?? receiver.fallback;
      if (reply === "hang") return;
      res.writeHead(reply.status, reply.headers ?? {}).end(reply.body ?? "");
    });
  });
  server.on("connection", (socket) => {
    receiver.connections++;
    socket.on("close", () => receiver.closedConnections++);
  });
  receiver.closeIdle = () => server.closeIdleConnections();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  receiver.port = port;
  receiver.url = `http://127.0.0.1:${port}/hooks`;
  receiver.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

/** Webhook settings for tests: http and loopback allowed, a fast schedule, quick polling. */
export const testWebhooks = (overrides: Partial<WebhookConfig> = {}): WebhookConfig => ({
  ...DEFAULT_WEBHOOKS,
  allowHttp: true,
  allowNetworks: ["127.0.0.0/8", "::1/128"],
  scheduleS: [0, 1, 1, 1],
  timeoutMs: 2000,
  pollMs: 50,
  ...overrides,
});

/** Polls `check` until it returns a truthy value (which it returns), or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 15_000,
  what = "condition",
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
