/**
 * Mirror mode: removes the groups that left the source, only after the whole source was read successfully, and
 * only within the guard (never when the source returned nothing, nor when more than `max_delete_share` of the
 * groups left at once, unless forced). Candidates were spilled, in key order, during the merge.
 */
import type { OperationResult } from "../delivery/delivery.js";
import type { GroupOperation } from "../model.js";
import type { Journal } from "../state/journal.js";
import type { GroupKey } from "../state/key-order.js";
import { EntryCursor } from "../state/snapshot-cursor.js";
import type { SnapshotEntry } from "../state/snapshot-file.js";
import { plainEntry, UNKNOWN_HASH } from "../state/snapshot-file.js";
import { CommitWindow, type Slot } from "./commit-window.js";
import type { OperationSink } from "./merge.js";
import type { RunSummary } from "./summary.js";

export interface GuardInput {
  readonly failed: boolean;
  readonly force: boolean;
  /** Rows with a valid key the source returned. */
  readonly validRows: number;
  /** Groups in the previous snapshot. */
  readonly previousGroups: number;
  readonly candidates: number;
  readonly maxDeleteShare: number;
}

/** Why deletes are held back, or undefined when they may go ahead. */
export function deleteGuard(input: GuardInput): string | undefined {
  const { candidates, previousGroups } = input;
  if (input.failed) return "the run failed";
  if (input.force) return undefined;
  if (input.validRows === 0) return "the source returned no valid rows";
  if (previousGroups > 0 && candidates / previousGroups > input.maxDeleteShare) {
    return `${candidates} of ${previousGroups} groups (${Math.round((100 * candidates) / previousGroups)} %) left the source, more than max_delete_share ${input.maxDeleteShare * 100} %`;
  }
  return undefined;
}

export interface DeleteOptions {
  /** The spilled candidates (a snapshot-format file, key order). */
  readonly candidates: string;
  /** Why deletes are held back: every candidate is then kept. */
  readonly skip: string | undefined;
  readonly summary: RunSummary;
  readonly sink: OperationSink;
  readonly journal: Journal;
  /** The operation that removes a group, or undefined when there is nothing to remove. */
  readonly operation: (entry: SnapshotEntry) => GroupOperation | undefined;
  readonly failed: (key: GroupKey, result: OperationResult & { ok: false }) => void;
  /** Keeps a candidate in the new snapshot (held back, or its delete not acknowledged). */
  readonly keep: (entry: SnapshotEntry) => Promise<void>;
}

/** Sends the deletes; returns the error that stopped them, if one did. */
export async function sendMirrorDeletes(options: DeleteOptions): Promise<unknown> {
  const { skip, summary, sink, journal, keep } = options;
  let failure: unknown;
  const deletions = new CommitWindow();
  const cursor = new EntryCursor(options.candidates);
  if (!skip) await journal.nextSection();
  try {
    for (let stored = await cursor.peek(); stored; stored = await cursor.peek()) {
      cursor.skip();
      if (skip) {
        await keep(stored);
        continue;
      }
      // Entries read from a file are frozen: a failed delete changes this copy.
      const entry = plainEntry(stored);
      const op = options.operation(entry);
      if (!op) continue; // on_delete unset with nothing set: nothing to remove
      const slot: Slot = { entry, pending: 1, keep: true };
      deletions.push(slot);
      try {
        await journal.record(entry, "all");
        await sink.enqueue(op, (result) => {
          if (result.ok) {
            slot.keep = false;
            summary.groups_deleted++;
          } else {
            options.failed(entry, result);
            // It may have been applied: whatever was set is now unknown.
            entry.rowHash = UNKNOWN_HASH;
            for (let i = 0; i < entry.hashes.length; i++) if (entry.hashes[i] !== null) entry.hashes[i] = UNKNOWN_HASH;
          }
          slot.pending = 0;
          deletions.notify();
        });
      } catch (error) {
        failure ??= error;
        slot.pending = 0;
      }
      await deletions.drain(keep);
    }
    try {
      await sink.flush();
    } catch (error) {
      failure ??= error;
    }
    await deletions.drain(keep);
  } finally {
    await cursor.close();
  }
  return failure;
}
