import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Making a file read-only for real. The tests run as root, which ignores permission bits, so
 * `chmod` proves nothing; the immutable attribute (`chattr +i`) binds root too: opening the file
 * for writing fails (EPERM), so SQLite opens it read-only and reports SQLITE_READONLY, and writes
 * through a connection opened before fail with SQLITE_IOERR_WRITE. It needs CAP_LINUX_IMMUTABLE
 * and a file system that keeps the attribute (ext4, xfs, btrfs); where it cannot be set, the
 * suites that need it are skipped.
 */
export const immutableFilesSupported: boolean = (() => {
  const dir = mkdtempSync(join(tmpdir(), "belfry-chattr-"));
  const probe = join(dir, "probe");
  try {
    writeFileSync(probe, "x");
    execFileSync("chattr", ["+i", probe], { stdio: "ignore" });
    execFileSync("chattr", ["-i", probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

/** Sets or clears the immutable attribute of the files that exist among `paths`. */
export async function setImmutable(paths: string[], immutable: boolean): Promise<void> {
  const present = paths.filter((p) => existsSync(p));
  if (present.length > 0) await run("chattr", [immutable ? "+i" : "-i", ...present]);
}
