import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { bellOf, connectionOf, isFocused, until } from "./support/bell-page.js";
import { type BellRig, launchChromium, startBellRig } from "./support/browser.js";
import { ADMIN_TOKEN } from "./support/harness.js";

const FEED = "/api/v1/me/notifications";

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(() => browser?.close());

describe.each(BACKENDS)("<belfry-bell> on %s", (backend) => {
  let rig: BellRig;
  let context: BrowserContext;
  beforeAll(async () => {
    rig = await startBellRig(backend);
  });
  afterAll(() => rig?.close());
  beforeEach(async () => {
    context = await browser.newContext();
    context.setDefaultTimeout(8000);
  });
  afterEach(() => context?.close());

  const user = () => rig.h.userWithKey("bell");
  const unreadCount = async (key: string) =>
    (await rig.h.request("GET", `${FEED}/unread-count`, { key })).json.count as number;
  const pay = (userId: number, id: string, extra: object = {}) =>
    rig.h.pay(userId, `${id}-${userId}`, { amount_cents: 2500, balance_cents: 3140 }, extra);

  it("shows the unread count on the badge and in the button's name, and hides the badge at 0", async () => {
    const u = await user();
    for (const id of ["a", "b", "c"]) await pay(u.id, id);
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(3);
    expect(await bell.badge.textContent()).toBe("3");
    expect(await bell.badge.isVisible()).toBe(true);
    expect(await bell.button.getAttribute("aria-haspopup")).toBe("dialog");
    expect(await bell.button.getAttribute("aria-expanded")).toBe("false");
    await rig.h.request("POST", `${FEED}/mark-all-read`, { key: u.key });
    await bell.unread(0);
    expect(await bell.badge.isVisible()).toBe(false);
  });

  it("updates badge and list live on ingest, without a reload, announcing it politely and emitting events", async () => {
    const u = await user();
    const page = await rig.openBell(context, { token: u.key });
    await page.evaluate(`(() => {
      window.__marker = "same page";
      window.__events = [];
      for (const type of ["belfry:notification", "belfry:count"])
        document.addEventListener(type, (e) => window.__events.push([type, e.detail]));
    })()`);
    const bell = bellOf(page);
    await bell.unread(0);
    await bell.button.click();
    await bell.status.filter({ hasText: "No notifications yet." }).waitFor();
    await until(() => rig.openStreams() > 0, "the stream");
    await pay(u.id, "live");
    await bell.unread(1);
    await bell.items.filter({ hasText: "Payment received · $25.00" }).waitFor();
    expect(await bell.live.getAttribute("aria-live")).toBe("polite");
    await until(
      async () => (await bell.live.textContent()) === "New notification: Payment received · $25.00",
      "the announcement",
    );
    expect(await page.evaluate("window.__marker")).toBe("same page");
    const events = (await page.evaluate("window.__events")) as [string, { count?: number }][];
    expect(events.map(([type]) => type)).toContain("belfry:notification");
    expect(events).toContainEqual(["belfry:count", { count: 1 }]);
  });

  it("walks by keyboard: Tab to the bell, Enter opens the dialog with focus inside, arrows and Tab move between items, Escape closes and returns focus", async () => {
    const u = await user();
    for (const id of ["k1", "k2", "k3"]) await pay(u.id, id);
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(3);
    await page.keyboard.press("Tab"); // the console's own link
    await page.keyboard.press("Tab");
    expect(await isFocused(bell.button)).toBe(true);
    await page.keyboard.press("Enter");
    const dialog = bell.host.getByRole("dialog", { name: "Notifications" });
    await dialog.waitFor();
    expect(await bell.button.getAttribute("aria-expanded")).toBe("true");
    await until(() => bell.items.count().then((n) => n === 3), "three items");
    const focusedIndex = async () => {
      for (let i = 0; i < 3; i++) if (await isFocused(bell.items.nth(i))) return i;
      return (await isFocused(bell.panel)) ? -1 : -2;
    };
    expect(await focusedIndex()).toBeGreaterThanOrEqual(-1); // in the dialog
    await page.keyboard.press("ArrowDown");
    const first = await focusedIndex();
    expect(first).toBeGreaterThanOrEqual(0);
    await page.keyboard.press("Home");
    expect(await focusedIndex()).toBe(0);
    await page.keyboard.press("ArrowDown");
    expect(await focusedIndex()).toBe(1);
    await page.keyboard.press("ArrowDown");
    expect(await focusedIndex()).toBe(2);
    await page.keyboard.press("ArrowDown");
    expect(await focusedIndex()).toBe(2);
    await page.keyboard.press("ArrowUp");
    expect(await focusedIndex()).toBe(1);
    await page.keyboard.press("Shift+Tab");
    expect(await focusedIndex()).toBe(0);
    await page.keyboard.press("Tab");
    expect(await focusedIndex()).toBe(1);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    expect(await bell.button.getAttribute("aria-expanded")).toBe("false");
    expect(await isFocused(bell.button)).toBe(true);
    // Opening and walking the panel marked nothing read.
    expect(await unreadCount(u.key)).toBe(3);
    await bell.unread(3);
  });

  it("marks an item read, then navigates to its link, by click and by Enter", async () => {
    const u = await user();
    await pay(u.id, "nav1");
    await rig.h.lowBalance(
      u.id,
      `low-${u.id}`,
      { balance_cents: 120, threshold_cents: 500 },
      { link: "/settings/alerts" },
    );
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(2);
    await bell.button.click();
    const low = bell.items.filter({ hasText: "Low balance" });
    await low.click();
    await page.waitForURL(`${rig.console.url}/settings/alerts`);
    const markIndex = rig.seen.findIndex((s) => s.method === "POST" && /\/\d+\/mark-read$/.test(s.url));
    const navIndex = rig.seen.findIndex((s) => s.server === "console" && s.url === "/settings/alerts");
    expect(markIndex).toBeGreaterThanOrEqual(0);
    expect(markIndex).toBeLessThan(navIndex);
    expect(await unreadCount(u.key)).toBe(1);

    await page.goBack();
    const back = bellOf(page);
    await back.unread(1);
    await back.button.click();
    const payment = back.items.filter({ hasText: "Payment received" });
    await payment.waitFor();
    await payment.focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(`${rig.console.url}/billing`);
    expect(await unreadCount(u.key)).toBe(0);
  });

  it("follows only console-relative links: never a scheme, another host or a path browsers read as one", async () => {
    const u = await user();
    const links = [
      "javascript:window.__pwned=1",
      "//evil.example/x",
      "https://evil.example/",
      "/\\evil.example",
    ];
    for (const [i] of links.entries()) await pay(u.id, `link-${i}`);
    const rows = (await rig.h.request("GET", FEED, { key: u.key })).json.items as { id: number }[];
    // Belfry refuses such links at ingest; a row that holds one anyway (an older producer, a
    // hand-edited database) must still not move the browser.
    for (const [i, row] of rows.entries()) {
      await rig.h.store.db
        .updateTable("notifications")
        .set({ link: links[i]! })
        .where("user_id", "=", u.id)
        .where("id", "=", row.id)
        .execute();
    }
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(4);
    await bell.button.click();
    await until(() => bell.items.count().then((n) => n === 4), "four items");
    for (let i = 0; i < 4; i++) await bell.items.nth(i).click();
    await bell.unread(0); // each was marked read…
    expect(page.url()).toMatch(/\/console\/\d+$/); // …and none navigated
    expect(await page.evaluate("window.__pwned")).toBeUndefined();
    expect(rig.seen.some((s) => s.server === "console" && s.url.includes("evil"))).toBe(false);
  });

  it("marks everything read with one control", async () => {
    const u = await user();
    for (const id of ["m1", "m2", "m3"]) await pay(u.id, id);
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(3);
    await bell.button.click();
    await until(() => bell.unreadItems.count().then((n) => n === 3), "three unread items");
    await bell.control("Mark all as read").click();
    await bell.unread(0);
    await until(() => bell.unreadItems.count().then((n) => n === 0), "no unread items");
    expect(await bell.items.count()).toBe(3);
    expect(await unreadCount(u.key)).toBe(0);
  });

  it("pages with Load more, and switches between All and Unread", async () => {
    const u = await user();
    await rig.h.request("POST", "/admin/v1/events/batch", {
      key: ADMIN_TOKEN,
      body: {
        events: Array.from({ length: 12 }, (_, i) => ({
          id: `p-${u.id}-${i}`,
          type: "system.payment.received",
          user_id: u.id,
          data: { amount_cents: 100 + i, balance_cents: 1 },
        })),
      },
    });
    const all = (await rig.h.request("GET", `${FEED}?page_size=12`, { key: u.key })).json.items;
    for (const row of all.slice(0, 4))
      await rig.h.request("POST", `${FEED}/${row.id}/mark-read`, { key: u.key });
    const page = await rig.openBell(context, { token: u.key, "page-size": "5" });
    const bell = bellOf(page);
    await bell.unread(8);
    await bell.button.click();
    const count = (n: number) => until(() => bell.items.count().then((c) => c === n), `${n} items`);
    await count(5);
    await bell.control("Load more").click();
    await count(10);
    await bell.control("Load more").click();
    await count(12);
    expect(await bell.control("Load more").isVisible()).toBe(false);
    expect(await bell.items.first().textContent()).toContain("$1.11"); // newest first

    await bell.control("Unread").click();
    expect(await bell.control("Unread").getAttribute("aria-pressed")).toBe("true");
    await count(5);
    expect(await bell.unreadItems.count()).toBe(5);
    await bell.control("Load more").click();
    await count(8);
    expect(await bell.unreadItems.count()).toBe(8);
    await bell.control("All").click();
    await count(5);
    expect(await bell.control("All").getAttribute("aria-pressed")).toBe("true");
  });

  it("caps the badge at 99+ while the name keeps the exact count, and honours max-count", async () => {
    const u = await user();
    await rig.h.request("POST", "/admin/v1/events/batch", {
      key: ADMIN_TOKEN,
      body: {
        events: Array.from({ length: 120 }, (_, i) => ({
          id: `cap-${u.id}-${i}`,
          type: "system.payment.received",
          user_id: u.id,
          data: { amount_cents: 100, balance_cents: 1 },
        })),
      },
    });
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(120);
    expect(await bell.badge.textContent()).toBe("99+");
    // biome-ignore lint/suspicious/noExplicitAny: runs in the page
    await bell.host.evaluate((el: any) => el.setAttribute("max-count", "9"));
    await until(async () => (await bell.badge.textContent()) === "9+", "9+");
    await bell.unread(120);
  });

  it("renders titles and bodies as text, never as markup", async () => {
    const u = await user();
    await pay(u.id, "xss", {
      title: `<img src=x onerror="window.__pwned=1">`,
      body: "<b>bold</b> & <script>window.__pwned=2</script>",
    });
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(1);
    await bell.button.click();
    await bell.items.first().waitFor();
    expect(await bell.items.first().locator(".t").textContent()).toBe(
      `<img src=x onerror="window.__pwned=1">`,
    );
    expect(await bell.items.first().locator(".b").textContent()).toBe(
      "<b>bold</b> & <script>window.__pwned=2</script>",
    );
    expect(await bell.host.locator("img, b, script").count()).toBe(0);
    await page.waitForTimeout(200);
    expect(await page.evaluate("window.__pwned")).toBeUndefined();
  });

  it("asks tokenProvider for a new token when the token is refused, and retries once with it", async () => {
    const u = await user();
    await pay(u.id, "tp");
    const stale = await rig.h.request("POST", `/admin/v1/users/${u.id}/keys`, {
      key: ADMIN_TOKEN,
      body: { name: "stale" },
    });
    await rig.h.request("POST", `/admin/v1/keys/${stale.json.id}/revoke`, { key: ADMIN_TOKEN });
    rig.console.provider.token = u.key;
    rig.console.provider.calls = 0;
    const before = rig.seen.length;
    const page = await rig.openBell(context, { token: stale.json.key }, { tokenProvider: true });
    const bell = bellOf(page);
    await bell.unread(2); // the payment and the revocation notice
    expect(rig.console.provider.calls).toBe(1);
    const counts = rig.seen
      .slice(before)
      .filter((s) => s.server === "belfry" && s.url.endsWith("/unread-count"));
    expect(counts.map((s) => s.status)).toEqual([401, 200]);
    await until(() => rig.openStreams() > 0, "the stream, on a ticket taken with the new token");
    await pay(u.id, "tp2");
    await bell.unread(3);
  });

  it("speaks Chinese with locale=zh, relative times included", async () => {
    const u = await user();
    await pay(u.id, "zh");
    const page = await rig.openBell(context, { token: u.key, locale: "zh" });
    const bell = bellOf(page);
    await bell.host.getByRole("button", { name: "通知，1 条未读", exact: true }).waitFor();
    await bell.button.click();
    await bell.host.getByRole("dialog", { name: "通知" }).waitFor();
    await bell.control("全部标为已读").waitFor();
    await bell.items.first().waitFor();
    expect(await bell.items.first().locator("time").textContent()).toMatch(/现在|秒|分钟/);
  });
  it("says what is happening: loading, empty, offline, and an error with a way to try again", async () => {
    const u = await user();
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(0);
    await bell.button.click();
    await bell.status.filter({ hasText: "No notifications yet." }).waitFor();

    await context.setOffline(true);
    await bell.status.filter({ hasText: "You're offline." }).waitFor();
    await context.setOffline(false);
    await bell.status.filter({ hasText: "No notifications yet." }).waitFor();

    await pay(u.id, "err");
    await bell.control("Close notifications").click();
    await page.reload();
    await context.route("**/api/v1/me/notifications?**", (route) =>
      route.fulfill({
        status: 503,
        contentType: "application/json",
        body: JSON.stringify({ error: { type: "unavailable_error", message: "The store is unavailable." } }),
      }),
    );
    const again = bellOf(page);
    await again.unread(1);
    // Once the stream is up (its open re-syncs), nothing but the user retries the list.
    await until(async () => (await connectionOf(page)) === "stream", "the stream");
    await again.button.click();
    await again.status.filter({ hasText: "Notifications couldn't be loaded." }).waitFor();
    await context.unroute("**/api/v1/me/notifications?**");
    await again.control("Try again").click();
    await again.items.filter({ hasText: "Payment received" }).waitFor();
    expect(await again.status.isVisible()).toBe(false);
  });

  it("follows prefers-color-scheme, and --belfry-* custom properties override it", async () => {
    const u = await user();
    await pay(u.id, "theme");
    const dark = await browser.newContext({ colorScheme: "dark" });
    try {
      const page = await rig.openBell(dark, { token: u.key, style: "--belfry-badge-bg: rgb(1, 2, 3)" });
      const bell = bellOf(page);
      await bell.unread(1);
      await bell.button.click();
      const background = (l: typeof bell.panel) =>
        l.evaluate(
          // biome-ignore lint/suspicious/noExplicitAny: runs in the page
          (el: any) => el.ownerDocument.defaultView.getComputedStyle(el).backgroundColor,
        ) as Promise<string>;
      expect(await background(bell.panel)).toBe("rgb(22, 27, 34)");
      expect(await background(bell.badge)).toBe("rgb(1, 2, 3)");
      const light = await rig.openBell(context, { token: u.key });
      await bellOf(light).button.click();
      expect(await background(bellOf(light).panel)).toBe("rgb(255, 255, 255)");
    } finally {
      await dark.close();
    }
  });
});
