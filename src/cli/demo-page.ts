import { catalog, type EventType } from "../catalog/catalog.js";

/** What each demo button does, in the console's words (a type not listed shows its catalog description). */
const LABELS: Record<string, [string, string]> = {
  "system.payment.received": ["Top-up received", "the payments system ingests a payment"],
  "system.balance.notify.dispatched": ["Low balance", "the balance cron ingests an alert"],
  "admin.org.member.add": ["New org member", "a platform admin adds someone to Acme"],
  "admin.api_key.revoke": ["Key revoked by admin", "a platform admin revokes one of your keys"],
  "org.api_key.revoke": ["Org key revoked", "Grace, an Acme admin, revokes your org key"],
};

const escapeHtml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/**
 * The demo console: a header with Ada's bell, a button per feed event type, and a log of the
 * bell's DOM events. Static markup; the key goes into one attribute, escaped.
 */
export function demoPage(token: string, types: readonly string[]): string {
  const buttons = types
    .map((type) => {
      const [label, how] = LABELS[type] ?? [type, catalog[type as EventType]?.description ?? ""];
      return `<li><button type="button" data-type="${escapeHtml(type)}">${escapeHtml(label)}</button>
        <span><code>${escapeHtml(type)}</code> — ${escapeHtml(how)}</span></li>`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme Cloud console — Belfry demo</title>
<script type="module" src="/bell.js"></script>
<style>
  :root { color-scheme: light dark; font: 15px/1.5 system-ui, sans-serif; }
  body { margin: 0; background: Canvas; color: CanvasText; }
  header { display: flex; align-items: center; gap: 16px; padding: 10px 24px; border-bottom: 1px solid #8884; }
  header strong { font-size: 17px; }
  header nav { display: flex; gap: 16px; flex: 1; color: GrayText; }
  main { max-width: 760px; padding: 24px; }
  ul { list-style: none; padding: 0; display: grid; gap: 10px; }
  li { display: flex; align-items: baseline; gap: 12px; }
  li button { min-width: 190px; padding: 6px 12px; font: inherit; border-radius: 6px; border: 1px solid #8888; background: ButtonFace; color: ButtonText; cursor: pointer; }
  select { font: inherit; }
  #log { font: 12px/1.5 ui-monospace, monospace; white-space: pre-wrap; color: GrayText; max-height: 220px; overflow: auto; }
</style>
</head>
<body>
<header>
  <strong>Acme Cloud</strong>
  <nav><span>Dashboard</span><span>Billing</span><span>Keys</span><span>Org</span></nav>
  <label>Language <select id="locale"><option value="en">English</option><option value="zh">中文</option></select></label>
  <belfry-bell token="${escapeHtml(token)}"></belfry-bell>
</header>
<main>
  <h1>Belfry demo</h1>
  <p>Signed in as Ada Lovelace, owner of the org Acme. Each button raises one feed event type
  through the real API; the bell updates live, in every tab of this console.</p>
  <ul>${buttons}</ul>
  <h2>Bell events</h2>
  <div id="log" aria-live="off"></div>
</main>
<script type="module">
  const bell = document.querySelector("belfry-bell");
  const log = document.getElementById("log");
  const note = (line) => { log.textContent = line + "\\n" + log.textContent; };
  for (const button of document.querySelectorAll("button[data-type]")) {
    button.addEventListener("click", async () => {
      const r = await fetch("/demo/raise/" + button.dataset.type, { method: "POST" });
      if (!r.ok) note("failed: " + (await r.text()));
    });
  }
  document.getElementById("locale").addEventListener("change", (e) => bell.setAttribute("locale", e.target.value));
  document.addEventListener("belfry:count", (e) => note("belfry:count " + JSON.stringify(e.detail)));
  document.addEventListener("belfry:notification", (e) => note("belfry:notification " + e.detail.notification.title));
</script>
</body>
</html>`;
}
