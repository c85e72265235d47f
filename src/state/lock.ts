/**
 * One run of a sync at a time. The lock file holds the owner's pid and host; a lock whose process is gone (killed,
 * crashed) is taken over at once, so a rerun after `kill -9` needs no manual clean-up.
 */

import { open, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { StateError } from "../errors.js";
import { stateWriteError } from "./state-dir.js";

export interface Lock {
  release(): Promise<void>;
}

interface LockOwner {
  pid: number;
  host: string;
  started_at: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function acquireLock(path: string, sync: string): Promise<Lock> {
  const owner: LockOwner = { pid: process.pid, host: hostname(), started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, "wx", 0o600);
      try {
        await handle.writeFile(JSON.stringify(owner));
        await handle.sync();
      } catch (error) {
        // A full disk: do not leave an empty lock behind.
        await handle.close().catch(() => undefined);
        await rm(path, { force: true }).catch(() => undefined);
        throw error;
      }
      await handle.close();
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          await rm(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw stateWriteError(path, error);
      }
    }
    let current: Partial<LockOwner> = {};
    try {
      current = JSON.parse(await readFile(path, "utf8")) as Partial<LockOwner>;
    } catch {
      // Empty or half-written: its writer died between create and write.
    }
    const sameHost = current.host === undefined || current.host === owner.host;
    if (sameHost && (typeof current.pid !== "number" || !alive(current.pid))) {
      await rm(path, { force: true });
      continue;
    }
    throw new StateError(
      `sync ${sync} is already running (pid ${current.pid} on ${current.host}, since ${current.started_at})`,
      {
        code: "SYNC_LOCKED",
        action: `Wait for that run to finish. If no such process exists, delete ${path}.`,
      },
    );
  }
  throw new StateError(`could not take the lock ${path}`, { code: "SYNC_LOCKED", action: `Delete ${path} and retry.` });
}
