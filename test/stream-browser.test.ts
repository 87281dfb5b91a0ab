import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeps } from "../src/deps.js";
import { buildApp } from "../src/http/app.js";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { until } from "./support/bell-page.js";
import { launchChromium, type Seen, startConsoleServer } from "./support/browser.js";
import { ADMIN_TOKEN, startHarness } from "./support/harness.js";
import { call, freePort, runCli, spawnServer } from "./support/process.js";

/** The README's reopen pattern, exactly as printed there. */
const README_SNIPPET = (() => {
  const readme = readFileSync(join(import.meta.dirname, "../README.md"), "utf8");
  const marker = readme.indexOf("<!-- test/stream-browser.test.ts runs this block in Chromium -->");
  const start = readme.indexOf("```js\n", marker) + "```js\n".length;
  return readme.slice(start, readme.indexOf("```", start));
})();

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(() => browser?.close());

const received = (page: Page) => page.evaluate("window.__seen") as Promise<number[]>;

describe.each(BACKENDS)("EventSource in Chromium on %s", (backend) => {
  it("heals by itself across a server restart: the same ticket reconnects and the outage's row arrives without a reload", async () => {
    const db = await freshDatabase(backend);
    const admin = "restart_admin_token_0123456789abcdef";
    const env = { DATABASE_URL: db.url, BELFRY_ADMIN_TOKEN: admin, BELFRY_WEBHOOK_WORKER: "false" };
    const port = await freePort();
    let server = await spawnServer(env, port);
    const seen: Seen[] = [];
    const consoleServer = await startConsoleServer(port, seen);
    const context = await browser.newContext();
    try {
      const user = (await call(server.url, "POST", "/admin/v1/users", admin, { email: "es@example.com" }))
        .json;
      const key = (await call(server.url, "POST", `/admin/v1/users/${user.id}/keys`, admin, { name: "k" }))
        .json.key;
      const pay = (id: string) => ({
        id,
        type: "system.payment.received",
        user_id: user.id,
        data: { amount_cents: 100, balance_cents: 100 },
      });
      consoleServer.pages.set(
        "/plain",
        `<!doctype html><script>
          window.__seen = []; window.__opens = 0;
          fetch("/api/v1/me/notifications/stream-tickets", { method: "POST", headers: { authorization: "Bearer ${key}" } })
            .then((r) => r.json())
            .then(({ ticket }) => {
              const source = (window.__source = new EventSource("/api/v1/me/notifications/stream?ticket=" + ticket));
              source.addEventListener("open", () => window.__opens++);
              source.addEventListener("unread-count", (e) => (window.__count = JSON.parse(e.data).count));
              source.addEventListener("notification", (e) => window.__seen.push(Number(e.lastEventId)));
            });
        </script>`,
      );
      const page = await context.newPage();
      await page.goto(`${consoleServer.url}/plain`);
      // The first unread-count says the stream has read where the feed stands (the open event
      // alone comes as soon as the headers do).
      await until(async () => (await page.evaluate("window.__count")) === 0, "the stream");
      expect((await call(server.url, "POST", "/admin/v1/events", admin, pay("before"))).status).toBe(202);
      await until(async () => (await received(page)).length === 1, "the first row");

      expect(await server.sigterm()).toBe(0);
      const ingested = await runCli(["admin", "ingest", "-"], env, JSON.stringify(pay("during")));
      expect(ingested.code).toBe(0);
      server = await spawnServer(env, port);

      await until(async () => (await received(page)).length === 2, "the outage's row", 20_000);
      const ids = await received(page);
      expect(ids[1]).toBeGreaterThan(ids[0]!);
      expect(await page.evaluate("window.__source.readyState")).toBe(1); // OPEN
      // The reconnect re-sent the same ticket with Last-Event-ID, as EventSource does.
      const streams = seen.filter((s) => s.url.includes("/stream?ticket="));
      const last = streams.at(-1)!;
      expect(last.url).toBe(streams[0]!.url);
      expect(last.headers["last-event-id"]).toBe(String(ids[0]));
    } finally {
      await context.close();
      await consoleServer.close();
      await server.kill9();
      await db.drop();
    }
  });

  it("runs the README's reopen pattern: after the ticket expired, a fresh ticket resumes with last_event_id", async () => {
    let now = 1_790_000_000;
    const h = await startHarness(backend, { clock: () => now });
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    const port = (h.app.server.address() as { port: number }).port;
    const seen: Seen[] = [];
    const consoleServer = await startConsoleServer(port, seen);
    const context = await browser.newContext();
    let back: Awaited<ReturnType<typeof buildApp>> | undefined;
    try {
      const u = await h.userWithKey("reopen");
      consoleServer.pages.set(
        "/readme",
        `<!doctype html><p id="badge"></p><script>
          const BELFRY = "";
          const headers = { authorization: "Bearer ${u.key}" };
          const badge = document.getElementById("badge");
          window.__seen = [];
          const show = (n) => window.__seen.push(n.id);
          ${README_SNIPPET}
        </script>`,
      );
      const page = await context.newPage();
      await page.goto(`${consoleServer.url}/readme`);
      await page.locator("#badge").filter({ hasText: "0" }).waitFor(); // the stream's first count
      await h.pay(u.id, `one-${u.id}`);
      await until(async () => (await received(page)).length === 1, "the first row");
      expect(await page.locator("#badge").textContent()).toBe("1");

      // A long outage: the server is down past the ticket's life, and a row is added meanwhile.
      await h.app.close();
      now += 600;
      back = await buildApp({ deps: createDeps(h.store, { clock: () => now }), adminToken: ADMIN_TOKEN });
      const during = await back.inject({
        method: "POST",
        url: "/admin/v1/events",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        payload: JSON.stringify({
          id: `two-${u.id}`,
          type: "system.payment.received",
          user_id: u.id,
          data: { amount_cents: 200, balance_cents: 300 },
        }),
      });
      expect(during.statusCode).toBe(202);
      await back.listen({ port, host: "127.0.0.1" });

      await until(async () => (await received(page)).length === 2, "the outage's row", 20_000);
      const [first, second] = await received(page);
      expect(second).toBeGreaterThan(first!);
      expect(await page.locator("#badge").textContent()).toBe("2");
      const streams = seen.filter((s) => s.url.includes("/stream?ticket="));
      const tickets = new Set(streams.map((s) => new URL(s.url, "http://x").searchParams.get("ticket")));
      expect(tickets.size).toBe(2); // the expired ticket was refused, a fresh one took over
      expect(streams.at(-1)!.url).toContain(`last_event_id=${first}`);
    } finally {
      await context.close();
      await consoleServer.close();
      await back?.close();
      await h.close();
    }
  });
});
