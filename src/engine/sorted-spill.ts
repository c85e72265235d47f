/**
 * Stages the rows of an incremental read, which arrive in cursor order, and hands them back in key order for the
 * merge with the snapshot: an external merge sort with bounded memory. Up to `maxRows` rows are sorted in memory;
 * beyond that, sorted runs go to temp files (JSON lines) that are merged back as a stream.
 *
 * A key read more than once is a row that changed again while the run was paging (it moved to a later page):
 * the copy from the latest page wins. Copies within one page are two rows with one Group ID (`copies` > 1).
 */
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { createInterface } from "node:readline";
import { compareKeys, type GroupKey } from "../state/key-order.js";
import type { SourceGroup } from "./read-groups.js";

/** One mapped row of an incremental read. */
export interface StagedRow {
  readonly key: GroupKey;
  readonly cells: readonly (string | null)[];
  /** The page it came from: later pages hold later versions. */
  readonly page: number;
}

type Encoded = [companyId: string, groupId: string, page: number, cells: (string | null)[], userId?: string];

function compareStaged(a: StagedRow, b: StagedRow): number {
  return compareKeys(a.key, b.key) || a.page - b.page;
}

export class SortedSpill {
  readonly #files: string[] = [];
  #rows: StagedRow[] = [];

  /**
   * @param pathFor names the n-th run file (in the state folder, ending in `.tmp`, so a crash leaves no litter
   * that the next run does not remove)
   */
  constructor(
    private readonly pathFor: (n: number) => string,
    private readonly maxRows = 50_000,
  ) {}

  async add(row: StagedRow): Promise<void> {
    this.#rows.push(row);
    if (this.#rows.length >= this.maxRows) await this.#spill();
  }

  async #spill(): Promise<void> {
    const rows = this.#rows.sort(compareStaged);
    this.#rows = [];
    const path = this.pathFor(this.#files.length);
    this.#files.push(path);
    const out = createWriteStream(path, { mode: 0o600 });
    const done = new Promise<void>((resolve, reject) => {
      out.on("error", reject);
      out.on("finish", resolve);
    });
    for (const row of rows) {
      const { companyId, groupId, userId } = row.key;
      const encoded: Encoded = [companyId, groupId, row.page, [...row.cells]];
      if (userId !== undefined) encoded.push(userId);
      const line = `${JSON.stringify(encoded)}\n`;
      if (!out.write(line)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    }
    out.end();
    await done;
  }

  /** The staged rows in key order, one group per key (see the class comment for copies). Call once. */
  async *groups(): AsyncGenerator<SourceGroup[]> {
    const sources: AsyncIterator<StagedRow>[] = [];
    if (this.#files.length === 0) {
      sources.push(fromArray(this.#rows.sort(compareStaged)));
    } else {
      if (this.#rows.length > 0) await this.#spill();
      for (const file of this.#files) sources.push(readRun(file));
    }
    this.#rows = [];
    const heads: (StagedRow | undefined)[] = [];
    for (const source of sources) heads.push((await source.next()).value);
    let chunk: SourceGroup[] = [];
    let group: { key: GroupKey; cells: readonly (string | null)[]; page: number; copies: number } | undefined;
    try {
      for (;;) {
        let smallest = -1;
        for (let i = 0; i < heads.length; i++) {
          const head = heads[i];
          if (head && (smallest < 0 || compareStaged(head, heads[smallest]!) < 0)) smallest = i;
        }
        if (smallest < 0) break;
        const row = heads[smallest]!;
        heads[smallest] = (await sources[smallest]!.next()).value;
        if (group && compareKeys(group.key, row.key) === 0) {
          // Rows of one key come in page order: a later page replaces, the same page counts a copy.
          if (row.page === group.page) group.copies++;
          else group = { key: row.key, cells: row.cells, page: row.page, copies: 1 };
          continue;
        }
        if (group) chunk.push({ key: group.key, cells: group.cells, copies: group.copies });
        if (chunk.length >= 1000) {
          yield chunk;
          chunk = [];
        }
        group = { key: row.key, cells: row.cells, page: row.page, copies: 1 };
      }
      if (group) chunk.push({ key: group.key, cells: group.cells, copies: group.copies });
      if (chunk.length > 0) yield chunk;
    } finally {
      for (const source of sources) await source.return?.(undefined);
    }
  }

  /** Removes the run files. */
  async dispose(): Promise<void> {
    this.#rows = [];
    for (const file of this.#files) await rm(file, { force: true });
  }
}

async function* fromArray(rows: readonly StagedRow[]): AsyncGenerator<StagedRow> {
  yield* rows;
}

async function* readRun(path: string): AsyncGenerator<StagedRow> {
  const lines = createInterface({
    input: createReadStream(path, { encoding: "utf8" }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  try {
    for await (const line of lines) {
      if (line === "") continue;
      const [companyId, groupId, page, cells, userId] = JSON.parse(line) as Encoded;
      yield { key: userId === undefined ? { companyId, groupId } : { companyId, groupId, userId }, cells, page };
    }
  } finally {
    lines.close();
  }
}
