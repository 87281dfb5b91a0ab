import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { cycles, importsOf, sourceFiles } from "./support/import-graph.js";

/**
 * The rules docs/architecture.md states, checked on the code: imports point down its list of
 * layers with no cycles, and each table is written (memberships: read) only by its owner.
 */

const ROOT = resolve(import.meta.dirname, "..");
const SRC = sourceFiles("src");
const EDGES = importsOf(SRC);

/** A file's unit: its folder under src/ (`src/feed/x.ts` → `feed`), or the root file itself. */
const unitOf = (file: string) => file.split("/")[1] as string;

/** The layers, top first, as the fenced block after `<!-- layers` in docs/architecture.md lists them. */
function layers(): string[][] {
  const doc = readFileSync(join(ROOT, "docs/architecture.md"), "utf8");
  const block = /<!-- layers[^>]*-->\s*```text\n([\s\S]*?)```/.exec(doc)?.[1];
  if (!block) throw new Error("docs/architecture.md has no layers block");
  return block
    .trim()
    .split("\n")
    .map((line) => line.trim().split(/\s+/));
}

describe("imports", () => {
  it("parses real imports (the graph is not empty)", () => {
    expect(EDGES.length).toBeGreaterThan(300);
    expect(EDGES).toContainEqual({
      from: "src/events/fan-out.ts",
      to: "src/feed/append-to-feeds.ts",
      typeOnly: false,
    });
  });

  it("have no cycles between files", () => {
    expect(cycles(EDGES)).toEqual([]);
  });

  it("have no cycles between folders", () => {
    const folders = EDGES.map((e) => ({ from: unitOf(e.from), to: unitOf(e.to) }));
    expect(cycles(folders)).toEqual([]);
  });

  it("point down the layers of docs/architecture.md, and every unit of src/ has a layer", () => {
    const rank = new Map<string, number>();
    layers().forEach((line, i) => {
      for (const unit of line) rank.set(unit, i);
    });
    const units = [...new Set(SRC.map(unitOf))];
    expect(units.filter((u) => !rank.has(u))).toEqual([]);
    const upward = EDGES.filter((e) => {
      const [from, to] = [unitOf(e.from), unitOf(e.to)];
      return from !== to && (rank.get(to) as number) <= (rank.get(from) as number);
    }).map((e) => `${e.from} → ${e.to}`);
    expect(upward).toEqual([]);
  });

  it("from the SDK reach server code for types only (and the shared signing rule)", () => {
    const runtime = EDGES.filter(
      (e) =>
        e.from.startsWith("src/sdk/") &&
        !e.to.startsWith("src/sdk/") &&
        !e.typeOnly &&
        e.to !== "src/webhooks/signature.ts",
    );
    expect(runtime).toEqual([]);
  });

  it("of bench/ never reach test/, and web/ stays inside web/", () => {
    const bench = importsOf(sourceFiles("bench"));
    expect(bench.length).toBeGreaterThan(0);
    expect(bench.filter((e) => e.to.startsWith("test/"))).toEqual([]);
    expect(importsOf(sourceFiles("web")).filter((e) => !e.to.startsWith("web/"))).toEqual([]);
  });
});

/** Every table a file names in a query: Kysely builders, bulk inserts, and raw SQL. */
function tableUses(file: string): { table: string; write: boolean }[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const uses: { table: string; write: boolean }[] = [];
  const add = (re: RegExp, write: boolean) => {
    for (const m of text.matchAll(re)) uses.push({ table: m[1] as string, write });
  };
  add(/\b(?:insertInto|updateTable|deleteFrom)\(\s*"(\w+)/g, true);
  add(/\btable:\s*"(\w+)"/g, true); // insertMany
  add(/\b(?:insert\s+into|update|delete\s+from)\s+"?(\w+)"?\s/gi, true);
  add(/\b(?:selectFrom|innerJoin|leftJoin|rightJoin|fullJoin)\(\s*"(\w+)/g, false);
  add(/\b(?:from|join)\s+"?(\w+)"?\s/gi, false);
  return uses;
}

const FEED_TABLES = ["notifications", "feed_counters", "feed_states", "feed_read_marks"];
const DELIVERY_TABLES = ["webhook_deliveries", "webhook_delivery_counters", "webhook_attempts"];

describe("table ownership", () => {
  const files = SRC.filter((f) => !f.startsWith("src/store/migrations/"));
  const uses = files.flatMap((file) => tableUses(file).map((u) => ({ file, ...u })));
  const writersOf = (tables: string[]) =>
    [...new Set(uses.filter((u) => u.write && tables.includes(u.table)).map((u) => u.file))].sort();

  it("only feed/ writes the feed's tables", () => {
    const writers = writersOf(FEED_TABLES);
    expect(writers.filter((f) => !f.startsWith("src/feed/"))).toEqual([]);
    // Every feed table is found written, so the patterns above still see the code.
    for (const table of FEED_TABLES) expect(writersOf([table]).length).toBeGreaterThan(0);
  });

  it("only the webhook outbox writes delivery rows, their counts and attempts", () => {
    const writers = writersOf(DELIVERY_TABLES);
    expect(writers).toEqual(["src/webhooks/outbox-claims.ts", "src/webhooks/outbox.ts"]);
    for (const table of DELIVERY_TABLES) expect(writersOf([table]).length).toBeGreaterThan(0);
  });

  it("only identity/ reads or writes memberships", () => {
    const users = [...new Set(uses.filter((u) => u.table === "memberships").map((u) => u.file))];
    expect(users.length).toBeGreaterThan(0);
    expect(users.filter((f) => !f.startsWith("src/identity/"))).toEqual([]);
  });
});

describe("dialects and clocks", () => {
  const text = (file: string) => readFileSync(join(ROOT, file), "utf8");

  it("are told apart only inside src/store (row locks go through forUpdate)", () => {
    const outside = SRC.filter((f) => !f.startsWith("src/store/") && /\bdialect\s*[!=]==/.test(text(f)));
    expect(outside).toEqual([]);
    expect(text("src/store/for-update.ts")).toMatch(/dialect !== "postgres"/);
  });

  it("read the wall clock only through time.ts (the server's code; the SDK runs elsewhere)", () => {
    const direct = SRC.filter(
      (f) => f !== "src/time.ts" && !f.startsWith("src/sdk/") && /\bDate\.now\(\)/.test(text(f)),
    );
    expect(direct).toEqual([]);
  });
});
