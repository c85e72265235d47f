/**
 * The write-ahead journal of a run: before a batch is sent, the keys it touches (and which properties) are on disk.
 * A run killed mid-delivery may have changed profiles its snapshot never recorded; the next run folds the journal
 * into the snapshot as "value unknown" marks (see recover.ts), so those groups are re-sent, unset or deleted as the
 * table says, and nothing the crashed run created can linger.
 *
 * Entries are recorded as operations are generated, which is key order within each section (upserts, then mirror
 * deletes), so each section is a sorted snapshot-format file that recovery merges as a stream.
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { GroupKey } from "./key-order.js";
import { type SnapshotHeader, SnapshotWriter, UNKNOWN_HASH } from "./snapshot-file.js";

export const JOURNAL_PREFIX = "journal-";

export class Journal {
  readonly #dir: string;
  readonly #id: string;
  readonly #header: SnapshotHeader;
  #section = 0;
  #writer: SnapshotWriter | undefined;
  #last: GroupKey | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  /** Tasks in the chain not settled yet: a record may skip the chain only when there are none. */
  #queued = 0;
  readonly #files: string[] = [];

  constructor(dir: string, id: string, header: SnapshotHeader) {
    this.#dir = dir;
    this.#id = id;
    this.#header = header;
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    this.#queued++;
    const next = this.#chain.then(task);
    this.#chain = next.then(
      () => void this.#queued--,
      () => void this.#queued--,
    );
    return next;
  }

  /**
   * Records that `key` is about to be changed: `touched` are property indexes whose value becomes unknown until
   * acknowledged, or "all" (a delete); `items`, by property index, JSON arrays of list items that may be added.
   * Repeated keys are merged when a journal is folded in (recover.ts). Returns a promise only when the record had to
   * wait (a file to create, a block to write, an earlier task): most records are appended to the current block at
   * once, with no promise per group.
   */
  record(key: GroupKey, touched: readonly number[] | "all", items?: (string | null)[]): Promise<void> | undefined {
    // The writer takes entries while it writes or fsyncs earlier ones: a record never waits for `durable()`.
    if (this.#writer && this.#queued === 0) return this.#add(this.#writer, key, touched, items);
    return this.#serial(async () => {
      if (!this.#writer) {
        const file = join(this.#dir, `${JOURNAL_PREFIX}${this.#id}-${this.#section}.bin`);
        this.#files.push(file);
        this.#writer = await SnapshotWriter.create(file, this.#header);
      }
      await this.#add(this.#writer, key, touched, items);
    });
  }

  #add(
    writer: SnapshotWriter,
    key: GroupKey,
    touched: readonly number[] | "all",
    items: (string | null)[] | undefined,
  ): Promise<void> | undefined {
    const hashes: (string | null)[] = new Array(this.#header.properties.length).fill(null);
    if (touched === "all") hashes.fill(UNKNOWN_HASH);
    else for (const index of touched) hashes[index] = UNKNOWN_HASH;
    this.#last = key;
    // `items`: list items the operations may add (`op: union`); recovery records them so a later run can remove them.
    return writer.add({
      companyId: key.companyId,
      groupId: key.groupId,
      rowHash: UNKNOWN_HASH,
      hashes,
      ...(items ? { items } : {}),
    });
  }

  /** Starts a new sorted section (the mirror deletes, after the upserts). */
  nextSection(): Promise<void> {
    return this.#serial(async () => {
      if (this.#writer) {
        await this.#writer.durable();
        // Done with this section: close its file (left open, the handle was only closed by the garbage collector).
        await this.#writer.abandon();
      }
      this.#writer = undefined;
      this.#last = undefined;
      this.#section++;
    });
  }

  /**
   * Makes everything recorded so far durable; called before each batch is sent. Not queued behind other calls: the
   * writer shares one fsync among the batches that ask while one is under way, and records go on meanwhile.
   */
  durable(): Promise<void> {
    if (this.#queued === 0) return this.#writer ? this.#writer.durable() : Promise.resolve();
    return this.#serial(async () => {
      await this.#writer?.durable();
    });
  }

  /** The last key recorded in the current section (for ordering checks in tests). */
  get last(): GroupKey | undefined {
    return this.#last;
  }

  /** Closes the file being written, keeping the journal on disk (a failed run leaves it for the next run). */
  abandon(): Promise<void> {
    return this.#serial(async () => {
      await this.#writer?.abandon();
      this.#writer = undefined;
    });
  }

  /** Deletes the journal once the run's state is committed. */
  async remove(): Promise<void> {
    await this.#serial(async () => {
      await this.#writer?.abandon();
      this.#writer = undefined;
    });
    for (const file of this.#files) await rm(file, { force: true });
  }
}

/** Journal files left in a state folder by runs that did not finish. */
export async function findJournals(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir))
      .filter((name) => name.startsWith(JOURNAL_PREFIX) && name.endsWith(".bin"))
      .sort()
      .map((name) => join(dir, name));
  } catch {
    return [];
  }
}
