/**
 * How far a run got. The new snapshot is written in key order as groups are settled; every few seconds its temp
 * file is made durable and progress.json names it (state/progress-file.ts), so a run killed with SIGKILL loses none
 * of its acknowledged work. For a backfill it also tracks the resume point: the last key before which every group
 * was handled (acknowledged, refused, or had nothing to send). The first group with an operation left unsent by a
 * stop freezes it.
 */
import { basename } from "node:path";
import type { PropertyState } from "../state/checkpoint.js";
import type { GroupKey } from "../state/key-order.js";
import { type BackfillScope, writeProgress } from "../state/progress-file.js";
import {
  countSetInRecords,
  countSetProperties,
  type RecordBlock,
  type SnapshotEntry,
  type SnapshotWriter,
} from "../state/snapshot-file.js";
import type { Slot } from "./commit-window.js";

/** A key as a plain object (an entry read from a file decodes its key lazily, and JSON sees no getters). */
const plainKey = (key: GroupKey): GroupKey => ({ companyId: key.companyId, groupId: key.groupId });

/** A snapshot writer that counts the groups holding each property. */
export class CountingWriter {
  readonly counts: number[];
  constructor(
    readonly writer: SnapshotWriter,
    properties: number,
  ) {
    this.counts = new Array(properties).fill(0);
  }
  /** Returns a promise only when a block had to be written. */
  readonly add = (entry: SnapshotEntry): Promise<void> | undefined => {
    countSetProperties(entry, this.counts);
    return this.writer.add(entry);
  };

  /** Records `[from, to)` of a block read from a file (see `SnapshotWriter.addRecords`). */
  addRecords(block: RecordBlock, from: number, to: number): Promise<void> | undefined {
    countSetInRecords(block, from, to, this.counts);
    return this.writer.addRecords(block, from, to);
  }
}

export interface RunProgressOptions {
  readonly main: CountingWriter;
  /** The main writer's temp file. */
  readonly file: string;
  readonly progressPath: string;
  readonly runId: string;
  /** The snapshot file the run diffs against (the checkpoint's), or null. */
  readonly previous: string | null;
  readonly properties: readonly PropertyState[];
  /** A backfill: its scope and where it started (a resumed one starts after a key). */
  readonly backfill?: { readonly scope: BackfillScope; readonly after?: GroupKey };
  readonly intervalMs: number;
}

export class RunProgress {
  readonly #o: RunProgressOptions;
  #written: GroupKey | undefined;
  #committed: GroupKey | undefined;
  #resumable: GroupKey | undefined;
  #blocked = false;
  #last = Date.now();

  constructor(options: RunProgressOptions) {
    this.#o = options;
    this.#resumable = options.backfill?.after;
  }

  /**
   * Writes an entry of the new snapshot. `slot` is given for groups this run handled (read, diffed, sent or
   * carried), not for those it copied over after a failure.
   */
  readonly write = (entry: SnapshotEntry, slot?: Slot): Promise<void> | undefined => {
    const records = slot?.records;
    const wait = records ? this.#o.main.addRecords(records.block, records.from, records.to) : this.#o.main.add(entry);
    this.#written = entry;
    this.#note(slot);
    return wait;
  };

  #note(slot: Slot | undefined): void {
    if (!slot) {
      this.#blocked = true;
      return;
    }
    if (slot.unsent) this.#blocked = true;
    if (!this.#blocked) this.#resumable = this.#written;
  }

  /** A backfill's resume point: every group up to it was handled. */
  get resumable(): GroupKey | undefined {
    return this.#resumable && plainKey(this.#resumable);
  }

  /** Makes the progress durable when the interval has passed and there is something new. */
  async maybeCommit(): Promise<void> {
    if (Date.now() - this.#last < this.#o.intervalMs || !this.#written || this.#written === this.#committed) return;
    this.#last = Date.now();
    const written = this.#written;
    const through = plainKey(written);
    await this.#o.main.writer.durable();
    const backfill = this.#o.backfill;
    await writeProgress(this.#o.progressPath, {
      run: this.#o.runId,
      file: basename(this.#o.file),
      previous: this.#o.previous,
      through,
      properties: [...this.#o.properties],
      ...(backfill
        ? { backfill: { ...backfill.scope, ...(this.#resumable ? { through: plainKey(this.#resumable) } : {}) } }
        : {}),
    });
    this.#committed = written;
  }
}
