/**
 * Hash push-down: a full read in which an unchanged row costs its key and 8 bytes.
 *
 * 1. The hash pass streams (key, row hash) from the warehouse, which computes the hash (`HashReader.keys`), and
 *    merges it with the previous snapshot's row hashes: each key is unchanged, changed (or new), duplicated or
 *    rejected. The verdicts go to a key log on disk, so memory stays flat.
 * 2. The fetch pass reads the log back in key order and fetches the full rows of the changed keys, many thousand
 *    keys per query (`HashReader.lookup`). Unchanged groups reach the merge as carries, without their cells.
 *
 * When most rows changed, looking them up costs more than reading the table again: the read falls back to a plain
 * full read, which costs one extra pass over keys and hashes. A row that changes between the passes is fetched as
 * it is then (its new hash is computed from the fetched cells), one that is deleted meanwhile is kept as it was.
 */
import type { Logger } from "pino";
import type { CompiledMapping } from "../mapping/mapper.js";
import type { HashReader, RawRow, ReadOptions } from "../source.js";
import { compareKeys, type GroupKey } from "../state/key-order.js";
import { runHashPass } from "./hash-pass.js";
import { KeyFlag, KeyLog, type KeyRecord } from "./key-log.js";
import { keyTexts, type ReadContext, type SourceGroup } from "./read-groups.js";
import { hashBytes } from "./row-hash.js";

export interface HashedReadOptions {
  readonly reader: HashReader;
  readonly mapping: CompiledMapping;
  /** The previous snapshot, whose row hashes were made with this run's layout. */
  readonly previousPath: string;
  /** Where the key log goes (a temp file). */
  readonly logPath: string;
  readonly context: ReadContext;
  readonly readOptions: ReadOptions;
  readonly log: Logger;
  /** The plain read, for when most rows changed. */
  readonly fallback: () => AsyncIterable<SourceGroup[]>;
  /** Keys per lookup query. */
  readonly lookupKeys?: number;
  /** Fall back to a plain read when more than this share of the groups changed… */
  readonly maxChangedShare?: number;
  /** …or when the changed keys would need more lookups than this. */
  readonly maxLookups?: number;
}

/**
 * The columns a row hash covers: the cells of the properties read from the source, in mapping order (the merge
 * hashes the same cells, `hashedCells`). Constants (`value:`) are left out: they are not in the source, and a
 * changed constant changes the layout, which makes every row hash incomparable anyway.
 */
export function hashColumns(mapping: CompiledMapping): string[] {
  return mapping.properties.filter((property) => property.constant === undefined).map((p) => p.column.name);
}

/** Picks the cells `hashColumns` covers out of a group's property cells; the cells themselves when all are. */
export function hashedCells(
  mapping: CompiledMapping,
): (cells: readonly (string | null)[]) => readonly (string | null)[] {
  const indexes = mapping.properties.flatMap((property, index) => (property.constant === undefined ? [index] : []));
  if (indexes.length === mapping.properties.length) return (cells) => cells;
  return (cells) => indexes.map((index) => cells[index] ?? null);
}

interface PassResult {
  readonly groups: number;
  readonly changed: number;
  readonly identical: boolean;
}

/** The cells of a group the fetch pass did not fetch. */
const NO_CELLS: readonly (string | null)[] = Object.freeze([]);

function keyOf(record: KeyRecord): GroupKey {
  return { groupId: record.a, companyId: record.b };
}

export class HashedRead {
  readonly #o: HashedReadOptions;
  readonly #keys: KeyLog;
  /** The verdict of the hash pass, for the run's log. */
  outcome: { groups: number; changed: number; lookups: number; fellBack: boolean } | undefined;

  constructor(options: HashedReadOptions) {
    this.#o = options;
    this.#keys = new KeyLog(options.logPath);
  }

  #pass: Promise<PassResult> | undefined;

