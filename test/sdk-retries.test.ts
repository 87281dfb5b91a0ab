import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { BelfryAdmin } from "../src/sdk/admin.js";
import { backoffDelay, parseRetryAfter, retryAfterDelay } from "../src/sdk/backoff.js";
import {
  ApiError,
  BelfryClient,
  ConnectionError,
  RateLimitError,
  TimeoutError,
  UnavailableError,
} from "../src/sdk/client.js";
import { freePort } from "./support/process.js";

/**
 * Retry and timeout behaviour of the SDK's request core, against a local HTTP server that answers
 * what each case needs (transport behaviour only; Belfry itself is exercised in sdk-client and
 * sdk-admin).
 */

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface Fake {
  url: string;
  port: number;
  /** "METHOD path" of every request received, in order. */
  requests: string[];
  close(): Promise<void>;
}

const open: Server[] = [];

async function fake(handler: Handler, port = 0): Promise<Fake> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    req.on("end", () => handler(req, res, requests.length));
  });
  open.push(server);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    "content-type": "application/json",
    "x-request-id": `req_fake${status}`,
    ...headers,
  });
  res.end(JSON.stringify(body));
}

const envelope = (type: string, message: string) => ({ error: { type, message } });

afterEach(async () => {
  for (const server of open.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe("SDK retries and timeouts", () => {
  it("retries a 503 after its Retry-After, then succeeds", async () => {
    const server = await fake((_req, res, n) =>
      n === 1
        ? json(res, 503, envelope("unavailable_error", "The store is unavailable."), { "retry-after": "1" })
        : json(res, 200, { count: 4 }),
    );
    const client = new BelfryClient({ baseUrl: server.url, token: "bf_test" });
    expect(await client.notifications.unreadCount()).toEqual({ count: 4 });
    expect(server.requests).toEqual([
      "GET /api/v1/me/notifications/unread-count",
      "GET /api/v1/me/notifications/unread-count",
    ]);
  });

  it("honours a 429's Retry-After, and hands back one too long to wait out", async () => {
    const server = await fake((req, res, n) => {
      if (req.url?.startsWith("/api/v1/me/notification-settings")) {
        return json(res, 429, envelope("rate_limit_error", "Slow down."), { "retry-after": "120" });
      }
      return n === 1
        ? json(res, 429, envelope("rate_limit_error", "Slow down."), { "retry-after": "1" })
        : json(res, 200, { marked_read: 2 });
    });
    const client = new BelfryClient({ baseUrl: server.url, token: "bf_test" });
    // mark-all-read is a POST, but an idempotent one: retried.
    expect(await client.notifications.markAllRead()).toEqual({ marked_read: 2 });
    expect(server.requests).toHaveLength(2);

    const error = await client.settings.get().catch((e) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ status: 429, type: "rate_limit_error", retryAfter: 120 });
    expect(error.requestId).toBe("req_fake429");
    expect(server.requests).toHaveLength(3); // not retried
  });

  it("never retries a create that reached the server", async () => {
    const server = await fake((_req, res) => json(res, 500, envelope("api_error", "Something broke.")));
    const admin = new BelfryAdmin({ baseUrl: server.url, token: "adm" });
    const error = await admin.users.create({ email: "a@example.com" }).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 500, type: "api_error", message: "Something broke." });
    const client = new BelfryClient({ baseUrl: server.url, token: "bf_test" });
    await expect(client.webhooks.create({ url: "https://example.com/h" })).rejects.toBeInstanceOf(ApiError);
    await expect(client.webhooks.rotateSecret(1)).rejects.toBeInstanceOf(ApiError);
    expect(server.requests).toEqual([
      "POST /admin/v1/users",
      "POST /api/v1/me/webhooks",
      "POST /api/v1/me/webhooks/1/rotate-secret",
    ]);
  });

  it("retries a GET answered 502 by a proxy (an HTML page, not the envelope)", async () => {
    const server = await fake((_req, res, n) => {
      if (n <= 2) {
        res.writeHead(502, { "content-type": "text/html" });
        return res.end("<html>Bad Gateway</html>");
      }
      json(res, 200, { items: [], total: 0, page: 1, page_size: 50 });
    });
    const client = new BelfryClient({ baseUrl: server.url, token: "bf_test" });
    expect((await client.notifications.list({ unread: true, page_size: 50 })).total).toBe(0);
    expect(server.requests).toHaveLength(3);
    expect(server.requests[0]).toBe("GET /api/v1/me/notifications?unread=true&page_size=50");

    const proxyDown = await fake((_req, res) => {
      res.writeHead(502, { "content-type": "text/html" });
      res.end("<html>Bad Gateway</html>");
    });
    const error = await new BelfryClient({ baseUrl: proxyDown.url, token: "t", maxRetries: 0 }).notifications
      .unreadCount()
      .catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 502, type: "api_error", requestId: undefined });
  });

  it("retries even a create when the connection was refused (it never reached the server)", async () => {
    const port = await freePort();
    let calls = 0;
    let server: Fake | undefined;
    const admin = new BelfryAdmin({
      baseUrl: `http://127.0.0.1:${port}`,
      token: "adm",
      fetch: async (input, init) => {
        calls++;
        try {
          return await fetch(input, init);
        } finally {
          // Nothing listens for the first attempt; the server is up for the retry.
          server ??= await fake(
            (_req, res) => json(res, 201, { id: 1, email: "a@example.com", name: null, created_at: "x" }),
            port,
          );
        }
      },
    });
    expect((await admin.users.create({ email: "a@example.com" })).id).toBe(1);
    expect(calls).toBe(2);
    expect(server?.requests).toEqual(["POST /admin/v1/users"]);
  });

  it("gives up on a refused connection after maxRetries with a ConnectionError", async () => {
    const port = await freePort();
    let calls = 0;
    const client = new BelfryClient({
      baseUrl: `http://127.0.0.1:${port}`,
      token: "bf_test",
      maxRetries: 1,
      fetch: (input, init) => {
        calls++;
        return fetch(input, init);
      },
    });
    const error = await client.notifications.unreadCount().catch((e) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).not.toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ status: 0, type: "connection_error" });
    expect(error.message).toContain("ECONNREFUSED");
    expect(calls).toBe(2);
  });

  it("raises TimeoutError when no answer comes in time; a create is not sent twice", async () => {
    const server = await fake(() => {}); // never answers
    const client = new BelfryClient({ baseUrl: server.url, token: "bf_test", timeoutMs: 200, maxRetries: 0 });
    const error = await client.notifications.unreadCount().catch((e) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ status: 0, type: "timeout_error" });

    const admin = new BelfryAdmin({ baseUrl: server.url, token: "adm", timeoutMs: 200, maxRetries: 2 });
    await expect(admin.orgs.create({ name: "Acme", owner_user_id: 1 })).rejects.toBeInstanceOf(TimeoutError);
    expect(server.requests).toEqual(["GET /api/v1/me/notifications/unread-count", "POST /admin/v1/orgs"]);

    // A read that timed out is retried.
    await expect(
      new BelfryClient({ baseUrl: server.url, token: "t", timeoutMs: 200, maxRetries: 1 }).settings.get(),
    ).rejects.toBeInstanceOf(TimeoutError);
    expect(server.requests.filter((r) => r.startsWith("GET /api/v1/me/notification-settings"))).toHaveLength(
      2,
    );
  });

  it("makes exactly 1 + maxRetries attempts, then throws the last answer's error", async () => {
    const server = await fake((_req, res) =>
      json(res, 503, envelope("unavailable_error", "The store is unavailable."), { "retry-after": "0" }),
    );
    for (const [maxRetries, attempts] of [
      [undefined, 3],
      [0, 1],
      [4, 5],
    ] as const) {
      server.requests.length = 0;
      const client = new BelfryClient({ baseUrl: server.url, token: "bf_test", maxRetries });
      const error = await client.notifications.markRead(7).catch((e) => e);
      expect(error).toBeInstanceOf(UnavailableError);
      expect(error).toMatchObject({ status: 503, requestId: "req_fake503", retryAfter: 0 });
      expect(server.requests).toEqual(Array(attempts).fill("POST /api/v1/me/notifications/7/mark-read"));
    }
  });

  it("takes a 404 on a repeated DELETE as done (the first attempt went through)", async () => {
    const server = await fake((_req, res, n) =>
      n === 1
        ? json(res, 503, envelope("unavailable_error", "x"), { "retry-after": "0" })
        : json(res, 404, envelope("not_found_error", "No such webhook endpoint.")),
    );
    const client = new BelfryClient({ baseUrl: server.url, token: "bf_test" });
    await expect(client.webhooks.delete(3)).resolves.toBeUndefined();
    expect(server.requests).toEqual(["DELETE /api/v1/me/webhooks/3", "DELETE /api/v1/me/webhooks/3"]);
  });

  it("stops waiting to retry when the caller aborts", async () => {
    const server = await fake((_req, res) =>
      json(res, 503, envelope("unavailable_error", "x"), { "retry-after": "30" }),
    );
    const client = new BelfryClient({ baseUrl: server.url, token: "bf_test" });
    const controller = new AbortController();
    const pending = client.notifications.unreadCount({ signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    expect(server.requests).toHaveLength(1);
  });

  it("bounds its jittered backoff", () => {
    const samples = Array.from({ length: 200 }, () => Math.random());
    for (let retry = 0; retry < 8; retry++) {
      const step = Math.min(8000, 500 * 2 ** retry);
      const delays = samples.map((r) => backoffDelay(retry, r));
      for (const d of delays) {
        expect(d).toBeGreaterThanOrEqual(step / 2);
        expect(d).toBeLessThanOrEqual(step);
      }
      expect(new Set(delays).size).toBeGreaterThan(100); // jittered, not one fixed wait
    }
    expect(backoffDelay(0, 0)).toBe(250);
    expect(backoffDelay(20, 1)).toBe(8000); // capped
    for (const r of samples) {
      expect(retryAfterDelay(1000, r)).toBeGreaterThanOrEqual(1000);
      expect(retryAfterDelay(1000, r)).toBeLessThanOrEqual(1250);
      expect(retryAfterDelay(30_000, r)).toBeLessThanOrEqual(31_000);
    }
    expect(parseRetryAfter("3")).toBe(3);
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThanOrEqual(4);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it("replaces a stream connection that went silent, resuming after the last id", async () => {
    const server = await fake((_req, res, n) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (n === 1) {
        // One event, then silence: no heartbeat ever comes.
        res.write('retry: 50\n\nid: 9\nevent: notification\ndata: {"id":9,"title":"t"}\n\n');
        return;
      }
      res.end('id: 9\nevent: unread-count\ndata: {"count":1,"version":3}\n\n');
    });
    const client = new BelfryClient({ baseUrl: server.url, token: "bf_test" });
    const controller = new AbortController();
    const disconnects: string[] = [];
    const seen: string[] = [];
    for await (const event of client.stream({
      signal: controller.signal,
      idleTimeoutMs: 300,
      onDisconnect: (e) => disconnects.push(e.message),
    })) {
      seen.push(event.type);
      if (event.type === "unread-count") controller.abort();
    }
    expect(seen).toEqual(["notification", "unread-count"]);
    expect(disconnects).toEqual(["The stream was silent for 300 ms."]);
    expect(server.requests).toEqual([
      "GET /api/v1/me/notifications/stream",
      "GET /api/v1/me/notifications/stream?last_event_id=9",
    ]);
  });
});
