/**
 * The per-property diff of one group: what the destination holds (hashes in the run's layout) against the
 * current row's hashes, following each property's rule (`op`, `nulls`). Pure and table-tested.
 */

/** How a property is sent: its mapping options, as recorded in its definition. */
export interface PropertyRule {
  readonly op: "set" | "set_once" | "union";
  readonly nulls: "unset" | "keep";
  readonly keepRemoved: boolean;
}

export const DEFAULT_RULE: PropertyRule = { op: "set", nulls: "unset", keepRemoved: false };

/**
 * The rule a property definition records (see MappedProperty.definition): options are written as `|op=…`,
 * `|nulls=keep` and `|keep_removed` after the column part, and absent when they are the defaults.
 */
export function ruleOf(definition: string): PropertyRule {
  const parts = definition.split("|");
  const op = parts.find((part) => part.startsWith("op="))?.slice(3);
  return {
    op: op === "set_once" || op === "union" ? op : "set",
    nulls: parts.includes("nulls=keep") ? "keep" : "unset",
    keepRemoved: parts.includes("keep_removed"),
  };
}

export interface GroupDiff {
  /** Indexes of the mapping's properties to `$set`: non-null now and different from what the destination holds. */
  readonly set: readonly number[];
  /** Indexes of `op: set_once` properties to `$set_once`: non-null now, never set by groupsync before. */
  readonly setOnce: readonly number[];
  /** Indexes of properties to `$unset`: set in the destination, and now null or gone from the mapping. */
  readonly unset: readonly number[];
  /**
   * Indexes of `op: union` properties whose list changed (or became null, or left the mapping): the engine works
   * out the items to `$union` and to `$remove` from the items it recorded.
   */
  readonly union: readonly number[];
  /**
   * Indexes whose hash the snapshot drops without sending anything: `set_once` and `nulls: keep` properties that
   * left the mapping (the destination keeps the value; groupsync no longer tracks it).
   */
  readonly forget: readonly number[];
}

/** The shared empty list of a diff (never added to: a list that gets an index is a new array). */
const NONE: number[] = [];

/** `list` with `index` appended: a new array in place of NONE. */
function added(list: number[], index: number): number[] {
  if (list === NONE) return [index];
  list.push(index);
  return list;
}

/** The diff of a group with nothing to do (the same object every time). */
export const NO_CHANGE: GroupDiff = { set: [], setOnce: [], unset: [], union: [], forget: [] };

export interface DiffOptions {
  /** A backfill: every non-null property is sent, whatever the destination holds; `$unset`s are as usual. */
  readonly setAll?: boolean;
  /** The rule of each property of the layout (mapping's, then retired); default: `$set`, nulls unset. */
  readonly rules?: readonly PropertyRule[];
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
  // Most groups have nothing in most of these lists: they share one empty array until something is added.
  let set = NONE;
  let setOnce = NONE;
  let unset = NONE;
  let union = NONE;
  let forget = NONE;
  for (let i = 0; i < current.length; i++) {
    const now = current[i] ?? null;
    const before = held?.[i] ?? null;
    const rule = options.rules?.[i] ?? DEFAULT_RULE;
    if (rule.op === "set_once") {
      // Never overwritten, never unset: sent only while groupsync has not set it yet.
      if (now !== null && (before === null || setAll)) setOnce = added(setOnce, i);
    } else if (now === null) {
      if (rule.nulls === "keep" || before === null) continue;
      if (rule.op === "union") union = added(union, i);
      else unset = added(unset, i);
    } else if (setAll || now !== before) {
      if (rule.op === "union") union = added(union, i);
      else set = added(set, i);
    }
  }
  if (held) {
    for (let i = current.length; i < held.length; i++) {
      if (held[i] === null || held[i] === undefined) continue;
      const rule = options.rules?.[i] ?? DEFAULT_RULE;
      if (rule.op === "set_once" || rule.nulls === "keep" || (rule.op === "union" && rule.keepRemoved))
        forget = added(forget, i);
      else if (rule.op === "union") union = added(union, i);
      else unset = added(unset, i);
    }
  }
  return set.length + setOnce.length + unset.length + union.length + forget.length > 0
    ? { set, setOnce, unset, union, forget }
    : NO_CHANGE;
}
