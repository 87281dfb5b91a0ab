import { type ChildProcess, spawn } from "node:child_process";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, freshDatabase } from "./support/backends.js";
import { ADMIN_TOKEN, type Harness } from "./support/harness.js";
import { CLI, call, freePort, runCli, type ServerProcess, spawnServer } from "./support/process.js";
import { waitFor } from "./support/receiver.js";
import { listeningHarness } from "./support/sdk.js";

/** `belfry watch` as a status bar runs it: the built CLI in a child process, against a real server. */

interface Watcher {
  proc: ChildProcess;
  lines: string[];
  stderr(): string;
  exited: Promise<number | null>;
  /** Waits for a line after the first `from` lines that satisfies `match`; returns it. */
  line(match: (line: string) => boolean, from?: number, what?: string): Promise<string>;
}

const running: Watcher[] = [];

function watch(args: string[], env: Record<string, string> = {}): Watcher {
  const proc = spawn(process.execPath, [CLI, "watch", ...args], {
    env: { ...process.env, BELFRY_URL: "", BELFRY_KEY: "", ...env },
  });
  const lines: string[] = [];
  let partial = "";
  let err = "";
  proc.stdout.setEncoding("utf8");
  proc.stdout.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
  });
  proc.stderr.on("data", (d) => (err += d));
  // "close": the process has exited and its output has all been read.
  const exited = new Promise<number | null>((resolve) => proc.on("close", (code) => resolve(code)));
  const watcher: Watcher = {
    proc,
    lines,
    stderr: () => err,
    exited,
    line: (match, from = 0, what = "a line") =>
      waitFor(() => lines.slice(from).find(match), 30_000, `${what}; got ${JSON.stringify(lines)} ${err}`),
  };
  running.push(watcher);
  return watcher;
}

/** Runs `belfry watch … --once` to the end. */
async function once(args: string[], env: Record<string, string> = {}) {
  const w = watch([...args, "--once"], env);
  const code = await w.exited;
  return { code, lines: w.lines, stderr: w.stderr() };
}

afterAll(async () => {
  for (const w of running) if (w.proc.exitCode === null) w.proc.kill("SIGKILL");
});

const waybar = (line: string) =>
  JSON.parse(line) as { text: string; alt: string; tooltip: string; class: string };

