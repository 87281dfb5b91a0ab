import { writeFileSync } from "node:fs";
import { createDeps } from "../deps.js";
import { buildApp } from "../http/app.js";
import { openStore } from "../store/store.js";
import { UsageError } from "./usage-error.js";

export const OPENAPI_USAGE = `Usage: belfry openapi [--out <file>]

Writes the OpenAPI 3.1 document (what GET /openapi.json serves) to stdout, or to <file>,
without starting a server or opening a database.`;

/**
 * Builds the app without listening — on a throwaway in-memory store, which building never
 * queries — and returns the document its routes generate.
 */
export async function openApiDocument(): Promise<object> {
  const store = openStore("file::memory:");
  const app = await buildApp({ deps: createDeps(store), adminToken: "unused" });
  try {
    await app.ready();
    return app.swagger();
  } finally {
    await app.close();
    await store.close();
  }
}

/** `belfry openapi [--out <file>]`. */
export async function runOpenApi(args: string[]): Promise<void> {
  const [flag, file, ...rest] = args;
  if (rest.length > 0 || (flag !== undefined && (flag !== "--out" || file === undefined))) {
    throw new UsageError(OPENAPI_USAGE);
  }
  const text = `${JSON.stringify(await openApiDocument(), null, 2)}\n`;
  if (file !== undefined) return writeFileSync(file, text);
  // Written out before resolving: main exits right after, and a pipe takes the text in chunks.
  await new Promise<void>((resolve, reject) =>
    process.stdout.write(text, (error) => (error ? reject(error) : resolve())),
  );
}