  /** Runs the hash pass (once). */
  #passResult(): Promise<PassResult> {
    this.#pass ??= this.#hashPass();
    return this.#pass;
  }

  /**
   * Whether the source holds exactly the snapshot's groups, each unchanged (no changed, new, missing, duplicated or
   * rejected key): the new snapshot would be the previous one, byte for byte. Runs the hash pass first.
   */
  async identical(): Promise<boolean> {
    return (await this.#passResult()).identical;
  }

  async *groups(): AsyncGenerator<SourceGroup[]> {
    const { groups, changed } = await this.#passResult();
    const o = this.#o;
    const lookupKeys = o.lookupKeys ?? 20_000;
    const lookups = Math.ceil(changed / lookupKeys);
    const fellBack = changed > (o.maxChangedShare ?? 0.2) * groups || lookups > (o.maxLookups ?? 10);
    this.outcome = { groups, changed, lookups: fellBack ? 0 : lookups, fellBack };
    if (fellBack) {
      o.log.info(
        { groups, changed },
        `${changed} of ${groups} groups changed: reading full rows instead of looking them up by key`,
      );
      await this.#keys.dispose();
      yield* o.fallback();
      return;
    }
    o.log.info({ groups, changed, lookups }, `hash pass: ${changed} of ${groups} groups changed`);
    yield* this.#fetchPass(lookupKeys);
  }

  /** Pass 1: keys and row hashes against the snapshot's row hashes, into the key log (hash-pass.ts). */
  async #hashPass(): Promise<PassResult> {
    const o = this.#o;
    try {
      const result = await runHashPass({
        reader: o.reader,
        mapping: o.mapping,
        spec: { ...o.mapping.readSpec, hashColumns: hashColumns(o.mapping) },
        readOptions: o.readOptions,
        previousPath: o.previousPath,
        log: this.#keys,
        ...(o.context.onRows ? { onRows: o.context.onRows } : {}),
      });
      await this.#keys.finish();
      const { groups, changed, rejected, missing } = result;
      return { groups, changed, identical: changed === 0 && rejected === 0 && missing === 0 };
    } catch (error) {
      await this.#keys.dispose();
      throw error;
    }
  }

  /** Pass 2: the log back in key order, with the changed keys' full rows looked up in batches. */
  async *#fetchPass(lookupKeys: number): AsyncGenerator<SourceGroup[]> {
    const o = this.#o;
    const spec = o.mapping.readSpec;
    const int64 = o.reader.hashInRows === true;
    // A reader whose hashes come with its rows returns each row's hash after its cells: the snapshot keeps it.
    const lookupSpec = int64 ? { ...spec, rowHash: hashColumns(o.mapping) } : spec;
    const { summary, rejects, counters } = o.context;
    const ahead = this.#keys.records();
    let rows: readonly RawRow[] = [];
    let at = 0;
    let left = 0;

    let aheadBlock: KeyRecord[] = [];
    let aheadAt = 0;
    const nextBatch = async () => {
      const keys: string[][] = [];
      while (keys.length < lookupKeys) {
        if (aheadAt >= aheadBlock.length) {
          const next = await ahead.next();
          if (next.done) break;
          aheadBlock = next.value;
          aheadAt = 0;
        }
        const record = aheadBlock[aheadAt++]!;
        if (record.flag === KeyFlag.Changed) keys.push(keyTexts(spec, keyOf(record)));
      }
      rows = await o.reader.lookup(lookupSpec, keys, o.readOptions.signal ? { signal: o.readOptions.signal } : {});
      at = 0;
      left = keys.length;
    };

    try {
      let out: SourceGroup[] = [];
      for await (const block of this.#keys.records()) {
        for (const record of block) {
          switch (record.flag) {
            case KeyFlag.Rejected:
              summary.rows_read++;
              rejects.add(record.a, record.b);
              break;
            case KeyFlag.Unchanged:
              summary.rows_read += record.copies;
              counters.valid += record.copies;
              out.push({ key: keyOf(record), cells: NO_CELLS, copies: 1, carry: "unchanged", run: record.copies });
              break;
            case KeyFlag.Duplicate:
              summary.rows_read += record.copies;
              counters.valid += record.copies;
              out.push({ key: keyOf(record), cells: NO_CELLS, copies: record.copies });
              break;
            default: {
              if (left === 0) await nextBatch();
              left--;
              const key = keyOf(record);
              let found: SourceGroup | undefined;
              let copies = 0;
              for (; at < rows.length; at++) {
                const raw = rows[at]!;
                const row = o.mapping.map(raw);
                if (!row.ok) continue; // cannot happen: it has the key we asked for
                const order = compareKeys(row.key, key);
                if (order < 0) continue;
                if (order > 0) break;
                found ??= {
                  key: row.key,
                  cells: row.cells,
                  copies: 1,
                  ...(int64 ? { hash: hashBytes(raw[spec.columns.length], true) } : {}),
                };
                copies++;
              }
              summary.rows_read += copies;
              counters.valid += copies;
              out.push(found ? { ...found, copies } : { key, cells: NO_CELLS, copies: 0, carry: "gone" });
            }
          }
        }
        if (out.length >= 1024) {
          yield out;
          out = [];
        }
      }
      if (out.length > 0) yield out;
    } finally {
      await ahead.return(undefined);
      await this.#keys.dispose();
    }
  }

  async dispose(): Promise<void> {
    await this.#keys.dispose();
  }
}
