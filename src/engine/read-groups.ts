/**
 * Source rows → mapped groups in key order: the input of the merge with the snapshot. A full read (or a backfill)
 * arrives in key order from the source. An incremental read arrives in cursor order, one keyset page at a time, and
 * is staged and sorted first (sorted-spill.ts).
 */
import { SourceError } from "../errors.js";
import type { CompiledMapping } from "../mapping/mapper.js";
import type { ChangeReader, ChangeSpec, RawRow, ReadSpec } from "../source.js";
import { compareKeys, formatKey, type GroupKey } from "../state/key-order.js";
import type { RejectLog } from "./reject-log.js";
import { hashBytes } from "./row-hash.js";
import type { SortedSpill } from "./sorted-spill.js";
import type { RunSummary } from "./summary.js";

/** One group of the source: its key, its property cells, and how many rows carried the key (1 unless duplicated). */
export interface SourceGroup {
  readonly key: GroupKey;
  readonly cells: readonly (string | null)[];
  readonly copies: number;
  /**
   * A hashed read (hashed-read.ts) sends no cells for a row whose hash equals the snapshot's ("unchanged"), nor for
   * a changed one that was deleted before its full row was fetched ("gone"): the merge keeps the snapshot's entry.
   */
  readonly carry?: "unchanged" | "gone";
  /**
   * Carry "unchanged": the number of snapshot entries to carry from `key` on (the hash pass matched each of them
   * to a source row, in order, with no other entry between them); 1 when absent.
   */
  readonly run?: number;
  /** The row hash the source returned with the row (`HashReader.hashInRows`), as snapshots store it. */
  readonly hash?: string;
}

export interface ReadContext {
  readonly mapping: CompiledMapping;
  readonly summary: RunSummary;
  readonly rejects: RejectLog;
  /** Rows whose key was valid. */
  readonly counters: { valid: number };
  /** Called after each chunk or page with the rows read so far. */
  readonly onRows?: (rows: number) => void;
}

/** The key as texts of the read's `orderBy` columns (the form `ReadSpec.after` and lookups take). */
export function keyTexts(spec: ReadSpec, key: GroupKey): string[] {
  return spec.orderBy.length === 2 ? [key.companyId, key.groupId] : [key.groupId];
}

export function outOfOrder(before: GroupKey, after: GroupKey, what: string): SourceError {
  return new SourceError(
    `rows arrived out of order (${formatKey(before)} before ${formatKey(after)}); the diff needs ${what}`,
    {
      code: "SOURCE_ORDER",
      action:
        "Check that the database encoding is UTF-8 and that the Group ID and Company ID columns are text or integers.",
    },
  );
}

/**
 * Maps rows that arrive in key order into groups, rejecting bad rows and counting duplicated keys. `after`: the
 * read was asked for keys after this one (a resumed backfill); a row at or before it means the source ignored that.
 */
export async function* orderedGroups(
  chunks: AsyncIterable<readonly RawRow[]>,
  context: ReadContext,
  after?: GroupKey,
  /** Where each row's hash is, when the source returns one (`ReadSpec.rowHash`). */
  hashAt?: number,
): AsyncGenerator<SourceGroup[]> {
  const { mapping, summary, rejects, counters } = context;
  let pending: { key: GroupKey; cells: readonly (string | null)[]; copies: number; hash?: string } | undefined;
  for await (const chunk of chunks) {
    const groups: SourceGroup[] = [];
    for (const raw of chunk) {
      summary.rows_read++;
      const row = mapping.map(raw);
      if (!row.ok) {
        rejects.add(row.key ?? "(no key)", row.reason);
        continue;
      }
      counters.valid++;
      if (pending) {
        const order = compareKeys(pending.key, row.key);
        if (order === 0) {
          pending.copies++;
          continue;
        }
        if (order > 0) throw outOfOrder(pending.key, row.key, "code-point order");
        groups.push(pending);
      } else if (after && compareKeys(row.key, after) <= 0) {
        throw outOfOrder(after, row.key, "the rows after the backfill's resume point");
      }
      pending = { key: row.key, cells: row.cells, copies: 1 };
      if (hashAt !== undefined) pending.hash = hashBytes(raw[hashAt], true);
    }
    context.onRows?.(summary.rows_read);
    if (groups.length > 0) yield groups;
  }
  if (pending) yield [pending];
}

export interface StageOptions {
  readonly cursor: string;
  readonly since?: string;
  readonly until?: string;
  readonly pageSize: number;
  readonly signal?: AbortSignal;
  /** Checked between pages: a graceful stop. */
  readonly stop?: AbortSignal;
}

/**
 * Reads every row changed since `since` in keyset pages ordered by (cursor, key), never OFFSET: a row that changes
 * while the run pages moves forward and is read again (the spill keeps the later copy), none is skipped. Stages the
 * mapped rows in `spill`. Returns the new watermark: the cursor value of the last row read, as the database
 * rendered it (the greatest, as pages are in cursor order), or `since` when nothing changed.
 */
export async function stageChanges(
  reader: ChangeReader,
  options: StageOptions,
  context: ReadContext,
  spill: SortedSpill,
): Promise<string | undefined> {
  const { mapping, summary, rejects, counters } = context;
  const spec = mapping.readSpec;
  const cursorIndex = mapping.cursor!.index;
  const keyIndexes = spec.orderBy.map((column) => spec.columns.indexOf(column));
  let position: ChangeSpec["position"];
  for (let page = 0; ; page++) {
    options.stop?.throwIfAborted();
    const rows = await reader.page(
      {
        ...spec,
        cursor: options.cursor,
        limit: options.pageSize,
        ...(options.since !== undefined ? { since: options.since } : {}),
        ...(options.until !== undefined ? { until: options.until } : {}),
        ...(position ? { position } : {}),
      },
      options.signal ? { signal: options.signal } : {},
    );
    for (const raw of rows) {
      summary.rows_read++;
      const row = mapping.map(raw);
      if (!row.ok) {
        rejects.add(row.key ?? "(no key)", row.reason);
        continue;
      }
      counters.valid++;
      await spill.add({ key: row.key, cells: row.cells, page });
    }
    context.onRows?.(summary.rows_read);
    const last = rows.at(-1);
    if (last) {
      position = {
        cursor: last[cursorIndex] as string,
        key: keyIndexes.map((index) => last[index] as string),
      };
    }
    if (rows.length < options.pageSize) break;
  }
  return position?.cursor ?? options.since;
}
