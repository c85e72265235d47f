/**
 * The column-mapping layer: checks a mapping against the columns a source returns, then turns each raw row into a
 * group key plus property cells, or a rejection with its key and reason. Pure; values are coerced only for the
 * properties that are actually sent (an unchanged value costs no coercion).
 */
import type { MappingConfig, PropertyOp, PropertyType } from "../config/schema.js";
import { formatPath } from "../config/yaml-file.js";
import { ConfigError, type ConfigIssue } from "../errors.js";
import type { JsonValue } from "../model.js";
import type { RawRow, ReadSpec, SourceColumn } from "../source.js";
import type { GroupKey } from "../state/key-order.js";
import { coerceValue } from "./coerce.js";

export interface MappedProperty {
  readonly name: string;
  /**
   * Column (or constant), declared type, source kind and the per-property options: a change to any of them
   * re-plans the property (re-sent, except `set_once`, which is never overwritten).
   */
  readonly definition: string;
  /** The column read; for a constant, a stand-in named `(constant)` that is not read. */
  readonly column: SourceColumn;
  readonly declared: PropertyType | undefined;
  /** Index of the column in the rows read; -1 for a constant. */
  readonly index: number;
  /** How the value is sent: `$set`, `$set_once`, or `$union`/`$remove` of list items. */
  readonly op: PropertyOp;
  /** `keep`: a NULL never removes the property (nor, for `union`, its items). */
  readonly nulls: "unset" | "keep";
  /** `op: union`: never `$remove` an item that left the list. */
  readonly keepRemoved: boolean;
  /**
   * A constant (`value:` in the mapping): the same for every group, never read from the source. Its cell is the
   * constant's JSON text. Left out of any row hash computed in the warehouse.
   */
  readonly constant?: JsonValue;
}

/** A list item `$union` and `$remove` accept: a string or a number. */
export type ListItem = string | number;

export type MappedRow =
  | { readonly ok: true; readonly key: GroupKey; readonly cells: readonly (string | null)[] }
  | { readonly ok: false; readonly key: string | undefined; readonly reason: string };

export interface CompiledMapping {
  readonly groupKey: string;
  readonly hierarchical: boolean;
  readonly properties: readonly MappedProperty[];
  /** The read the source must run: needed columns, ordered by (Company ID, Group ID). */
  readonly readSpec: ReadSpec;
  /** Incremental mode: the cursor column, and its index in the rows read. */
  readonly cursor?: { readonly column: SourceColumn; readonly index: number };
  map(row: RawRow): MappedRow;
  /** The value to send for property `index`, from its non-null cell text. */
  value(index: number, text: string): { ok: true; value: JsonValue } | { ok: false; reason: string };
  /** `op: union`: the distinct items of property `index`'s list, from its non-null cell text, in list order. */
  items(index: number, text: string): { ok: true; items: ListItem[] } | { ok: false; reason: string };
}

/** The source kind of a constant: its cell is JSON text. */
const CONSTANT_COLUMN: SourceColumn = { name: "(constant)", dbType: "constant", kind: "json" };

export interface CompileOptions {
  readonly hierarchical: boolean;
  /** The mapping file, for error messages. */
  readonly file: string;
  /** Line and column of a key path in the mapping file, when known. */
  readonly locate?: (path: readonly (string | number)[]) => { line: number; column: number } | undefined;
}

/** Column kinds an incremental cursor can be compared by. */
const CURSOR_KINDS: ReadonlySet<string> = new Set([
  ...["integer", "bigint", "decimal", "float", "text"],
  ...["timestamptz", "timestamp", "date"],
]);

/** Prefixes Mixpanel uses in composite distinct_ids; an ID carrying one is not a bare ID. */
const PREFIXED_ID = /^\$(company|user|[A-Za-z0-9_]+_id):/;

