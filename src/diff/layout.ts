/**
 * The property layout of a run's snapshot: the mapping's properties, then "retired" ones that left the mapping
 * but are still set on some groups (their $unset is not acknowledged yet). It also translates entries of the
 * previous snapshot, whose layout may differ, into this one.
 */
import type { PropertyState } from "../state/checkpoint.js";
import { copyList, UNKNOWN_HASH } from "../state/snapshot-file.js";

export interface PropertyDefinition {
  readonly name: string;
  /** Column, declared type and source kind: what the hashes and the sent values depend on. */
  readonly definition: string;
}

export interface Layout {
  /** All properties of the new snapshot: the mapping's first, retired ones after. */
  readonly properties: readonly PropertyState[];
  /** How many leading properties are the mapping's own. */
  readonly current: number;
  /** Translates a previous snapshot entry's hashes into this layout. */
  translate(previous: readonly (string | null)[]): (string | null)[];
  /** Translates a previous entry's item lists (`op: union`) into this layout; a changed definition keeps them. */
  translateItems(previous: readonly (string | null)[] | undefined): (string | null)[] | undefined;
  /** Whether the previous snapshot has exactly this layout (entries need no translation). */
  readonly identity: boolean;
}

/**
 * Plans the layout from the mapping's properties and the previous checkpoint's. A property whose definition changed
 * keeps "set" as UNKNOWN_HASH (so it is re-sent, or unset if now empty); one that left the mapping is retired.
 */
export function planLayout(mapping: readonly PropertyDefinition[], previous: readonly PropertyState[]): Layout {
  const previousIndex = new Map(previous.map((property, index) => [property.name, index]));
  const properties: PropertyState[] = mapping.map((property) => ({
    name: property.name,
    definition: property.definition,
    retired: false,
    groups_set: 0,
  }));
  const source: number[] = [];
  const stale: boolean[] = [];
  for (const property of mapping) {
    const index = previousIndex.get(property.name);
    source.push(index ?? -1);
    stale.push(index !== undefined && previous[index]!.definition !== property.definition);
  }
  const names = new Set(mapping.map((property) => property.name));
  previous.forEach((property, index) => {
    if (names.has(property.name) || property.groups_set === 0) return;
    properties.push({ ...property, retired: true, groups_set: 0 });
    source.push(index);
    stale.push(false);
  });
  const identity = previous.length === properties.length && source.every((from, to) => from === to && !stale[to]);
  return {
    properties,
    current: mapping.length,
    identity,
    translate(hashes) {
      if (identity) return copyList(hashes);
      const out: (string | null)[] = new Array(source.length);
      for (let i = 0; i < source.length; i++) {
        const from = source[i]!;
        const hash = from < 0 ? null : (hashes[from] ?? null);
        out[i] = hash !== null && stale[i] ? UNKNOWN_HASH : hash;
      }
      return out;
    },
    translateItems(items) {
      if (!items) return undefined;
      if (identity) return copyList(items);
      const out: (string | null)[] = source.map((from) => (from < 0 ? null : (items[from] ?? null)));
      return out.some((list) => list !== null) ? out : undefined;
    },
  };
}
