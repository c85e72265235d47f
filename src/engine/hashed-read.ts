/**
 * Hash push-down: a full read in which an unchanged row costs its key and 8 bytes.
 *
 * 1. The hash pass (hash-pass.ts) streams (key, row hash) from the warehouse, which computes the hash, and merges
 *    it with the previous snapshot's row hashes: each key is unchanged, changed (or new), duplicated or rejected.
 *    The verdicts go to a bounded queue (key-queue.ts); unchanged keys go as runs.
 * 2. The fetch pass reads the queue in key order, while the hash pass goes on, and fetches the full rows of the
 *    changed keys, thousands of keys per query (`HashReader.lookup`). Unchanged groups reach the merge as carries,
 *    without their cells. So the merge and its deliveries run while the warehouse is still hashing.
 *
 * The fetch pass starts once the hash pass has ended, filled the queue, or read `streamAfter` groups with something
 * changed. A hash pass that ends with nothing changed lets the run keep the previous snapshot (`identical`). When
 * most rows changed, looking them up costs more than reading the table again: the read falls back to a plain full
 * read. A row that changes between the passes is fetched as it is then (the fetched row brings its new hash), one
 * that is deleted meanwhile is kept as it was.
 */
import type { Logger } from "pino";
import type { CompiledMapping } from "../mapping/mapper.js";
import type { HashReader, RawRow, ReadOptions } from "../source.js";
import { compareKeys, type GroupKey } from "../state/key-order.js";
import { type HashPassResult, runHashPass } from "./hash-pass.js";
import { KeyFlag, KeyQueue, type KeyRecord } from "./key-queue.js";
import { keyTexts, type ReadContext, type SourceGroup } from "./read-groups.js";
import { hashBytes } from "./row-hash.js";

export interface HashedReadOptions {
  readonly reader: HashReader;
  readonly mapping: CompiledMapping;
  /** The previous snapshot, whose row hashes were made with this run's layout. */
  readonly previousPath: string;
  readonly context: ReadContext;
  readonly readOptions: ReadOptions;
  readonly log: Logger;
  /** The plain read, for when most rows changed. */
  readonly fallback: () => AsyncIterable<SourceGroup[]>;
  /** Keys per lookup query. */
  readonly lookupKeys?: number;
  /** Fall back to a plain read when more than this share of the groups changed… */
  readonly maxChangedShare?: number;
  /** …or when the changed keys would need more lookups than this (judged when the hash pass ended first). */
  readonly maxLookups?: number;
  /** Groups the hash pass reads before the fetch pass starts alongside it (when something changed). */
  readonly streamAfter?: number;
  /** Records the queue holds before the hash pass waits for the fetch pass. */
  readonly queueLimit?: number;
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
  readonly #queue: KeyQueue;
  /** Stops the hash pass (a fallback, or a run that ends early). */
  readonly #stop = new AbortController();
  /** The verdict of the hash pass, for the run's log. */
  outcome: { groups: number; changed: number; lookups: number; fellBack: boolean } | undefined;

  #pass: Promise<void> | undefined;
  /** The hash pass's counts so far, and its result once it ended. */
  #seen: HashPassResult = { rows: 0, groups: 0, changed: 0, rejected: 0, missing: 0 };
  #result: PassResult | undefined;
  /** What the hash pass threw. */
  #failure: { error: unknown } | undefined;
  #wake: (() => void) | undefined;

  constructor(options: HashedReadOptions) {
    this.#o = options;
    this.#queue = new KeyQueue({ limit: options.queueLimit ?? 65_536, onFull: () => this.#notify() });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Starts the hash pass (once). */
  #start(): void {
    this.#pass ??= this.#hashPass();
  }

