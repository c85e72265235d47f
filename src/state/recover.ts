/**
 * Folds what unfinished runs left into the snapshot. Their acknowledged prefix (progress-file.ts), when there is
 * one, is the state of every group up to its last key. For every other group, the journals say what a crashed run
 * may have touched: those properties get UNKNOWN_HASH (and the group a new entry if the snapshot did not have it),
 * so the next diff re-sends, unsets or deletes it as the table says. Streams all inputs; writes a new snapshot and
 * checkpoint.
 */
import { rm, stat } from "node:fs/promises";
import { type Checkpoint, type PropertyState, type StateIdentity, writeCheckpoint } from "./checkpoint.js";
import { findJournals } from "./journal.js";
import { compareKeys, type GroupKey } from "./key-order.js";
import { readJournalHeader, readSnapshot, type SnapshotEntry, SnapshotWriter, UNKNOWN_HASH } from "./snapshot-file.js";
import { commitFile, type SyncStatePaths } from "./state-dir.js";

/** A sorted stream of entries with one-entry lookahead. */
class Stream {
  #iterator: AsyncIterator<SnapshotEntry[]>;
  #block: SnapshotEntry[] = [];
  #index = 0;
  #done = false;
  constructor(
    path: string,
    tolerant: boolean,
    readonly map: (entry: SnapshotEntry) => SnapshotEntry,
  ) {
    this.#iterator = readSnapshot(path, { tolerateTruncation: tolerant })[Symbol.asyncIterator]();
  }
  async peek(): Promise<SnapshotEntry | undefined> {
    while (this.#index >= this.#block.length) {
      if (this.#done) return undefined;
      const next = await this.#iterator.next();
      if (next.done) {
        this.#done = true;
        return undefined;
      }
      this.#block = next.value;
      this.#index = 0;
    }
    return this.#block[this.#index];
  }
  skip(): void {
    this.#index++;
  }
  async close(): Promise<void> {
    await this.#iterator.return?.(undefined);
  }
}

/** The acknowledged prefix of a killed run: its snapshot temp file, valid up to `through`. */
export interface RecoverPrefix {
  readonly path: string;
  readonly through: GroupKey;
  /** The killed run's layout: the prefix's hashes are in it, and so is the recovered snapshot. */
  readonly properties: readonly PropertyState[];
  /** Translates an entry of the previous snapshot into that layout (the killed run's own translation). */
  readonly translate: (hashes: readonly (string | null)[]) => (string | null)[];
}

export interface RecoverOptions {
  readonly paths: SyncStatePaths;
  readonly checkpoint: Checkpoint | undefined;
  readonly identity: StateIdentity;
  readonly hierarchical: boolean;
  readonly runId: string;
  readonly prefix?: RecoverPrefix;
}

export interface Recovery {
  readonly checkpoint: Checkpoint | undefined;
  /** Journal entries folded in as "unknown". */
  readonly recovered: number;
  /** Groups taken from the prefix. */
  readonly kept: number;
}

/** Returns the checkpoint to diff against: the given one, or a new one with the prefix and journals folded in. */
export async function recoverJournals(options: RecoverOptions): Promise<Recovery> {
  const journals = await findJournals(options.paths.dir);
  const prefix = options.prefix;
  if (journals.length === 0 && !prefix) return { checkpoint: options.checkpoint, recovered: 0, kept: 0 };

  const previous = options.checkpoint;
  const base = prefix ? prefix.properties : (previous?.properties ?? []);
  const properties = base.map((property) => ({ ...property }));
  const index = new Map(properties.map((property, i) => [property.name, i]));
  // A journal cut short inside its header (a full disk, a kill) recorded nothing: skipped, then removed with the rest.
  const allHeaders = await Promise.all(journals.map((journal) => readJournalHeader(journal)));
  const headers = allHeaders.filter((header) => header !== undefined);
  for (const header of headers) {
    for (const name of header.properties) {
      if (!index.has(name)) {
        index.set(name, properties.length);
        // No definition: whatever the mapping says next, values held under this name count as unknown.
        properties.push({ name, definition: "(recovered)", retired: false, groups_set: 0 });
      }
    }
  }
  const width = properties.length;
  const widen =
    (names: readonly string[]) =>
    (entry: SnapshotEntry): SnapshotEntry => {
      const hashes: (string | null)[] = new Array(width).fill(null);
      names.forEach((name, i) => {
        hashes[index.get(name)!] = entry.hashes[i] ?? null;
      });
      const wide: SnapshotEntry = {
        companyId: entry.companyId,
        groupId: entry.groupId,
        rowHash: entry.rowHash,
        hashes,
      };
      if (entry.items) {
        const items: (string | null)[] = new Array(width).fill(null);
        names.forEach((name, i) => {
          items[index.get(name)!] = entry.items![i] ?? null;
        });
        wide.items = items;
      }
      return wide;
    };
  const streams: Stream[] = [];
  if (previous) {
    const names = previous.properties.map((property) => property.name);
    const map = prefix
      ? (() => {
          const into = widen(prefix.properties.map((property) => property.name));
          // Item lists (op: union) are not translated into the killed run's layout: they are dropped, and a later
          // run re-sends $union for every item (idempotent), but can no longer $remove the ones it forgot.
          return (entry: SnapshotEntry) =>
            into({
              companyId: entry.companyId,
              groupId: entry.groupId,
              rowHash: entry.rowHash,
              hashes: prefix.translate(entry.hashes),
            });
        })()
      : widen(names);
    streams.push(new Stream(options.paths.snapshot(previous.snapshot.file), false, map));
  }
  for (const [i, journal] of journals.entries()) {
    const header = allHeaders[i];
    if (header) streams.push(new Stream(journal, true, widen(header.properties)));
  }
  const prefixNames = prefix?.properties.map((property) => property.name) ?? [];
  let prefixStream = prefix ? new Stream(prefix.path, true, widen(prefixNames)) : undefined;
  if (prefixStream) streams.push(prefixStream);

  const file = `snapshot-${options.runId}-recovered.bin`;
  const temp = `${options.paths.snapshot(file)}.tmp`;
  const writer = await SnapshotWriter.create(temp, {
    properties: properties.map((p) => p.name),
    hierarchical: options.hierarchical,
  });
  const counts: number[] = new Array(width).fill(0);
  let recovered = 0;
  let kept = 0;
  try {
    for (;;) {
      // The prefix is only valid up to `through`: entries after it may describe groups still in flight.
      const head = await prefixStream?.peek();
      if (prefixStream && head && compareKeys(head, prefix!.through) > 0) {
        await prefixStream.close();
        streams.splice(streams.indexOf(prefixStream), 1);
        prefixStream = undefined;
      }
      let smallest: SnapshotEntry | undefined;
      for (const stream of streams) {
        const entry = await stream.peek();
        if (entry && (!smallest || compareKeys(entry, smallest) < 0)) smallest = entry;
      }
      if (!smallest) break;
      const fromPrefix = await prefixStream?.peek();
      if (prefixStream && fromPrefix && compareKeys(fromPrefix, smallest) === 0) {
        // Settled by the killed run after everything its journal says: the prefix has the final word.
        for (const stream of streams) {
          for (let e = await stream.peek(); e && compareKeys(e, smallest) === 0; e = await stream.peek()) stream.skip();
        }
        const entry = prefixStream.map(fromPrefix);
        kept++;
        for (let p = 0; p < width; p++) if (entry.hashes[p] !== null) counts[p]!++;
        await writer.add(entry);
        continue;
      }
      let merged: SnapshotEntry | undefined;
      for (const [i, stream] of streams.entries()) {
        // A journal section may hold a key twice when a retry re-recorded it; fold every copy.
        for (
          let entry = await stream.peek();
          entry && compareKeys(entry, smallest) === 0;
          entry = await stream.peek()
        ) {
          stream.skip();
          const wide = stream.map(entry);
          if (!merged) {
            merged = i === 0 && previous ? wide : { ...wide, hashes: new Array(width).fill(null) };
            if (i === 0 && previous) continue;
          }
          recovered++;
          merged.rowHash = UNKNOWN_HASH;
          for (let p = 0; p < width; p++) if (wide.hashes[p] !== null) merged.hashes[p] = UNKNOWN_HASH;
          // Items a killed run's `$union` may have added are recorded, so that a later run removes the ones that left.
          if (wide.items && merged !== wide) merged.items = unionItems(merged.items, wide.items, width);
        }
      }
      for (let p = 0; p < width; p++) if (merged!.hashes[p] !== null) counts[p]!++;
      await writer.add(merged!);
    }
    await writer.finish();
  } catch (error) {
    await writer.abandon();
    await rm(temp, { force: true });
    throw error;
  } finally {
    for (const stream of streams) await stream.close();
  }
  await commitFile(temp, options.paths.snapshot(file), options.paths.dir);
  const checkpoint: Checkpoint = {
    format: "groupsync-checkpoint",
    version: 1,
    identity: options.identity,
    snapshot: { file, groups: writer.count, bytes: (await stat(options.paths.snapshot(file))).size },
    properties: properties.map((property, i) => ({ ...property, groups_set: counts[i] ?? 0 })),
    updated_at: new Date().toISOString(),
  };
  await writeCheckpoint(options.paths.checkpoint, checkpoint);
  if (previous) await rm(options.paths.snapshot(previous.snapshot.file), { force: true });
  for (const journal of journals) await rm(journal, { force: true });
  if (prefix) await rm(prefix.path, { force: true });
  return { checkpoint, recovered, kept };
}

/** Per property, the items of `a` and then those of `b` not in `a` (JSON arrays); null where both have none. */
function unionItems(
  a: readonly (string | null)[] | undefined,
  b: readonly (string | null)[],
  width: number,
): (string | null)[] {
  const out: (string | null)[] = new Array(width).fill(null);
  for (let p = 0; p < width; p++) {
    const left: unknown[] = a?.[p] ? JSON.parse(a[p]!) : [];
    const right: unknown[] = b[p] ? JSON.parse(b[p]!) : [];
    const items = [...left, ...right.filter((item) => !left.includes(item))];
    out[p] = items.length > 0 ? JSON.stringify(items) : null;
  }
  return out;
}
