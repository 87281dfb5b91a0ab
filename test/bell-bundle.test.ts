import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BELL_BUILD } from "../scripts/build-bell.js";
import { loadBellBundle } from "../src/http/routes/bell.js";
import { BACKENDS } from "./support/backends.js";
import { freshBellBundle } from "./support/browser.js";
import { type Harness, isEnvelope, startHarness } from "./support/harness.js";

const run = promisify(execFile);
let fresh: Awaited<ReturnType<typeof freshBellBundle>>;
beforeAll(async () => {
  fresh = await freshBellBundle();
});
afterAll(() => fresh?.drop());

describe("the bell bundle", () => {
  it("is one ES module of at most 12 KB gzipped (gzip -9), importing nothing", async () => {
    expect(gzipSync(fresh.bundle.body, { level: 9 }).length).toBeLessThanOrEqual(12 * 1024);
    const { metafile } = await build({ ...BELL_BUILD, write: false, metafile: true, outfile: "bell.js" });
    const outputs = Object.values(metafile.outputs);
    expect(outputs).toHaveLength(1);
    expect(outputs[0]!.imports).toEqual([]);
    const text = fresh.bundle.body.toString("utf8");
    expect(text).not.toMatch(/(^|[;}\s])import\s*[\s{*("'`]/);
    expect(text).toMatch(/export\s*\{\s*\w+ as BelfryBell\s*\}/);
  });

  it("imports in plain Node (server-side rendering) without touching window, document or customElements", async () => {
    const script = `
      for (const name of ["window", "document", "customElements", "HTMLElement", "navigator", "location"])
        if (name in globalThis && name !== "navigator") throw new Error(name + " exists in this Node");
      const m = await import(${JSON.stringify(`file://${fresh.path}`)});
      if (typeof m.BelfryBell !== "function") throw new Error("no BelfryBell export");
      console.log("imported");`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script]);
    expect(stdout.trim()).toBe("imported");
  });

  it("is what the package exports as belfry/bell (after npm run build)", async () => {
    const built = join(import.meta.dirname, "../dist/bell.js");
    expect(existsSync(built), "dist/bell.js is missing: run `npm run build` (npm test does)").toBe(true);
    const script = `const m = await import("belfry/bell"); console.log(typeof m.BelfryBell);`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
      cwd: join(import.meta.dirname, ".."),
    });
    expect(stdout.trim()).toBe("function");
  });

  it("is not there when it was not built: loadBellBundle says so with undefined", () => {
    const dir = mkdtempSync(join(tmpdir(), "belfry-nobell-"));
    try {
      expect(loadBellBundle(join(dir, "bell.js"))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(BACKENDS)("GET /bell.js on %s", (backend) => {
  let h: Harness;
  let bare: Harness;
  beforeAll(async () => {
    h = await startHarness(backend, {}, { bell: fresh.bundle });
    bare = await startHarness(backend, {}, { bell: null });
  });
  afterAll(async () => {
    await h?.close();
    await bare?.close();
  });

  it("serves the module with a strong ETag, a short public cache, and 304 on If-None-Match", async () => {
    const r = await h.request("GET", "/bell.js");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(r.headers["cache-control"]).toBe("public, max-age=300");
    const etag = r.headers.etag as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{20,}"$/);
    expect(etag).toBe(fresh.bundle.etag);
    expect(Buffer.from(r.text).equals(fresh.bundle.body)).toBe(true);
    const again = await h.request("GET", "/bell.js", { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(again.text).toBe("");
    expect(again.headers.etag).toBe(etag);
    const other = await h.request("GET", "/bell.js", { headers: { "if-none-match": '"something-else"' } });
    expect(other.status).toBe(200);
  });

  it("answers a clear 404 envelope when the bell was not built", async () => {
    const r = await bare.request("GET", "/bell.js");
    expect(isEnvelope(r, 404, "not_found_error")).toBe(true);
    expect(r.json.error.message).toMatch(/npm run build/);
  });
});