  /** Whether the fetch pass can start: see the file's comment. */
  #ready(): boolean {
    if (this.#result || this.#queue.finished || this.#queue.full) return true;
    const seen = this.#seen;
    const changes = seen.changed + seen.rejected + seen.missing;
    return changes > 0 && seen.groups >= (this.#o.streamAfter ?? 100_000);
  }

  async #whenReady(): Promise<void> {
    this.#start();
    while (!this.#ready()) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /**
   * Whether the source holds exactly the snapshot's groups, each unchanged (no changed, new, missing, duplicated or
   * rejected key): the new snapshot would be the previous one, byte for byte. False as soon as the hash pass finds
   * otherwise; throws what the hash pass threw.
   */
  async identical(): Promise<boolean> {
    await this.#whenReady();
    if (this.#failure) throw this.#failure.error;
    return this.#result?.identical ?? false;
  }

  async *groups(): AsyncGenerator<SourceGroup[]> {
    await this.#whenReady();
    // A hash pass that failed before the fetch pass started fails the read (no fallback hides it).
    if (this.#failure) throw this.#failure.error;
    const o = this.#o;
    const { groups, changed } = this.#result ?? this.#seen;
    const lookupKeys = o.lookupKeys ?? 20_000;
    const lookups = Math.ceil(changed / lookupKeys);
    const fellBack =
      changed > (o.maxChangedShare ?? 0.2) * groups || (this.#result !== undefined && lookups > (o.maxLookups ?? 10));
    this.outcome = { groups, changed, lookups: fellBack ? 0 : lookups, fellBack };
    if (fellBack) {
      o.log.info(
        { groups, changed },
        `${changed} of ${groups} groups changed: reading full rows instead of looking them up by key`,
      );
      await this.dispose();
      yield* o.fallback();
      return;
    }
    if (this.#result) o.log.info({ groups, changed, lookups }, `hash pass: ${changed} of ${groups} groups changed`);
    else o.log.info({ groups, changed }, `hash pass: ${changed} of the first ${groups} groups changed; fetching them`);
    yield* this.#fetchPass(lookupKeys);
    if (this.outcome && this.#result) {
      this.outcome = { ...this.outcome, groups: this.#result.groups, changed: this.#result.changed };
    }
  }

  /** Pass 1: keys and row hashes against the snapshot's row hashes, into the queue (hash-pass.ts). */
  async #hashPass(): Promise<void> {
    const o = this.#o;
    const signal = o.readOptions.signal
      ? AbortSignal.any([o.readOptions.signal, this.#stop.signal])
      : this.#stop.signal;
    try {
      const result = await runHashPass({
        reader: o.reader,
        mapping: o.mapping,
        spec: { ...o.mapping.readSpec, hashColumns: hashColumns(o.mapping) },
        readOptions: { ...o.readOptions, signal },
        previousPath: o.previousPath,
        log: this.#queue,
        onRows: (rows, seen) => {
          this.#seen = seen;
          this.#queue.flush();
          o.context.onRows?.(rows);
          this.#notify();
        },
      });
      const { groups, changed, rejected, missing } = result;
      this.#seen = result;
      this.#result = { groups, changed, identical: changed === 0 && rejected === 0 && missing === 0 };
      this.#queue.finish();
    } catch (error) {
      this.#failure = { error };
      this.#queue.fail(error);
    } finally {
      this.#notify();
    }
  }

  /**
   * Pass 2: the queue in key order, with the changed keys' full rows looked up in batches: up to `lookupKeys` keys,
   * and, while the hash pass goes on, at least a few thousand (fewer queries), unless the queue is full.
   */
  async *#fetchPass(lookupKeys: number): AsyncGenerator<SourceGroup[]> {
    const o = this.#o;
    const spec = o.mapping.readSpec;
    const int64 = o.reader.hashInRows === true;
    // A reader whose hashes come with its rows returns each row's hash after its cells: the snapshot keeps it.
    const lookupSpec = int64 ? { ...spec, rowHash: hashColumns(o.mapping) } : spec;
    const { summary, rejects, counters } = o.context;
    const main = this.#queue.reader(true);
    const ahead = this.#queue.reader(false);
    const fewest = Math.min(lookupKeys, 2_000);
    let rows: readonly RawRow[] = [];
    let at = 0;
    let left = 0;

    const nextBatch = async () => {
      const keys: string[][] = [];
      while (keys.length < lookupKeys) {
        let record = ahead.nextNow();
        if (!record) {
          // Nothing more yet: wait for the hash pass only while the batch is small and the queue has room.
          if (keys.length >= fewest || this.#queue.full) break;
          record = await ahead.next();
          if (!record) break;
        }
        if (record.flag === KeyFlag.Changed) keys.push(keyTexts(spec, keyOf(record)));
      }
      rows = await o.reader.lookup(lookupSpec, keys, o.readOptions.signal ? { signal: o.readOptions.signal } : {});
      at = 0;
      left = keys.length;
    };

    try {
      let out: SourceGroup[] = [];
      for (;;) {
        let record = main.nextNow();
        if (!record) {
          // Hand over what is ready before waiting for the hash pass.
          if (out.length > 0) {
            yield out;
            out = [];
          }
          record = await main.next();
          if (!record) break;
        }
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
        if (out.length >= 1024) {
          yield out;
          out = [];
        }
      }
      if (out.length > 0) yield out;
    } finally {
      await this.dispose();
    }
  }

  /** Stops the hash pass if it still runs, and drops the queue. */
  async dispose(): Promise<void> {
    if (this.#pass && !this.#result) this.#stop.abort(new Error("the hashed read stopped"));
    this.#queue.dispose();
    await this.#pass;
  }
}