function findColumn(columns: readonly SourceColumn[], wanted: string): SourceColumn | undefined {
  const quoted = /^"(.*)"$/.exec(wanted);
  if (quoted) return columns.find((column) => column.name === quoted[1]);
  const exact = columns.find((column) => column.name === wanted);
  if (exact) return exact;
  // Snowflake upper-cases unquoted identifiers: match case-insensitively when exactly one column fits.
  const folded = columns.filter((column) => column.name.toLowerCase() === wanted.toLowerCase());
  return folded.length === 1 ? folded[0] : undefined;
}

export function compileMapping(
  mapping: MappingConfig,
  columns: readonly SourceColumn[],
  options: CompileOptions,
): CompiledMapping {
  const issues: ConfigIssue[] = [];
  const relation = mapping.from ?? "the query";
  const available = columns.map((column) => column.name).join(", ");
  const needed: SourceColumn[] = [];
  const need = (wanted: string, path: readonly string[]): number => {
    const column = findColumn(columns, wanted);
    if (!column) {
      issues.push({
        file: options.file,
        ...options.locate?.(path),
        path: formatPath(path),
        message: `column ${JSON.stringify(wanted)} does not exist in ${relation}; available columns: ${available}`,
      });
      return -1;
    }
    const index = needed.indexOf(column);
    if (index >= 0) return index;
    needed.push(column);
    return needed.length - 1;
  };

  const groupIdIndex = need(mapping.group_id, ["group_id"]);
  const companyIdIndex = options.hierarchical && mapping.company_id ? need(mapping.company_id, ["company_id"]) : -1;
  if (options.hierarchical && !mapping.company_id) {
    issues.push({ file: options.file, path: "company_id", message: "required: the destination is hierarchical" });
  }
  const properties: MappedProperty[] = [];
  for (const [name, spec] of Object.entries(mapping.properties)) {
    const declared = typeof spec === "string" ? undefined : spec.type;
    const op = typeof spec === "string" ? "set" : (spec.op ?? "set");
    const nulls = typeof spec === "string" ? "unset" : (spec.nulls ?? "unset");
    const keepRemoved = typeof spec !== "string" && spec.keep_removed === true;
    // Options are part of the definition only when not the defaults, so existing states keep their definitions.
    const options = `${op === "set" ? "" : `|op=${op}`}${nulls === "unset" ? "" : "|nulls=keep"}${keepRemoved ? "|keep_removed" : ""}`;
    if (typeof spec !== "string" && spec.value !== undefined) {
      const constant = spec.value as JsonValue;
      const definition = `=${JSON.stringify(constant)}||constant${options}`;
      properties.push({
        name,
        definition,
        column: CONSTANT_COLUMN,
        declared,
        index: -1,
        op,
        nulls,
        keepRemoved,
        constant,
      });
      continue;
    }
    const columnName = typeof spec === "string" ? spec : (spec.column as string);
    const index = need(columnName, typeof spec === "string" ? ["properties", name] : ["properties", name, "column"]);
    if (index < 0) continue;
    const column = needed[index]!;
    const definition = `${column.name}|${declared ?? ""}|${column.kind}${options}`;
    properties.push({ name, definition, column, declared, index, op, nulls, keepRemoved });
  }
  const constantCells = properties.map((property) =>
    property.constant === undefined ? undefined : JSON.stringify(property.constant),
  );
  const cursorIndex = mapping.cursor !== undefined ? need(mapping.cursor, ["cursor"]) : -1;
  const cursorColumn = cursorIndex >= 0 ? needed[cursorIndex]! : undefined;
  if (cursorColumn && !CURSOR_KINDS.has(cursorColumn.kind)) {
    issues.push({
      file: options.file,
      ...options.locate?.(["cursor"]),
      path: "cursor",
      message: `column ${JSON.stringify(cursorColumn.name)} is ${cursorColumn.dbType}, which cannot serve as a cursor; use a timestamp, date or number that rises when a row changes`,
    });
  }
  const userIdIndex = mapping.user_id !== undefined ? need(mapping.user_id, ["user_id"]) : -1;
  if (issues.length > 0) throw new ConfigError(issues, { code: "MAPPING_COLUMN_MISSING" });

  const groupIdColumn = needed[groupIdIndex]!.name;
  const companyIdColumn = companyIdIndex >= 0 ? needed[companyIdIndex]!.name : undefined;
  const readSpec: ReadSpec = {
    ...(mapping.from !== undefined ? { from: mapping.from } : { query: mapping.query as string }),
    columns: needed.map((column) => column.name),
    orderBy: companyIdColumn ? [companyIdColumn, groupIdColumn] : [groupIdColumn],
  };
  const groupKey = mapping.group_key;
  const companyLevel = groupKey === "$company_id";

  return {
    groupKey,
    hierarchical: options.hierarchical,
    properties,
    readSpec,
    ...(cursorIndex >= 0 ? { cursor: { column: needed[cursorIndex]!, index: cursorIndex } } : {}),
    map(row) {
      const groupId = row[groupIdIndex] ?? null;
      const companyId = companyIdIndex >= 0 ? (row[companyIdIndex] ?? null) : "";
      const shown = groupId === null ? undefined : companyIdIndex >= 0 ? `${companyId ?? "∅"}/${groupId}` : groupId;
      if (groupId === null) return { ok: false, key: undefined, reason: `Group ID (column ${groupIdColumn}) is null` };
      if (groupId.trim() === "") {
        return { ok: false, key: shown, reason: `Group ID (column ${groupIdColumn}) is empty or only whitespace` };
      }
      if (companyId === null)
        return { ok: false, key: shown, reason: `Company ID (column ${companyIdColumn}) is null` };
      if (companyIdIndex >= 0) {
        if (companyId.trim() === "") {
          return {
            ok: false,
            key: shown,
            reason: `Company ID (column ${companyIdColumn}) is empty or only whitespace`,
          };
        }
        for (const [what, value] of [
          ["Group ID", groupId],
          ["Company ID", companyId],
        ] as const) {
          if (PREFIXED_ID.test(value)) {
            return {
              ok: false,
              key: shown,
              reason: `${what} ${JSON.stringify(value)} is in prefixed form; hierarchical groups take the bare ID (e.g. "acme", not "$company:acme")`,
            };
          }
        }
        if (companyLevel && groupId !== companyId) {
          return {
            ok: false,
            key: shown,
            reason: `for Group Key $company_id the Group ID must equal the Company ID (got ${JSON.stringify(groupId)} and ${JSON.stringify(companyId)})`,
          };
        }
      }
      const cells: (string | null)[] = new Array(properties.length);
      for (let i = 0; i < properties.length; i++) cells[i] = constantCells[i] ?? row[properties[i]!.index] ?? null;
      // Not part of the key: the user Segment attributes the group call to. Blank means "none".
      const userId = userIdIndex >= 0 ? row[userIdIndex] : undefined;
      const key = userId != null && userId.trim() !== "" ? { companyId, groupId, userId } : { companyId, groupId };
      return { ok: true, key, cells };
    },
    value(index, text) {
      const property = properties[index]!;
      if (property.constant !== undefined) return { ok: true, value: property.constant };
      const result = coerceValue(text, property.column, property.declared);
      return result.ok ? result : { ok: false, reason: `property ${property.name}: ${result.reason}` };
    },
    items(index, text) {
      const property = properties[index]!;
      const value = this.value(index, text);
      if (!value.ok) return value;
      const list = Array.isArray(value.value) ? value.value : [value.value];
      const items: ListItem[] = [];
      const seen = new Set<ListItem>();
      for (const item of list) {
        if (typeof item !== "string" && typeof item !== "number") {
          return {
            ok: false,
            reason: `property ${property.name} (op: union): list items must be strings or numbers, got ${JSON.stringify(item)}`,
          };
        }
        if (!seen.has(item)) {
          seen.add(item);
          items.push(item);
        }
      }
      return { ok: true, items };
    },
  };
}
