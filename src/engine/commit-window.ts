/**
 * Keeps the new snapshot in key order while acknowledgements arrive out of order. Each group read becomes a slot;
 * a slot is written once every operation for it has an outcome. Only slots behind the oldest unresolved one wait
 * in memory, and the engine stops reading when too many wait (backpressure), so memory stays bounded.
 */
import type { RecordBlock, SnapshotEntry } from "../state/snapshot-file.js";

export interface Slot {
  readonly entry: SnapshotEntry;
  /** Operations sent for this group whose outcome is not known yet. */
  pending: number;
  /** Whether to write the entry: false for a new group none of whose operations were acknowledged. */
  keep: boolean;
  /** Some operation was not sent (or its answer never came) because the run stopped. */
  unsent?: boolean;
  /**
   * Unchanged groups carried as they are: these records of a block of the previous snapshot, written as bytes;
   * `entry` is the last of them.
   */
  readonly records?: { readonly block: RecordBlock; readonly from: number; readonly to: number };
}

export class CommitWindow {
  readonly #slots: Slot[] = [];
  #head = 0;
  /** Groups waiting (a slot of carried records counts each of them). */
  #groups = 0;
  #peak = 0;
  #wake: (() => void) | undefined;

  /** Groups waiting in memory. */
  get size(): number {
    return this.#groups;
  }

  /** Most groups that waited at once. */
  get peak(): number {
    return this.#peak;
  }

  push(slot: Slot): void {
    this.#slots.push(slot);
    this.#groups += slot.records ? slot.records.to - slot.records.from : 1;
    if (this.#groups > this.#peak) this.#peak = this.#groups;
  }

  /** Called when a slot's pending count reached zero. */
  notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Writes resolved slots from the front, in order. */
  async drain(write: (entry: SnapshotEntry, slot: Slot) => Promise<void> | undefined): Promise<void> {
    while (this.#head < this.#slots.length) {
      const slot = this.#slots[this.#head]!;
      if (slot.pending > 0) break;
      this.#head++;
      this.#groups -= slot.records ? slot.records.to - slot.records.from : 1;
      if (slot.keep) {
        const wait = write(slot.entry, slot);
        if (wait) await wait;
      }
    }
    if (this.#head > 4096 && this.#head * 2 > this.#slots.length) {
      this.#slots.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** Resolves when some slot resolves (or at once if the front slot is already resolved). */
  async progress(): Promise<void> {
    const front = this.#slots[this.#head];
    if (!front || front.pending === 0) return;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
  }
}
