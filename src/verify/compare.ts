/**
 * What `verify` expects a destination to hold for one group, and where it differs. "What groupsync last sent" is
 * the snapshot's hashes; values are not stored, so the current source row stands in for them where its hash equals
 * the snapshot's (the value sent then is the value read now). A property whose source value changed since the last
 * run is "pending" (the next run sends it), never drift.
 */
import { type PropertyRule, ruleOf } from "../diff/diff-group.js";
import { propertyHash } from "../diff/hash.js";
import type { CompiledMapping } from "../mapping/mapper.js";
import type { JsonValue } from "../model.js";
import type { PropertyState } from "../state/checkpoint.js";
import { type SnapshotEntry, UNKNOWN_HASH } from "../state/snapshot-file.js";

export type PropertyFinding =
  /** The destination holds no value where groupsync sent one. */
  | { readonly name: string; readonly drift: "missing"; readonly expected: JsonValue }
  /** The destination holds another value than the one groupsync sent. */
  | { readonly name: string; readonly drift: "changed"; readonly expected: JsonValue; readonly actual: JsonValue }
  /** The destination holds a value where groupsync sent none (or removed it). */
  | { readonly name: string; readonly drift: "unexpected"; readonly actual: JsonValue }
  /** `op: union`: items groupsync added that the list no longer holds. */
  | {
      readonly name: string;
      readonly drift: "items-missing";
      readonly expected: JsonValue;
      readonly actual: JsonValue;
    };

export interface GroupFinding {
  readonly key: string;
  /**
   * ok: as sent. drift: some property differs. missing: groupsync sent properties, the destination has no profile.
   * unchecked: the group left the source (its values cannot be known), or groupsync never sent it.
   */
  readonly status: "ok" | "drift" | "missing" | "unchecked";
  readonly drift: readonly PropertyFinding[];
  /** Properties not compared, with why: changed in the source since the last run, unconfirmed last send, … */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
}

/** A stable text of a JSON value (object keys sorted), for comparisons. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export interface CompareInput {
  readonly key: string;
  readonly mapping: CompiledMapping;
  /** The snapshot's properties (the checkpoint's), in the order of `entry.hashes`. */
  readonly layout: readonly PropertyState[];
  readonly entry: SnapshotEntry;
  /** The group's current cells in the source; undefined when it left the source. */
  readonly cells: readonly (string | null)[] | undefined;
  /** The destination's profile; undefined when it has none. */
  readonly profile: Readonly<Record<string, JsonValue>> | undefined;
}

export function compareGroup(input: CompareInput): GroupFinding {
  const { key, mapping, layout, entry, cells, profile } = input;
  if (!cells) {
    return { key, status: "unchecked", drift: [], skipped: [{ name: "*", reason: "the group left the source" }] };
  }
  const drift: PropertyFinding[] = [];
  const skipped: { name: string; reason: string }[] = [];
  let expectsProfile = false;
  const position = new Map(layout.map((property, index) => [property.name, index]));
  mapping.properties.forEach((property, index) => {
    const name = property.name;
    const at = position.get(name);
    if (at === undefined || layout[at]!.definition !== property.definition) {
      skipped.push({ name, reason: "the mapping changed since the last run" });
      return;
    }
    const held = entry.hashes[at] ?? null;
    if (held === UNKNOWN_HASH) {
      skipped.push({ name, reason: "the last send was not confirmed (the next run sends it again)" });
      return;
    }
    const cell = cells[index] ?? null;
    const now = cell === null ? null : propertyHash(cell);
    const rule: PropertyRule = ruleOf(property.definition);
    const actual = profile?.[name];
    if (rule.op === "set_once") {
      if (held === null) return;
      expectsProfile = true;
      if (actual === undefined) drift.push({ name, drift: "missing", expected: "(any value, set once)" });
      return;
    }
    if (rule.op === "union") {
      if (held === null) return;
      if (!rule.keepRemoved && now !== held) {
        skipped.push({ name, reason: "changed in the source since the last run (the next run sends it)" });
        return;
      }
      const recorded: JsonValue[] = rule.keepRemoved
        ? cell === null
          ? []
          : (() => {
              const items = mapping.items(index, cell);
              return items.ok ? items.items : [];
            })()
        : (JSON.parse(entry.items?.[at] ?? "[]") as JsonValue[]);
      if (recorded.length === 0) return;
      expectsProfile = true;
      const list = Array.isArray(actual) ? actual : [];
      const have = new Set(list.map(canonical));
      const lost = recorded.filter((item) => !have.has(canonical(item)));
      if (lost.length > 0) drift.push({ name, drift: "items-missing", expected: lost, actual: actual ?? null });
      return;
    }
    if (now !== held) {
      if (now === null && rule.nulls === "keep") return; // the destination keeps a value no longer in the source
      skipped.push({ name, reason: "changed in the source since the last run (the next run sends it)" });
      return;
    }
    if (held === null) {
      if (actual !== undefined && rule.nulls === "unset") drift.push({ name, drift: "unexpected", actual });
      return;
    }
    expectsProfile = true;
    const value = mapping.value(index, cell as string);
    if (!value.ok) {
      skipped.push({ name, reason: value.reason });
      return;
    }
    if (actual === undefined) drift.push({ name, drift: "missing", expected: value.value });
    else if (canonical(actual) !== canonical(value.value)) {
      drift.push({ name, drift: "changed", expected: value.value, actual });
    }
  });
  if (!profile && expectsProfile) return { key, status: "missing", drift, skipped };
  return { key, status: drift.length > 0 ? "drift" : "ok", drift, skipped };
}
