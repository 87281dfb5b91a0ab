import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { launchChromium } from "./chromium.js";

/**
 * `npm run screenshot`: starts `belfry demo`, raises a few events from its console page, opens
 * the bell and saves docs/bell.png (the README's picture), in the same headless Chromium the
 * tests use.
 */
const root = fileURLToPath(new URL("..", import.meta.url));
const port = 18000 + Math.floor(Math.random() * 2000);
const demo = spawn(process.execPath, ["dist/cli/main.js", "demo"], {
  cwd: root,
  env: { ...process.env, PORT: String(port), BELFRY_LOG_LEVEL: "warn" },
  stdio: ["ignore", "pipe", "inherit"],
});
const url = await new Promise<string>((resolve, reject) => {
  let out = "";
  demo.stdout.on("data", (d) => {
    out += d;
    const m = /demo console: (\S+)/.exec(out);
    if (m?.[1]) resolve(m[1]);
  });
  demo.on("exit", (code) => reject(new Error(`belfry demo exited with ${code}`)));
});
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1040, height: 640 }, colorScheme: "light" });
  await page.goto(url);
  const bell = page.locator("belfry-bell");
  await bell.getByRole("button", { name: "Notifications, 2 unread" }).waitFor();
  for (const type of ["admin.org.member.add", "org.api_key.revoke", "system.balance.notify.dispatched"]) {
    await page.locator(`button[data-type="${type}"]`).click();
  }
  await bell.getByRole("button", { name: "Notifications, 5 unread" }).waitFor();
  await bell.locator("[part~=button]").click();
  await bell.locator("[part~=item]").nth(4).waitFor();
  await bell.locator("[part~=item]").nth(4).click(); // one read, to show both states
  await page.waitForURL(/\/billing$/).catch(() => {});
  await page.goBack();
  await bell.getByRole("button", { name: "Notifications, 4 unread" }).waitFor();
  await bell.locator("[part~=button]").click();
  await bell.locator("[part~=item]").nth(4).waitFor();
  await page.mouse.move(0, 0);
  await page.screenshot({ path: `${root}/docs/bell.png` });
  console.log("wrote docs/bell.png");
} finally {
  await browser.close();
  demo.kill("SIGTERM");
}
