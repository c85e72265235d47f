/** Sequential access to a snapshot's entries (peek/next), and the streaming merge of two sorted snapshots. */
import { compareKeys } from "./key-order.js";
import { entryAt, type RecordBlock, readRecordBlocks, type SnapshotEntry } from "./snapshot-file.js";

export class EntryCursor {
  readonly #blocks: AsyncIterator<RecordBlock> | undefined;
  #block: RecordBlock | undefined;
  #index = 0;
  /** The entry at `#index`, made when first peeked at. */
  #entry: SnapshotEntry | undefined;
  #done: boolean;

  constructor(path: string | undefined) {
    this.#blocks = path === undefined ? undefined : readRecordBlocks(path)[Symbol.asyncIterator]();
    this.#done = path === undefined;
  }

  /** Loads the next block when the current one is used up; false at the end. */
  async #load(): Promise<boolean> {
    while (!this.#block || this.#index >= this.#block.count) {
      if (this.#done) return false;
      const next = await this.#blocks!.next();
      if (next.done) {
        this.#done = true;
        this.#block = undefined;
        return false;
      }
      this.#block = next.value;
      this.#index = 0;
      this.#entry = undefined;
    }
    return true;
  }

  /** The next entry without consuming it; undefined at the end. */
  async peek(): Promise<SnapshotEntry | undefined> {
    if (!(await this.#load())) return undefined;
    this.#entry ??= entryAt(this.#block!, this.#index);
    return this.#entry;
  }

  /**
   * The next entry when it is already in memory, `null` at the end, or `undefined` when the next block must be read
   * first (then call `peek`). Saves a promise per entry in the hot loops.
   */
  peekNow(): SnapshotEntry | null | undefined {
    const block = this.#block;
    if (block && this.#index < block.count) {
      this.#entry ??= entryAt(block, this.#index);
      return this.#entry;
    }
    return this.#done ? null : undefined;
  }

  /** Consumes the entry `peek` returned. */
  skip(): void {
    this.#index++;
    this.#entry = undefined;
  }

  /**
   * Consumes the next `count` entries without making them: `each` gets them as ranges of records, one per block,
   * with the last entry of the range (for its key). Throws if the snapshot has fewer.
   */
  async take(
    count: number,
    each: (block: RecordBlock, from: number, to: number, last: SnapshotEntry) => Promise<void> | undefined,
  ): Promise<void> {
    let left = count;
    while (left > 0) {
      if (!(await this.#load())) throw new Error(`the snapshot ended ${left} entries early`);
      const block = this.#block!;
      const from = this.#index;
      const to = Math.min(block.count, from + left);
      this.#index = to;
      this.#entry = undefined;
      left -= to - from;
      const wait = each(block, from, to, entryAt(block, to - 1));
      if (wait) await wait;
    }
  }

  async close(): Promise<void> {
    if (!this.#done) {
      this.#done = true;
      await this.#blocks?.return?.(undefined);
    }
  }
}

/** Streams the union of two sorted snapshots (same layout, no shared keys) into `write`, in key order. */
export async function mergeSnapshots(
  a: string,
  b: string,
  write: (entry: SnapshotEntry) => Promise<void> | undefined,
): Promise<void> {
  const left = new EntryCursor(a);
  const right = new EntryCursor(b);
  try {
    for (;;) {
      const x = await left.peek();
      const y = await right.peek();
      if (!x && !y) return;
      if (x && (!y || compareKeys(x, y) <= 0)) {
        left.skip();
        await write(x);
      } else {
        right.skip();
        await write(y!);
      }
    }
  } finally {
    await left.close();
    await right.close();
  }
}
