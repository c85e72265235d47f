/**
 * The column-mapping layer: checks a mapping against the columns a source returns, then turns each raw row into a
 * group key plus property cells, or a rejection with its key and reason. Pure; values are coerced only for the
 * properties that are actually sent (an unchanged value costs no coercion).
 */
import type { MappingConfig, PropertyType } from "../config/schema.js";
import { formatPath } from "../config/yaml-file.js";
import { ConfigError, type ConfigIssue } from "../errors.js";
import type { JsonValue } from "../model.js";
import type { RawRow, ReadSpec, SourceColumn } from "../source.js";
import type { GroupKey } from "../state/key-order.js";
import { coerceValue } from "./coerce.js";

export interface MappedProperty {
  readonly name: string;
  /** Column, declared type and source kind: a change to any of them re-sends the property. */
  readonly definition: string;
  readonly column: SourceColumn;
  readonly declared: PropertyType | undefined;
  /** Index of the column in the rows read. */
  readonly index: number;
}

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
}

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
    const columnName = typeof spec === "string" ? spec : spec.column;
    const declared = typeof spec === "string" ? undefined : spec.type;
    const index = need(columnName, typeof spec === "string" ? ["properties", name] : ["properties", name, "column"]);
    if (index < 0) continue;
    const column = needed[index]!;
    properties.push({ name, definition: `${column.name}|${declared ?? ""}|${column.kind}`, column, declared, index });
  }
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
      for (let i = 0; i < properties.length; i++) cells[i] = row[properties[i]!.index] ?? null;
      // Not part of the key: the user Segment attributes the group call to. Blank means "none".
      const userId = userIdIndex >= 0 ? row[userIdIndex] : undefined;
      const key = userId != null && userId.trim() !== "" ? { companyId, groupId, userId } : { companyId, groupId };
      return { ok: true, key, cells };
    },
    value(index, text) {
      const property = properties[index]!;
      const result = coerceValue(text, property.column, property.declared);
      return result.ok ? result : { ok: false, reason: `property ${property.name}: ${result.reason}` };
    },
  };
}
