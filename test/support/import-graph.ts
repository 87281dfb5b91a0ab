import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseSync } from "oxc-parser";

/** One import of a file: the file it names (repository-relative), and whether it is type-only. */
export interface ImportEdge {
  from: string;
  to: string;
  typeOnly: boolean;
}

const ROOT = resolve(import.meta.dirname, "../..");

/** Every `.ts` file below `dir` (repository-relative paths), declaration files aside. */
export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(join(ROOT, d), { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules") walk(path);
      } else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * The relative imports of `files` — static imports, re-exports and dynamic `import()` — parsed
 * with a real TypeScript parser, each resolved to the file it names (`./x.js` → `x.ts`).
 */
export function importsOf(files: string[]): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const from of files) {
    const text = readFileSync(join(ROOT, from), "utf8");
    const { module, errors } = parseSync(from, text);
    if (errors.length > 0) throw new Error(`${from}: ${errors[0]?.message}`);
    const add = (specifier: string, typeOnly: boolean) => {
      if (!specifier.startsWith(".")) return;
      const to = relative(ROOT, resolve(ROOT, dirname(from), specifier)).replace(/\.js$/, ".ts");
      edges.push({ from, to, typeOnly });
    };
    for (const i of module.staticImports) {
      const typeOnly =
        /^import\s+type\s/.test(text.slice(i.start, i.end)) ||
        (i.entries.length > 0 && i.entries.every((e) => e.isType));
      add(i.moduleRequest.value, typeOnly);
    }
    for (const e of module.staticExports)
      for (const entry of e.entries) if (entry.moduleRequest) add(entry.moduleRequest.value, entry.isType);
    for (const d of module.dynamicImports) {
      const literal = /^["'](.*)["']$/.exec(text.slice(d.moduleRequest.start, d.moduleRequest.end));
      if (literal?.[1]) add(literal[1], false);
    }
  }
  return edges;
}

/** The cycles of a directed graph (each as the list of its nodes), found by Tarjan's algorithm. */
export function cycles(edges: readonly { from: string; to: string }[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) {
    if (from === to) continue;
    next.set(from, [...(next.get(from) ?? []), to]);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v) as number);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}
