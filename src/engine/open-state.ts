/**
 * Step 1 of a run: the previous state, verified before anything is read or sent. What a killed run left behind is
 * folded in first: its acknowledged prefix (kept as is) and its journal (groups it may have changed become
 * "unknown"), and an unfinished backfill's resume point is recorded.
 */
import type { Logger } from "pino";
import { planLayout } from "../diff/layout.js";
import { StateError } from "../errors.js";
import { type Checkpoint, readCheckpoint, type StateIdentity, verifyCheckpoint } from "../state/checkpoint.js";
import {
  type Progress,
  readBackfillState,
  readProgress,
  removeFile,
  writeBackfillState,
} from "../state/progress-file.js";
import { type RecoverPrefix, recoverJournals } from "../state/recover.js";
import { readSnapshotHeader } from "../state/snapshot-file.js";
import { removeStrayFiles, type SyncStatePaths } from "../state/state-dir.js";

export interface OpenStateOptions {
  readonly paths: SyncStatePaths;
  readonly identity: StateIdentity;
  readonly hierarchical: boolean;
  /** A plan reads the state as it is and changes nothing. */
  readonly plan: boolean;
  readonly runId: string;
  readonly log: Logger;
}

export interface OpenedState {
  readonly checkpoint: Checkpoint | undefined;
  /** The snapshot file to diff against. */
  readonly previousPath: string | undefined;
}

export async function openState(options: OpenStateOptions): Promise<OpenedState> {
  const { paths, identity, hierarchical, log } = options;
  let checkpoint = await readCheckpoint(paths.checkpoint);
  if (checkpoint) {
    await verifyCheckpoint(checkpoint, identity, paths.checkpoint, paths.snapshot(checkpoint.snapshot.file));
  }
  if (!options.plan) {
    // A run that died mid-delivery left its progress and a journal of what it may have changed: fold them in first.
    const progress = await readProgress(paths.progress);
    const prefix = progress ? await usablePrefix(progress, checkpoint, paths, hierarchical) : undefined;
    const recovery = await recoverJournals({
      paths,
      checkpoint,
      identity,
      hierarchical,
      runId: options.runId,
      ...(prefix ? { prefix } : {}),
    });
    if (recovery.kept > 0) {
      log.info(
        { groups: recovery.kept },
        `the previous run was killed; its progress (${recovery.kept} groups) is kept`,
      );
    }
    if (recovery.recovered > 0) {
      log.warn(
        { groups: recovery.recovered },
        `the previous run stopped mid-delivery; ${recovery.recovered} groups it may have changed will be checked and re-sent`,
      );
    }
    checkpoint = recovery.checkpoint;
    if (progress?.backfill) {
      // The killed run was a backfill: it continues after what its prefix proves was handled.
      const { through, ...scope } = progress.backfill;
      const saved = await readBackfillState(paths.backfill);
      if (prefix) await writeBackfillState(paths.backfill, scope, through);
      else if (!saved) await writeBackfillState(paths.backfill, scope, undefined);
    }
    await removeFile(paths.progress);
  }
  let previousPath: string | undefined;
  if (checkpoint) {
    previousPath = paths.snapshot(checkpoint.snapshot.file);
    const header = await readSnapshotHeader(previousPath);
    const names = checkpoint.properties.map((property) => property.name);
    if (header.hierarchical !== hierarchical || JSON.stringify(header.properties) !== JSON.stringify(names)) {
      throw new StateError(`snapshot ${previousPath} does not match ${paths.checkpoint}`, {
        code: "STATE_CORRUPT",
        action:
          "Restore the state folder from a backup, or run `groupsync reset <sync> --yes` (every group is re-sent).",
      });
    }
  }
  if (!options.plan) await removeStrayFiles(paths.dir, new Set(checkpoint ? [checkpoint.snapshot.file] : []));
  return { checkpoint, previousPath };
}

/**
 * The prefix a killed run made durable, if it can be trusted: written on top of the current checkpoint, with a
 * readable header in the layout the progress file names (and that the killed run would have planned).
 */
async function usablePrefix(
  progress: Progress,
  checkpoint: Checkpoint | undefined,
  paths: SyncStatePaths,
  hierarchical: boolean,
): Promise<RecoverPrefix | undefined> {
  if (progress.previous !== (checkpoint?.snapshot.file ?? null)) return undefined;
  const path = paths.snapshot(progress.file);
  const names = progress.properties.map((property) => property.name);
  try {
    const header = await readSnapshotHeader(path);
    if (header.hierarchical !== hierarchical || JSON.stringify(header.properties) !== JSON.stringify(names)) {
      return undefined;
    }
  } catch {
    return undefined;
  }
  const current = progress.properties.filter((property) => !property.retired);
  const layout = planLayout(current, checkpoint?.properties ?? []);
  if (JSON.stringify(layout.properties.map((property) => property.name)) !== JSON.stringify(names)) return undefined;
  return { path, through: progress.through, properties: progress.properties, translate: layout.translate };
}
