import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { buildBell } from "../../scripts/build-bell.js";
import { type BellBundle, loadBellBundle } from "../../src/http/routes/bell.js";
import type { BackendName } from "./backends.js";
import { type Harness, startHarness } from "./harness.js";

export { CHROMIUM, launchChromium } from "../../scripts/chromium.js";

/** The bell as `npm run build` bundles it, built fresh from web/ into a temporary file. */
export async function freshBellBundle(): Promise<{ bundle: BellBundle; path: string; drop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "belfry-bell-"));
  const path = join(dir, "bell.js");
  await buildBell(path);
  const bundle = loadBellBundle(path);
  if (!bundle) throw new Error("the bell did not build");
  return { bundle, path, drop: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Lets a page pretend to be hidden or shown (`document.visibilityState`), as a background tab
 * is: headless pages are always visible otherwise.
 */
export const VISIBILITY_SWITCH = `(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  window.__setHidden = (value) => { hidden = value; document.dispatchEvent(new Event("visibilitychange")); };
})();`;

/** A request Belfry or the console received, as their own HTTP servers saw it, in arrival order. */
export interface Seen {
  server: "belfry" | "console";
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  status?: number;
}

/** A console page server; `pages` maps paths to HTML (other paths answer a stub page). */
export interface ConsoleServer {
  url: string;
  pages: Map<string, string>;
  /** What `/token` hands out (what a tokenProvider fetches), and how often it was asked. */
  provider: { token: string; calls: number };
  close(): Promise<void>;
}

/**
 * The console: serves host pages on its own loopback port and forwards `/api/` and `/bell.js` to
 * Belfry at `belfryPort` — Belfry under the console's own origin, as a deployment without CORS
 * runs it. Streams pass through unbuffered; a Belfry that is down looks like a dropped connection.
 */
export async function startConsoleServer(belfryPort: number, seen: Seen[] = []): Promise<ConsoleServer> {
  const provider = { token: "", calls: 0 };
  const pages = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const url = req.url ?? "/";
    seen.push({ server: "console", method: req.method ?? "", url, headers: req.headers });
    if (url.startsWith("/api/") || url.startsWith("/bell.js")) {
      const upstream = request(
        { host: "127.0.0.1", port: belfryPort, path: url, method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          answer.on("aborted", () => res.destroy());
        },
      );
      upstream.on("error", () => res.destroy());
      res.on("close", () => upstream.destroy());
      req.pipe(upstream);
      return;
    }
    if (url === "/token") {
      provider.calls++;
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ token: provider.token }));
      return;
    }
    const text = url.replace(/[<&"]/g, "");
    res
      .writeHead(200, { "content-type": "text/html; charset=utf-8" })
      .end(pages.get(url) ?? `<!doctype html><title>${text}</title><p id="where">${text}</p>`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    pages,
    provider,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface BellRig {
  h: Harness;
  /** Belfry itself. */
  belfry: string;
  console: ConsoleServer;
  /** Every request Belfry and the console received, in order. */
  seen: Seen[];
  /** Streams open on Belfry right now, counted by its HTTP server. */
  openStreams(): number;
  /** A console page with `<belfry-bell>` and these attributes, waited on until its first count. */
  openBell(context: BrowserContext, attributes: Record<string, string>, options?: OpenOptions): Promise<Page>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Set `tokenProvider` (fetching the console's /token) before the element starts. */
  tokenProvider?: boolean;
  /** Do not wait for the first count to render. */
  noWait?: boolean;
}

const escapeAttribute = (value: string) =>
  value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");

function hostPage(attributes: Record<string, string>, tokenProvider: boolean): string {
  const attrs = Object.entries(attributes)
    .map(([k, v]) => ` ${k}="${escapeAttribute(v)}"`)
    .join("");
  // A classic script after the element runs before the (deferred) module defines it, as a
  // console setting the property early would.
  const provider = tokenProvider
    ? `<script>document.querySelector("belfry-bell").tokenProvider = async () => (await (await fetch("/token")).json()).token;</script>`
    : "";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Console</title>
<script type="module" src="/bell.js"></script></head>
<body><header style="display:flex;justify-content:space-between"><a href="/settings" id="before">Settings</a><belfry-bell${attrs}></belfry-bell></header>${provider}
<main id="main">Console</main></body></html>`;
}

/**
 * What every bell test starts from: Belfry in-process on a fresh store, listening on 127.0.0.1,
 * its HTTP server counting requests and open streams, and the console in front of it. The test
 * file's one Chromium is passed in.
 */
export async function startBellRig(
  backend: BackendName,
  app: Omit<NonNullable<Parameters<typeof startHarness>[2]>, "bell"> = {},
  deps: Parameters<typeof startHarness>[1] = {},
): Promise<BellRig> {
  const bell = await freshBellBundle();
  const h = await startHarness(backend, deps, { ...app, bell: bell.bundle });
  await h.app.listen({ port: 0, host: "127.0.0.1" });
  const port = (h.app.server.address() as { port: number }).port;
  const seen: Seen[] = [];
  let streams = 0;
  h.app.server.on("request", (req, res) => {
    const entry: Seen = {
      server: "belfry",
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
    };
    seen.push(entry);
    res.on("finish", () => {
      entry.status = res.statusCode;
    });
    if (entry.url.includes("/notifications/stream?")) {
      streams++;
      res.on("close", () => streams--);
    }
  });
  const consoleServer = await startConsoleServer(port, seen);
  let n = 0;
  return {
    h,
    belfry: `http://127.0.0.1:${port}`,
    console: consoleServer,
    seen,
    openStreams: () => streams,
    async openBell(context, attributes, options = {}) {
      const path = `/console/${++n}`;
      consoleServer.pages.set(path, hostPage(attributes, options.tokenProvider ?? false));
      const page = await context.newPage();
      await page.goto(consoleServer.url + path);
      if (!options.noWait) await page.locator("belfry-bell [part~=button][aria-label]").waitFor();
      return page;
    },
    async close() {
      await consoleServer.close();
      await h.close();
      bell.drop();
    },
  };
}