describe.each(BACKENDS)("belfry watch on %s", (backend) => {
  let h: Harness & { url: string };
  let proxy: Server;
  let proxyUrl: string;
  /** Requests the proxy forwarded: "METHOD path status". */
  const proxied: string[] = [];
  let n = 0;
  const pay = async (userId: number, extra: object = {}) =>
    expect((await h.pay(userId, `${backend}-w-${++n}`, undefined, extra)).status).toBe(202);

  beforeAll(async () => {
    h = await listeningHarness(backend, 1); // pollers are told to come back every second
    // A proxy that passes everything through except the live stream, which it does not know.
    const target = new URL(h.url);
    proxy = createServer((req, res) => {
      if (req.url?.startsWith("/api/v1/me/notifications/stream")) {
        res.writeHead(404, { "content-type": "application/json" });
        return res.end(
          JSON.stringify({ error: { type: "not_found_error", message: "No such route here." } }),
        );
      }
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          proxied.push(`${req.method} ${req.url} ${answer.statusCode}`);
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
    await h.close();
  });

  it("prints one line in every bar's format with --once", async () => {
    const u = await h.userWithKey("once");
    await pay(u.id, { title: "Deploy | finished" });
    await pay(u.id);
    const env = { BELFRY_URL: h.url, BELFRY_KEY: u.key };
    const feed = await h.request("GET", "/api/v1/me/notifications?page_size=5", { key: u.key });
    const version = Number(feed.headers["x-feed-version"]);

    expect(await once([], env)).toEqual({ code: 0, lines: ["2"], stderr: "" }); // plain by default
    expect((await once(["--url", h.url, "--key", u.key, "--format", "waybar"])).lines.map(waybar)).toEqual([
      { text: "2", alt: "unread", tooltip: "2 unread notifications", class: "unread" },
    ]);
    expect((await once(["--format", "i3bar"], env)).lines).toEqual([
      '{"version":1}',
      "[",
      '[{"full_text":"🔔 2","short_text":"2","name":"belfry","color":"#FFCC00"}],',
    ]);
    expect((await once(["--format", "polybar"], env)).lines).toEqual(["%{F#FFCC00}🔔 2%{F-}"]);
    expect((await once(["--format", "tmux"], env)).lines).toEqual(["#[fg=yellow]🔔 2#[default]"]);
    expect((await once(["--format", "xbar"], env)).lines).toEqual([
      "🔔 2",
      "---",
      `● ${feed.json.items[0].title}`,
      "● Deploy   finished",
    ]);
    const json = await once(["--format", "json"], env);
    expect(json.lines.map((l) => JSON.parse(l))).toEqual([
      { count: 2, version, latest: feed.json.items, stale: false },
    ]);

    const nobody = await h.userWithKey("empty");
    const empty = { BELFRY_URL: h.url, BELFRY_KEY: nobody.key };
    expect((await once(["--format", "waybar"], empty)).lines.map(waybar)).toEqual([
      { text: "0", alt: "none", tooltip: "No unread notifications", class: "none" },
    ]);
    expect((await once(["--format", "tmux"], empty)).lines).toEqual(["🔔 0"]);
    expect((await once(["--format", "xbar"], empty)).lines).toEqual(["🔔 0", "---", "No notifications"]);
  });

  it("prints a new line on every change while watching the stream", async () => {
    const u = await h.userWithKey("live");
    const env = { BELFRY_URL: h.url, BELFRY_KEY: u.key };
    const bar = watch(["--format", "waybar"], env);
    const plain = watch([], env);
    const xbar = watch(["--format", "xbar"], env);
    await bar.line((l) => waybar(l).class === "none", 0, "the first count");
    await plain.line((l) => l === "0");
    await xbar.line((l) => l === "🔔 0");

    await pay(u.id, { title: "Build 41 failed" });
    expect(waybar(await bar.line((l) => waybar(l).text === "1"))).toMatchObject({
      class: "unread",
      alt: "unread",
    });
    await plain.line((l) => l === "1");
    const at = xbar.lines.indexOf("🔔 1");
    await xbar.line((l) => l === "● Build 41 failed", Math.max(0, at), "the new title in the dropdown");
    expect(xbar.lines.filter((l) => l === "~~~").length).toBeGreaterThanOrEqual(1); // frame separators

    await h.request("POST", "/api/v1/me/notifications/mark-all-read", { key: u.key });
    await bar.line((l) => waybar(l).class === "none", 1, "the count back at 0");
    await plain.line((l) => l === "0", 1);
    // One line per change: never the same line twice in a row.
    for (const w of [bar, plain]) {
      expect(w.lines.filter((line, i) => line === w.lines[i - 1])).toEqual([]);
      expect(w.stderr()).toBe("");
    }
    for (const w of [bar, plain, xbar]) w.proc.kill("SIGTERM");
    expect(await bar.exited).toBe(0);
  });

  it("falls back to ETag polling when the stream cannot be used", async () => {
    const u = await h.userWithKey("poller");
    const w = watch(["--format", "json"], { BELFRY_URL: proxyUrl, BELFRY_KEY: u.key });
    const first = JSON.parse(await w.line(() => true, 0, "the first poll"));
    expect(first).toEqual({ count: 0, version: 0, latest: [], stale: false });
    await waitFor(() => w.stderr().includes("polling instead"), 10_000, "the fallback notice");
    expect(w.stderr()).toContain("No such route here.");
    await waitFor(
      () => proxied.some((r) => r === "GET /api/v1/me/notifications/unread-count 304"),
      10_000,
      "a 304 poll",
    );
    await pay(u.id);
    const changed = JSON.parse(await w.line((l) => JSON.parse(l).count === 1, 1, "the polled change"));
    expect(changed.latest).toHaveLength(1);
    expect(changed.stale).toBe(false);
    w.proc.kill("SIGTERM");
    expect(await w.exited).toBe(0);
  });

  it("exits 1 with the reason when the key is refused", async () => {
    const bogus = { BELFRY_URL: h.url, BELFRY_KEY: "bf_not_a_real_key_0123456789abcdefghijkl" };
    const refused = await once(["--format", "waybar"], bogus);
    expect(refused.code).toBe(1);
    expect(refused.lines).toEqual([]);
    expect(refused.stderr).toMatch(/^belfry watch: the key was refused: .+ \(request req_\w+\)\n$/);

    const w = watch(["--format", "plain"], bogus);
    expect(await w.exited).toBe(1);
    expect(w.stderr()).toContain("the key was refused");

    // Revoked while watching: the stream ends, the reconnect is refused.
    const u = await h.userWithKey("revoked");
    const live = watch([], { BELFRY_URL: h.url, BELFRY_KEY: u.key });
    await live.line((l) => l === "0");
    await h.request("POST", `/admin/v1/keys/${u.keyId}/revoke`, { key: ADMIN_TOKEN });
    expect(await live.exited).toBe(1);
    expect(live.stderr()).toContain("the key was refused");

    const usage = await once(["--format", "lcd"], { BELFRY_URL: h.url, BELFRY_KEY: u.key });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain(
      "--format must be one of: waybar, i3bar, polybar, tmux, xbar, json, plain",
    );
    expect((await once([], {})).code).toBe(2);
  });

  it("shows stale while the server is down, then recovers when it comes back", async () => {
    const db = await freshDatabase(backend);
    const env = { DATABASE_URL: db.url, BELFRY_ADMIN_TOKEN: ADMIN_TOKEN, BELFRY_WEBHOOK_WORKER: "false" };
    const port = await freePort();
    let server: ServerProcess = await spawnServer(env, port);
    try {
      const user = await call(server.url, "POST", "/admin/v1/users", ADMIN_TOKEN, {
        email: "bar@example.com",
      });
      const key = (
        await call(server.url, "POST", `/admin/v1/users/${user.json.id}/keys`, ADMIN_TOKEN, { name: "k" })
      ).json.key as string;
      const ingest = (id: string) =>
        call(server.url, "POST", "/admin/v1/events", ADMIN_TOKEN, {
          id,
          type: "system.payment.received",
          user_id: user.json.id,
          data: { amount_cents: 100, balance_cents: 100 },
        });
      await ingest("one");
      const bar = watch(["--format", "waybar"], { BELFRY_URL: server.url, BELFRY_KEY: key });
      const plain = watch([], { BELFRY_URL: server.url, BELFRY_KEY: key });
      await bar.line((l) => waybar(l).text === "1");
      await plain.line((l) => l === "1");

      await server.kill9();
      const stale = waybar(await bar.line((l) => waybar(l).class === "stale", 1, "the stale marker"));
      expect(stale.text).toBe("1?");
      expect(stale.tooltip).toMatch(/^Belfry unreachable: .*\(last known: 1 unread\)$/);
      await plain.line((l) => l === "?", 1);
      const down = await once(["--format", "waybar"], { BELFRY_URL: server.url, BELFRY_KEY: key });
      expect(down.code).toBe(2);
      expect(down.lines.map(waybar)).toEqual([
        expect.objectContaining({ text: "?", class: "stale", alt: "stale" }),
      ]);

      // Changed while down (the CLI writes to the same store), then back on the same address.
      const cli = await runCli(
        ["admin", "ingest", "-"],
        env,
        JSON.stringify({
          id: "two",
          type: "system.payment.received",
          user_id: user.json.id,
          data: { amount_cents: 1, balance_cents: 1 },
        }),
      );
      expect(cli.code, cli.stderr).toBe(0);
      const staleAt = bar.lines.length;
      server = await spawnServer(env, port);
      expect(waybar(await bar.line((l) => waybar(l).text === "2", staleAt, "the recovery"))).toMatchObject({
        class: "unread",
      });
      await plain.line((l) => l === "2");
      await ingest("three");
      await plain.line((l) => l === "3");
      for (const w of [bar, plain]) w.proc.kill("SIGTERM");
    } finally {
      await server.kill9();
      await db.drop();
    }
  }, 120_000);
});
