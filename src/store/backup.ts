import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Sqlite from "better-sqlite3";
import { DEFAULT_DATABASE_URL } from "../settings.js";

/** A backup that cannot be made, with a message for the person who asked. */
export class BackupError extends Error {
  override name = "BackupError";
}

export interface BackupResult {
  source: string;
  destination: string;
  bytes: number;
}

/**
 * Copies the embedded store's database to `destination` with SQLite's online backup API, while
 * servers keep reading and writing it: the copy is one consistent snapshot, as of the moment it
 * began. It is written beside the destination under a temporary name, checked (`quick_check`),
 * then renamed into place, so `destination` is either absent or a whole, sound database; an
 * existing file is never overwritten. PostgreSQL has its own tools (`pg_dump`, base backups).
 *
 * @example
 * await backupDatabase(process.env.DATABASE_URL, "backups/belfry-2026-11-28.db");
 */
export async function backupDatabase(
  databaseUrl: string | undefined,
  destination: string,
): Promise<BackupResult> {
  const url = databaseUrl === undefined || databaseUrl === "" ? DEFAULT_DATABASE_URL : databaseUrl;
  if (!url.startsWith("file:"))
    throw new BackupError(
      "belfry backup copies the embedded store (DATABASE_URL=file:…); back PostgreSQL up with pg_dump or base backups.",
    );
  const source = resolve(url.slice("file:".length));
  if (!existsSync(source)) throw new BackupError(`There is no database at ${source}.`);
  const target = resolve(destination);
  if (existsSync(target))
    throw new BackupError(`${target} already exists; a backup never overwrites a file.`);
  if (!existsSync(dirname(target))) throw new BackupError(`The directory ${dirname(target)} does not exist.`);
  const partial = `${target}.partial-${process.pid}`;
  const db = new Sqlite(source, { fileMustExist: true, timeout: 5000 });
  try {
    // All remaining pages in one step: a single read transaction, which in WAL mode writers do
    // not wait for. Copied in small steps instead, a write by another process between two steps
    // would restart the copy, and a busy server could keep it from ever finishing.
    await db.backup(partial, { progress: () => 0x7fffffff });
    const copy = new Sqlite(partial, { fileMustExist: true });
    try {
      const check = copy.pragma("quick_check", { simple: true });
      if (check !== "ok") throw new BackupError(`The copy failed its integrity check: ${String(check)}`);
    } finally {
      copy.close();
    }
    renameSync(partial, target);
    // The rename itself survives a crash only once the directory is flushed.
    const dir = openSync(dirname(target), "r");
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (error) {
    for (const leftover of [partial, `${partial}-wal`, `${partial}-shm`, `${partial}-journal`])
      rmSync(leftover, { force: true });
    throw error;
  } finally {
    db.close();
  }
  return { source, destination: target, bytes: statSync(target).size };
}
