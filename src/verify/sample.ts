/**
 * Which groups `verify` checks: a uniform random sample of the snapshot (reservoir sampling, Algorithm R: one pass
 * over the sorted file, memory for `size` entries only), or the entries of given keys.
 */
import { compareKeys, formatKey } from "../state/key-order.js";
import { readSnapshot, type SnapshotEntry } from "../state/snapshot-file.js";

export interface Sample {
  /** The entries picked, in key order. */
  readonly entries: SnapshotEntry[];
  /** Entries in the snapshot. */
  readonly total: number;
  /** Keys asked for (`--keys`) that the snapshot does not hold: groupsync never sent them. */
  readonly unknownKeys: string[];
}

/** `random(n)`: an integer in [0, n). */
export async function sampleSnapshot(
  path: string,
  size: number,
  random: (n: number) => number = (n) => Math.floor(Math.random() * n),
): Promise<Sample> {
  const picked: SnapshotEntry[] = [];
  let seen = 0;
  for await (const block of readSnapshot(path)) {
    for (const entry of block) {
      if (picked.length < size) picked.push(entry);
      else {
        const slot = random(seen + 1);
        if (slot < size) picked[slot] = entry;
      }
      seen++;
    }
  }
  picked.sort(compareKeys);
  return { entries: picked, total: seen, unknownKeys: [] };
}

/** The entries of `keys` (as `formatKey` writes them), in key order. */
export async function pickKeys(path: string, keys: readonly string[]): Promise<Sample> {
  const wanted = new Set(keys);
  const picked: SnapshotEntry[] = [];
  let seen = 0;
  for await (const block of readSnapshot(path)) {
    for (const entry of block) {
      seen++;
      const key = formatKey(entry);
      if (wanted.delete(key)) picked.push(entry);
    }
  }
  return { entries: picked, total: seen, unknownKeys: [...wanted] };
}
