/**
 * The last step of a run: the new snapshot is made durable and renamed into place, then the checkpoint that names
 * it is written, then the old snapshot, the journal and the progress file go. Whatever instant a crash hits, the
 * checkpoint names a complete snapshot.
 */
import { rm, stat } from "node:fs/promises";
import type { Layout } from "../diff/layout.js";
import { type StateIdentity, writeCheckpoint } from "../state/checkpoint.js";
import type { Journal } from "../state/journal.js";
import { mergeSnapshots } from "../state/snapshot-cursor.js";
import { type SnapshotHeader, SnapshotWriter } from "../state/snapshot-file.js";
import { commitFile, linkFile, type SyncStatePaths } from "../state/state-dir.js";
import { CountingWriter } from "./run-progress.js";

export interface CommitOptions {
  readonly paths: SyncStatePaths;
  readonly runId: string;
  readonly identity: StateIdentity;
  readonly header: SnapshotHeader;
  readonly layout: Layout;
  /** The groups written during the run, in key order. */
  readonly main: CountingWriter;
  readonly mainTemp: string;
  /** Mirror delete candidates kept (held back, or not acknowledged), in key order: merged into the snapshot. */
  readonly kept?: { readonly writer: SnapshotWriter; readonly path: string };
  /** The snapshot the run diffed against, removed once the new one is in place. */
  readonly previousPath: string | undefined;
  readonly journal: Journal | undefined;
  /** Temp files to clean up later (the merged file is added here). */
  readonly temps: string[];
  /**
   * The run found every group unchanged: the previous snapshot (with these per-property counts) becomes the new one
   * under the new name, as a hard link, instead of `main` (which is left empty).
   */
  readonly reuse?: { readonly groups: number; readonly counts: readonly number[] };
}

export async function commitSnapshot(options: CommitOptions): Promise<void> {
  const { paths, main, kept, reuse } = options;
  const file = `snapshot-${options.runId}.bin`;
  if (reuse && options.previousPath && !kept) {
    // The bytes are durable already: a second name for them, then the checkpoint, then the old name goes.
    await linkFile(options.previousPath, paths.snapshot(file), paths.dir);
    await finishCommit(options, file, reuse.groups, reuse.counts);
    return;
  }
  await main.writer.finish();
  let final = options.mainTemp;
  let counts: readonly number[] = main.counts;
  let groups = main.writer.count;
  if (kept) {
    await kept.writer.finish();
    const mergedTemp = `${paths.dir}/merged-${options.runId}.tmp`;
    options.temps.push(mergedTemp);
    const merged = new CountingWriter(await SnapshotWriter.create(mergedTemp, options.header), counts.length);
    await mergeSnapshots(options.mainTemp, kept.path, merged.add);
    await merged.writer.finish();
    final = mergedTemp;
    counts = merged.counts;
    groups = merged.writer.count;
  }
  await commitFile(final, paths.snapshot(file), paths.dir);
  await finishCommit(options, file, groups, counts);
}

/** Writes the checkpoint naming `file`, then removes the previous snapshot, the journal and the progress file. */
async function finishCommit(
  options: CommitOptions,
  file: string,
  groups: number,
  counts: readonly number[],
): Promise<void> {
  const { paths } = options;
  const bytes = (await stat(paths.snapshot(file))).size;
  await writeCheckpoint(paths.checkpoint, {
    format: "groupsync-checkpoint",
    version: 1,
    identity: options.identity,
    snapshot: { file, groups, bytes },
    properties: options.layout.properties.map((property, i) => ({ ...property, groups_set: counts[i] ?? 0 })),
    updated_at: new Date().toISOString(),
  });
  if (options.previousPath) await rm(options.previousPath, { force: true });
  await options.journal?.remove();
  await rm(paths.progress, { force: true });
}
