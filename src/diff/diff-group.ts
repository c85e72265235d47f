/**
 * The per-property diff of one group: what the destination holds (hashes in the run's layout) against the
 * current row's hashes. Pure and table-tested.
 */

export interface GroupDiff {
  /** Indexes of the mapping's properties to `$set`: non-null now and different from what the destination holds. */
  readonly set: readonly number[];
  /** Indexes of properties to `$unset`: set in the destination, and now null or gone from the mapping. */
  readonly unset: readonly number[];
}

const NONE: GroupDiff = { set: [], unset: [] };

export interface DiffOptions {
  /** A backfill: every non-null property is `$set`, whatever the destination holds; `$unset`s are as usual. */
  readonly setAll?: boolean;
}

/**
 * @param held hashes the destination holds, in the run's layout; undefined for a group it does not have
 * @param current hashes of the row's properties (the first `current.length` entries of the layout); null = empty
 */
export function diffGroup(
  held: readonly (string | null)[] | undefined,
  current: readonly (string | null)[],
  options: DiffOptions = {},
): GroupDiff {
  const setAll = options.setAll === true;
  const set: number[] = [];
  const unset: number[] = [];
  for (let i = 0; i < current.length; i++) {
    const now = current[i] ?? null;
    const before = held?.[i] ?? null;
    if (now !== null && (setAll || now !== before)) set.push(i);
    else if (now === null && before !== null) unset.push(i);
  }
  if (held) {
    for (let i = current.length; i < held.length; i++) if (held[i] !== null) unset.push(i);
  }
  return set.length > 0 || unset.length > 0 ? { set, unset } : NONE;
}
