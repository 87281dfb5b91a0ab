import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_TYPES } from "../src/cli/demo.js";
import { CLI, call, freePort, spawnServer } from "./support/process.js";

/** `belfry demo` runs only on the embedded store (a throwaway file), so it has no PostgreSQL variant. */
describe("belfry demo", () => {
  let proc: ChildProcess;
  let url = "";
  beforeAll(async () => {
    const port = await freePort();
    proc = spawn(process.execPath, [CLI, "demo"], {
      env: { ...process.env, PORT: String(port), HOST: "0.0.0.0", BELFRY_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    url = await new Promise<string>((resolve, reject) => {
      let out = "";
      proc.stdout?.on("data", (d) => {
        out += d;
        const m = /demo console: (\S+)\//.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      proc.on("exit", (code) => reject(new Error(`demo exited with ${code}: ${out}`)));
    });
  });
  afterAll(() => {
    proc?.kill("SIGTERM");
  });

  it("prints a loopback URL whose console page embeds the bell for the demo user", async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/); // HOST=0.0.0.0 is ignored: loopback only
    const page = await fetch(`${url}/`);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/bell.js"></script>');
    expect(html).toMatch(/<belfry-bell token="bf_[A-Za-z0-9_-]+"><\/belfry-bell>/);
    expect((await fetch(`${url}/bell.js`)).status).toBe(200);
    // A page elsewhere whose name was rebound to 127.0.0.1 (fetch cannot set Host, http can).
    const rebound = await new Promise<number>((resolve, reject) =>
      request(`${url}/`, { headers: { host: "evil.example" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on("error", reject)
        .end(),
    );
    expect(rebound).toBe(403);
  });

  it("raises every feed event type through the real operations, into the demo user's feed", async () => {
    const html = await (await fetch(`${url}/`)).text();
    const token = /token="([^"]+)"/.exec(html)![1]!;
    const before = (await call(url, "GET", "/api/v1/me/notifications?page_size=200", token)).json.total;
    for (const type of DEMO_TYPES) {
      const r = await fetch(`${url}/demo/raise/${type}`, { method: "POST" });
      expect(r.status, type).toBe(200);
    }
    const feed = (await call(url, "GET", "/api/v1/me/notifications?page_size=200", token)).json;
    expect(feed.total).toBe(before + DEMO_TYPES.length);
    expect(new Set(feed.items.slice(0, DEMO_TYPES.length).map((n: { type: string }) => n.type))).toEqual(
      new Set(DEMO_TYPES),
    );
    expect((await fetch(`${url}/demo/raise/webhook.test`, { method: "POST" })).status).toBe(404);
  });

  it("is not part of belfry serve", async () => {
    const server = await spawnServer({ DATABASE_URL: "file::memory:", BELFRY_WEBHOOK_WORKER: "false" });
    try {
      expect((await fetch(`${server.url}/`)).status).toBe(404);
      expect(
        (await fetch(`${server.url}/demo/raise/system.payment.received`, { method: "POST" })).status,
      ).toBe(404);
    } finally {
      await server.kill9();
    }
  });
});
