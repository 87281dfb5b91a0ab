import { builtinModules } from "node:module";
import { join, relative } from "node:path";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

/**
 * `belfry/client` must run in browsers: bundled for the browser, its import graph may hold the
 * SDK's own modules and eventsource-parser, and nothing else — no Node built-in, no server module
 * (the server's schemas reach the SDK as types only, which the build erases).
 */

const root = join(import.meta.dirname, "..");
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

async function bundle(entry: string) {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: root,
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(result.metafile.inputs).map((p) => relative(root, join(root, p)));
  const imports = Object.values(result.metafile.inputs).flatMap((input) => input.imports.map((i) => i.path));
  return { inputs, imports, code: result.outputFiles[0]!.text };
}

const allowed = (path: string, sdkDir: string) =>
  path.startsWith(sdkDir) || path.startsWith("node_modules/eventsource-parser/");

describe("belfry/client in a browser bundle", () => {
  it.each([
    ["the source", "src/sdk/client.ts", "src/sdk/", "BelfryClient"],
    ["the built package export", "belfry/client", "dist/sdk/", "BelfryClient"],
    ["the admin export, too", "belfry/admin", "dist/sdk/", "BelfryAdmin"],
  ])("%s pulls in no Node built-in or server module", async (_name, entry, sdkDir, main) => {
    const { inputs, imports, code } = await bundle(entry);
    expect(inputs.filter((p) => !allowed(p, sdkDir))).toEqual([]);
    expect(imports.filter((p) => builtins.has(p))).toEqual([]);
    expect(inputs).toContain(`${sdkDir}http.${sdkDir === "src/sdk/" ? "ts" : "js"}`);
    expect(code).not.toMatch(/\bfrom\s*["']node:|require\(["']node:/);
    expect(code).toContain(`${main} = class`);
  });

  it("would catch a server module or Node built-in creeping in", async () => {
    // The webhook verifier uses node:crypto: a browser build refuses it outright.
    await expect(bundle("src/sdk/webhooks.ts")).rejects.toThrow(/crypto/);
  });
});
