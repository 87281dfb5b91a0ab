import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BACKENDS } from "./support/backends.js";
import { bellOf, connectionOf, until } from "./support/bell-page.js";
import { type BellRig, launchChromium, startBellRig, VISIBILITY_SWITCH } from "./support/browser.js";

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(() => browser?.close());

const STREAM = "**/api/v1/me/notifications/stream?**";

describe.each(BACKENDS)("<belfry-bell> live on %s", (backend) => {
  let rig: BellRig;
  let context: BrowserContext;
  // Feed answers advise polling every second, so fallbacks show within a test's patience.
  beforeAll(async () => {
    rig = await startBellRig(backend, { pollIntervalS: 1 });
  });
  afterAll(() => rig?.close());
  beforeEach(async () => {
    context = await browser.newContext();
    context.setDefaultTimeout(8000);
  });
  afterEach(() => context?.close());

  const belfryRequests = (from: number) => rig.seen.slice(from).filter((s) => s.server === "belfry");
  const pay = (userId: number, id: string) => rig.h.pay(userId, `${id}-${userId}`);
  const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it("falls back to ETag polling at X-Poll-Interval when the stream is blocked", async () => {
    const u = await rig.h.userWithKey();
    await context.route(STREAM, (route) => route.abort("connectionrefused"));
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(0);
    const from = rig.seen.length;
    await until(
      () => belfryRequests(from).some((s) => s.url.endsWith("/unread-count") && s.status === 304),
      "a poll answered 304",
    );
    const polls = belfryRequests(from).filter((s) => s.url.endsWith("/unread-count"));
    expect(polls.every((s) => typeof s.headers["if-none-match"] === "string")).toBe(true);
    await pay(u.id, "poll");
    await bell.unread(1);
    // The change came by a poll (a 200 with the new ETag), never over a stream.
    expect(rig.seen.some((s) => s.server === "belfry" && s.url.includes("/stream?"))).toBe(false);
    expect(rig.openStreams()).toBe(0);
  });

  it("makes no requests while the page is hidden, and re-syncs when it shows again", async () => {
    const u = await rig.h.userWithKey();
    await context.addInitScript(VISIBILITY_SWITCH);
    const page = await rig.openBell(context, { token: u.key });
    const bell = bellOf(page);
    await bell.unread(0);
    await until(() => rig.openStreams() === 1, "the stream");

    await page.evaluate("window.__setHidden(true)");
    await until(() => rig.openStreams() === 0, "the stream closed while hidden");
    const from = rig.seen.length;
    await pay(u.id, "hidden");
    await settle(3000); // three poll intervals
    expect(belfryRequests(from)).toEqual([]);

    await page.evaluate("window.__setHidden(false)");
    await bell.unread(1);
    await until(() => rig.openStreams() === 1, "the stream again");

    // Polling (stream blocked) stops while hidden too.
    await context.route(STREAM, (route) => route.abort("connectionrefused"));
    await page.evaluate("window.__setHidden(true)");
    await page.evaluate("window.__setHidden(false)");
    await until(() => rig.openStreams() === 0, "no stream");
    const pollFrom = rig.seen.length;
    await until(() => belfryRequests(pollFrom).some((s) => s.status === 304), "polling");
    await page.evaluate("window.__setHidden(true)");
    await settle(500); // a poll already in flight may land
    const quiet = rig.seen.length;
    await settle(3000);
    expect(belfryRequests(quiet)).toEqual([]);
    await pay(u.id, "hidden-2");
    await page.evaluate("window.__setHidden(false)");
    await bell.unread(2);
  });

  it("shares one stream among five tabs whose badges agree, and another tab takes over when the leader closes", async () => {
    const u = await rig.h.userWithKey();
    const pages: Page[] = [];
    const from = rig.seen.length;
    for (let i = 0; i < 5; i++) {
      const page = await rig.openBell(context, { token: u.key });
      pages.push(page);
    }
    await Promise.all(pages.map((p) => bellOf(p).unread(0)));
    await until(() => rig.openStreams() === 1, "one stream");
    await settle(1000);
    expect(rig.openStreams()).toBe(1);
    expect(belfryRequests(from).filter((s) => s.url.includes("/stream?"))).toHaveLength(1);

    await pay(u.id, "tabs-1");
    await Promise.all(pages.map((p) => bellOf(p).unread(1)));

    // Which tab leads: the element says how it hears of changes.
    const roles = await Promise.all(pages.map(connectionOf));
    expect(roles.filter((r) => r === "stream")).toHaveLength(1);
    expect(roles.filter((r) => r === "relay")).toHaveLength(4);
    const leader = pages[roles.indexOf("stream")];
    await leader!.close();
    const rest = pages.filter((p) => p !== leader);
    await until(
      () =>
        belfryRequests(from).filter((s) => s.url.includes("/stream?")).length === 2 &&
        rig.openStreams() === 1,
      "a new leader's stream",
    );
    await pay(u.id, "tabs-2");
    await Promise.all(rest.map((p) => bellOf(p).unread(2)));
    // A read in one tab reaches every other tab's badge and list.
    const first = bellOf(rest[0]!);
    await first.button.click();
    await first.control("Mark all as read").click();
    await Promise.all(rest.map((p) => bellOf(p).unread(0)));
    expect(rig.openStreams()).toBe(1);
  });
});
