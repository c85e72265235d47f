/**
 * What the hash pass of a run learnt, in key order, handed to the fetch pass while the hash pass still runs: a run of
 * unchanged keys (its first key and its length), or one record per changed key (its full row must be fetched),
 * duplicated key, or rejected row. Unchanged keys come as runs, so the queue stays short; it is bounded all the
 * same: the hash pass waits while it is full, and the fetch pass frees what it has read.
 *
 * Two readers walk it: the fetch pass's main reader, which frees blocks behind it, and its look-ahead reader, which
 * gathers the changed keys of the next lookup and never gets behind the main one.
 */

export const KeyFlag = { Unchanged: 0, Changed: 1, Duplicate: 2, Rejected: 3 } as const;
export type KeyFlag = (typeof KeyFlag)[keyof typeof KeyFlag];

/** One record. For a rejected row, `a` is the key as shown and `b` the reason; otherwise Group ID and Company ID. */
export interface KeyRecord {
  readonly flag: KeyFlag;
  /** Rows that carried the key (duplicates); the length of a run of unchanged keys; 1 otherwise. */
  readonly copies: number;
  readonly a: string;
  readonly b: string;
}

const BLOCK = 1024;

export class KeyQueue {
  /** Blocks of records; `#first` is the index of `#blocks[0]` since the start. */
  readonly #blocks: KeyRecord[][] = [[]];
  #first = 0;
  /** Records added and not read by the main reader yet. */
  #held = 0;
  readonly #limit: number;
  #finished = false;
  #failure: { error: unknown } | undefined;
  #producer: (() => void) | undefined;
  #consumers: (() => void)[] = [];
  readonly #onFull: (() => void) | undefined;

  /** `limit`: records held before `add` makes the producer wait; `onFull`: called when it does. */
  constructor(options: { readonly limit?: number; readonly onFull?: () => void } = {}) {
    this.#limit = options.limit ?? 65_536;
    this.#onFull = options.onFull;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Whether the producer waits for the main reader to free records. */
  get full(): boolean {
    return this.#held >= this.#limit;
  }

  /** Adds a record; returns a promise only when the queue is full (await it then). */
  add(record: KeyRecord): Promise<void> | undefined {
    let last = this.#blocks[this.#blocks.length - 1]!;
    if (last.length >= BLOCK) {
      last = [];
      this.#blocks.push(last);
      this.#wakeConsumers();
    }
    last.push(record);
    this.#held++;
    if (this.#held < this.#limit) return undefined;
    this.#wakeConsumers();
    this.#onFull?.();
    return new Promise((resolve) => {
      this.#producer = resolve;
    });
  }

  /** Lets waiting readers see the records added so far (the hash pass calls it after each chunk of rows). */
  flush(): void {
    this.#wakeConsumers();
  }

  /** No more records. */
  finish(): void {
    this.#finished = true;
    this.#wakeConsumers();
  }

  /** The producer failed: readers throw `error` once they reach the end of what was added. */
  fail(error: unknown): void {
    this.#failure = { error };
    this.finish();
  }

  /** Drops everything and releases a waiting producer (a fallback, or the end of the run). */
  dispose(): void {
    this.#blocks.length = 0;
    this.#blocks.push([]);
    this.#held = 0;
    this.#finished = true;
    this.#wakeConsumers();
    this.#wakeProducer();
  }

  #wakeConsumers(): void {
    const waiting = this.#consumers;
    if (waiting.length === 0) return;
    this.#consumers = [];
    for (const wake of waiting) wake();
  }

  #wakeProducer(): void {
    const wake = this.#producer;
    this.#producer = undefined;
    wake?.();
  }

  /** Resolves when records are added, the queue fills, or it finishes. */
  #more(): Promise<void> {
    return new Promise((resolve) => this.#consumers.push(resolve));
  }

  /** The main reader read a record (`block`: the index of its block): frees the blocks before it. */
  #read(block: number): void {
    this.#held--;
    while (this.#first < block && this.#blocks.length > 1) {
      this.#blocks.shift();
      this.#first++;
    }
    if (this.#held < this.#limit && this.#producer) this.#wakeProducer();
  }

  /** A reader. `frees`: the main reader, which frees what it has read (only one may). */
  reader(frees: boolean): KeyReader {
    return new KeyReader(
      frees,
      () => this.#blocks,
      () => this.#first,
      (block) => this.#read(block),
      () => this.#more(),
      () => this.#finished,
      () => this.#failure,
    );
  }
}

export class KeyReader {
  #block: number;
  #at = 0;

  constructor(
    private readonly frees: boolean,
    private readonly blocks: () => KeyRecord[][],
    private readonly first: () => number,
    private readonly read: (block: number) => void,
    private readonly more: () => Promise<void>,
    private readonly finished: () => boolean,
    private readonly failure: () => { error: unknown } | undefined,
  ) {
    this.#block = first();
  }

  /** The next record if one was added already, else undefined (never waits). */
  nextNow(): KeyRecord | undefined {
    for (;;) {
      // A look-ahead reader behind freed blocks skips them: the main reader has read them, changed keys and all.
      if (this.#block < this.first()) {
        this.#block = this.first();
        this.#at = 0;
      }
      const blocks = this.blocks();
      const block = blocks[this.#block - this.first()];
      if (!block) return undefined;
      if (this.#at < block.length) {
        if (this.frees) this.read(this.#block);
        return block[this.#at++];
      }
      if (this.#block - this.first() >= blocks.length - 1) return undefined;
      this.#block++;
      this.#at = 0;
    }
  }

  /** The next record, waiting for the producer; undefined at the end. Throws the producer's failure. */
  async next(): Promise<KeyRecord | undefined> {
    for (;;) {
      const record = this.nextNow();
      if (record) return record;
      if (this.finished()) {
        const failure = this.failure();
        if (failure) throw failure.error;
        return undefined;
      }
      await this.more();
    }
  }
}
