/**
 * One folder per sync under `state_dir`: checkpoint.json, the snapshot it names, the lock, the last run's rejects
 * and the run history. Every file is written atomically (temp file, fsync, rename) with mode 0600.
 */
import { link, mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { StateError } from "../errors.js";

export interface SyncStatePaths {
  readonly dir: string;
  readonly checkpoint: string;
  readonly lock: string;
  readonly rejects: string;
  readonly runs: string;
  /** How far the run in flight got (its acknowledged prefix); only present while a run is going, or after a kill. */
  readonly progress: string;
  /** Where an unfinished backfill stopped. */
  readonly backfill: string;
  /** The incremental watermark. */
  readonly cursor: string;
  snapshot(name: string): string;
}

export function syncStatePaths(stateDir: string, sync: string): SyncStatePaths {
  const dir = join(stateDir, sync);
  return {
    dir,
    checkpoint: join(dir, "checkpoint.json"),
    lock: join(dir, "lock"),
    rejects: join(dir, "rejects.jsonl"),
    runs: join(dir, "runs.json"),
    progress: join(dir, "progress.json"),
    backfill: join(dir, "backfill.json"),
    cursor: join(dir, "cursor.json"),
    snapshot: (name) => join(dir, name),
  };
}

/** The error for a state write that failed: says why (full, not writable) and that nothing was lost. */
export function stateWriteError(path: string, error: unknown): StateError {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === "ENOSPC"
      ? "the disk is full"
      : code === "EACCES" || code === "EPERM" || code === "EROFS"
        ? "it is not writable"
        : code === "ENOTDIR" || code === "EEXIST"
          ? "a file stands where a folder should be"
          : String((error as Error).message ?? error);
  return new StateError(`cannot write state file ${path}: ${why}`, {
    code: "STATE_WRITE_FAILED",
    action:
      "Make the state folder writable (and free some space); nothing was lost: the next run re-sends what was not recorded.",
    cause: error,
  });
}

export async function ensureStateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw stateWriteError(dir, error);
  }
}

/** Writes JSON atomically (temp file, fsync, rename), mode 0600. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  try {
    await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600, fsync: true });
  } catch (error) {
    throw stateWriteError(path, error);
  }
}

/** Reads JSON; undefined when the file does not exist. */
export async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StateError(`cannot read state file ${path}: ${(error as Error).message}`, {
      code: "STATE_READ_FAILED",
      action: "Check the state folder's permissions.",
      cause: error,
    });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new StateError(`state file ${path} is not valid JSON (corrupt or truncated)`, {
      code: "STATE_CORRUPT",
      action:
        "Restore it from a backup, or run `groupsync reset <sync> --yes` to forget the sync's state (the next run then re-sends every group).",
      cause: error,
    });
  }
}

/** Renames a finished temp file into place and fsyncs the folder so the rename survives a crash. */
export function commitFile(temp: string, final: string, dir: string): Promise<void> {
  return durably(() => rename(temp, final), final, dir);
}

/** Gives a durable file a second name, durably (the folder is fsynced). */
export function linkFile(existing: string, name: string, dir: string): Promise<void> {
  return durably(() => link(existing, name), name, dir);
}

/** Changes a name in `dir`, then fsyncs the folder; a failure is a StateError naming `name`. */
async function durably(change: () => Promise<void>, name: string, dir: string): Promise<void> {
  try {
    await change();
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw stateWriteError(name, error);
  }
}

/** Removes temp files and snapshots that the checkpoint does not name (left by a crash). */
export async function removeStrayFiles(dir: string, keep: ReadonlySet<string>): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const stray = name.endsWith(".tmp") || (name.startsWith("snapshot-") && !keep.has(name));
    if (stray) await rm(join(dir, name), { force: true });
  }
}
