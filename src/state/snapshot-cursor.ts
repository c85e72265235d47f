/** Sequential access to a snapshot's entries (peek/next), and the streaming merge of two sorted snapshots. */
import { compareKeys } from "./key-order.js";
import { readSnapshot, type SnapshotEntry } from "./snapshot-file.js";

export class EntryCursor {
  readonly #blocks: AsyncIterator<SnapshotEntry[]> | undefined;
  #block: SnapshotEntry[] = [];
  #index = 0;
  #done: boolean;

  /** `keysOnly`: entries carry keys and row hashes only (see `readSnapshot`). */
  constructor(path: string | undefined, options: { readonly keysOnly?: boolean } = {}) {
    this.#blocks = path === undefined ? undefined : readSnapshot(path, options)[Symbol.asyncIterator]();
    this.#done = path === undefined;
  }

  /** The next entry without consuming it; undefined at the end. */
  async peek(): Promise<SnapshotEntry | undefined> {
    while (this.#index >= this.#block.length) {
      if (this.#done) return undefined;
      const next = await this.#blocks!.next();
      if (next.done) {
        this.#done = true;
        return undefined;
      }
      this.#block = next.value;
      this.#index = 0;
    }
    return this.#block[this.#index];
  }

  /**
   * The next entry when it is already in memory, `null` at the end, or `undefined` when the next block must be read
   * first (then call `peek`). Saves a promise per entry in the hot loops.
   */
  peekNow(): SnapshotEntry | null | undefined {
    if (this.#index < this.#block.length) return this.#block[this.#index];
    return this.#done ? null : undefined;
  }

  /** Consumes the entry `peek` returned. */
  skip(): void {
    this.#index++;
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
