import { createServer } from "node:http";
import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { bellOf, connectionOf, until } from "./support/bell-page.js";
import { launchChromium } from "./support/browser.js";
import { call, spawnServer } from "./support/process.js";

/** Launched by the first test, shared by the rest. */
let browser: Browser | undefined;
afterAll(() => browser?.close());

const ADMIN = "cross_origin_admin_token_0123456789abcdef";

/**
 * The bell embedded by a console on another origin: `/bell.js` and the feed through CORS, with a
 * browser session token (`bfs_…`) minted by the console's backend. Needs session tokens and
 * BELFRY_CORS_ORIGINS. Ending the user's sessions then refuses the very next request.
 */
describe.each(BACKENDS)("<belfry-bell> on another origin on %s", (backend) => {
  it("loads /bell.js and the feed cross-origin with a session token, live, until the session ends", async () => {
    const pages = new Map<string, string>();
    const host = createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(pages.get(req.url ?? "") ?? "");
    });
    await new Promise<void>((resolve) => host.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(host.address() as { port: number }).port}`;
    const db = await freshDatabase(backend);
    const server = await spawnServer({
      DATABASE_URL: db.url,
      BELFRY_ADMIN_TOKEN: ADMIN,
      BELFRY_WEBHOOK_WORKER: "false",
      BELFRY_CORS_ORIGINS: origin,
    });
    let context: BrowserContext | undefined;
    try {
      const user = (await call(server.url, "POST", "/admin/v1/users", ADMIN, { email: "x@example.com" }))
        .json;
      const session = await call(server.url, "POST", `/admin/v1/users/${user.id}/sessions`, ADMIN, {});
      expect(session.status).toBe(201);
      expect(session.json.token).toMatch(/^bfs_/);
      const pay = (id: string) =>
        call(server.url, "POST", "/admin/v1/events", ADMIN, {
          id,
          type: "system.payment.received",
          user_id: user.id,
          data: { amount_cents: 100, balance_cents: 100 },
        });
      await pay("x-1");
      browser ??= await launchChromium();
      context = await browser.newContext();
      pages.set(
        "/",
        `<!doctype html><script type="module" src="${server.url}/bell.js"></script>
         <belfry-bell base-url="${server.url}" token="${session.json.token}"></belfry-bell>`,
      );
      const page = await context.newPage();
      await page.goto(`${origin}/`);
      const bell = bellOf(page);
      await bell.unread(1);
      await until(async () => (await connectionOf(page)) === "stream", "the stream");
      await pay("x-2");
      await bell.unread(2);
      await bell.button.click();
      await until(() => bell.items.count().then((n) => n === 2), "two items");

      // The console signs the user out: the platform ends their sessions, and the page's next
      // request with the token is refused (through CORS, so the page can read the 401).
      const read = () =>
        page.evaluate(
          async ([base, token]) => {
            const r = await fetch(`${base}/api/v1/me/notifications/unread-count`, {
              headers: { authorization: `Bearer ${token}` },
            });
            return { status: r.status, body: (await r.json()) as { error?: { type: string } } };
          },
          [server.url, session.json.token as string],
        );
      expect((await read()).status).toBe(200);
      const ended = await call(server.url, "DELETE", `/admin/v1/users/${user.id}/sessions`, ADMIN);
      expect(ended.status).toBe(204);
      const after = await read();
      expect(after.status).toBe(401);
      expect(after.body.error?.type).toBe("authentication_error");
      // Its live stream was closed too: the bell is no longer on the stream.
      await until(async () => (await connectionOf(page)) !== "stream", "the stream to close");
    } finally {
      await context?.close();
      await server.kill9();
      await new Promise((resolve) => host.close(resolve));
      await db.drop();
    }
  });
});
