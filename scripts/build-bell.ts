import { fileURLToPath } from "node:url";
import { type BuildOptions, build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

/**
 * How `<belfry-bell>` is bundled: one minified ES module with no imports, for browsers that
 * support custom elements (ES2022), UTF-8 kept as is (the Chinese strings stay small).
 */
export const BELL_BUILD: BuildOptions = {
  absWorkingDir: root,
  entryPoints: ["web/bell/index.ts"],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  charset: "utf8",
  legalComments: "none",
  logLevel: "warning",
};

/** Bundles the bell into `outfile` (`dist/bell.js` by default, what `GET /bell.js` serves). */
export async function buildBell(outfile = "dist/bell.js"): Promise<void> {
  await build({ ...BELL_BUILD, outfile });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildBell(process.argv[2]);
