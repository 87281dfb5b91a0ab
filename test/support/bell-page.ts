import type { Locator, Page } from "playwright-core";

/** Ways to look at a `<belfry-bell>` in a page (Playwright's CSS locators pierce its open shadow root). */
export const bellOf = (page: Page) => {
  const host = page.locator("belfry-bell");
  return {
    host,
    button: host.locator("[part~=button]"),
    badge: host.locator("[part~=badge]"),
    panel: host.locator("[part~=panel]"),
    items: host.locator("[part~=item]"),
    unreadItems: host.locator("[part~=unread]"),
    status: host.locator(".st"),
    live: host.locator("[aria-live]"),
    control: (name: string | RegExp) => host.getByRole("button", { name, exact: typeof name === "string" }),
    /** Waits until the button's accessible name says `n` unread. */
    unread: (n: number, timeout = 10_000) =>
      host.getByRole("button", { name: `Notifications, ${n} unread`, exact: true }).waitFor({ timeout }),
  };
};

/** Whether `locator`'s element has the focus (inside its shadow root, if any). */
export const isFocused = (locator: Locator) =>
  // biome-ignore lint/suspicious/noExplicitAny: runs in the page, where DOM types are not in this project's lib
  locator.evaluate((el: any) => el.getRootNode().activeElement === el) as Promise<boolean>;

/** Polls `check` until it holds (or throws after `timeoutMs`). */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The bell's `connection` property: how its tab hears of changes (`stream`, `relay`, …). */
export const connectionOf = (page: Page) =>
  // biome-ignore lint/suspicious/noExplicitAny: runs in the page, where DOM types are not in this project's lib
  page.locator("belfry-bell").evaluate((el: any) => el.connection as string) as Promise<string>;
