/**
 * PostgreSQL column types → the engine's value kinds. Types are looked up in `pg_type` by OID so that extension
 * types (citext), enums and arrays of them are recognised by name and category, not by a fixed OID table.
 */
import { coerceValue } from "../../src/mapping/coerce.js";
import type { SourceColumn, ValueKind } from "../../src/source.js";
import { type ArrayText, parseArrayText } from "./array-text.js";

/** One row of {@link TYPE_INFO_SQL}: a type and, for an array type, its element type. Booleans come as `t`/`f`. */
export interface PgTypeRow {
  readonly oid: string;
  readonly name: string;
  readonly builtin: string;
  readonly category: string;
  readonly type: string;
  readonly elem_name: string | null;
  readonly elem_builtin: string | null;
  readonly elem_category: string | null;
  readonly elem_type: string | null;
  readonly elem_delim: string | null;
}

/**
 * Looks up the types of a result by OID ($1, an oid[]). Array types are those in category A named `_…` (int2vector
 * and oidvector are category A too, but their text is not the `{…}` format). An element that is a domain is read as
 * its base type.
 */
export const TYPE_INFO_SQL = `
SELECT t.oid, t.typname AS name, t.typnamespace = 'pg_catalog'::regnamespace AS builtin,
       t.typcategory AS category, t.typtype AS type,
       eb.typname AS elem_name, eb.typnamespace = 'pg_catalog'::regnamespace AS elem_builtin,
       eb.typcategory AS elem_category, eb.typtype AS elem_type, e.typdelim AS elem_delim
FROM pg_type t
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' AND left(t.typname, 1) = '_'
LEFT JOIN pg_type eb ON eb.oid = CASE WHEN e.typtype = 'd' THEN e.typbasetype ELSE e.oid END
WHERE t.oid = ANY($1::oid[])`;

/** Built-in types by name (only trusted when the type lives in pg_catalog). */
const BUILTIN_KINDS: Readonly<Record<string, ValueKind>> = {
  int2: "integer",
  int4: "integer",
  oid: "integer",
  int8: "bigint",
  numeric: "decimal",
  float4: "float",
  float8: "float",
  bool: "boolean",
  text: "text",
  varchar: "text",
  bpchar: "text",
  char: "text",
  name: "text",
  uuid: "text",
  timestamptz: "timestamptz",
  timestamp: "timestamp",
  date: "date",
  time: "time",
  timetz: "time",
  json: "json",
  jsonb: "json",
  bytea: "binary",
};

/** The kind of a scalar type: built-ins by name, then citext, enums and string-category types as text. */
export function scalarKind(name: string, builtin: boolean, category: string, type: string): ValueKind {
  if (builtin && name in BUILTIN_KINDS) return BUILTIN_KINDS[name] as ValueKind;
  if (name === "citext" || type === "e" || category === "S") return "text";
  return "other";
}

/** The column for a result field of type `row`. */
export function columnOf(fieldName: string, row: PgTypeRow | undefined, oid: number): SourceColumn {
  if (row === undefined) return { name: fieldName, dbType: `oid ${oid}`, kind: "other" };
  if (row.elem_name !== null) {
    const element: SourceColumn = {
      name: fieldName,
      dbType: row.elem_name,
      kind: scalarKind(row.elem_name, row.elem_builtin === "t", row.elem_category ?? "", row.elem_type ?? ""),
    };
    const delimiter = row.elem_delim ?? ",";
    return {
      name: fieldName,
      dbType: row.name,
      kind: "array",
      decode: (text) => decodeArray(text, delimiter, element),
    };
  }
  return { name: fieldName, dbType: row.name, kind: scalarKind(row.name, row.builtin === "t", row.category, row.type) };
}

/** Array text → nested JS arrays whose elements are coerced like scalars of the element kind. */
export function decodeArray(text: string, delimiter: string, element: SourceColumn): unknown[] {
  return convertItems(parseArrayText(text, delimiter), element);
}

/** Coerces parsed array items in place (the parsed array is the caller's own). */
function convertItems(items: ArrayText, element: SourceColumn): unknown[] {
  const values = items as unknown[];
  for (let i = 0; i < items.length; i++) {
    const item = items[i] ?? null;
    if (item === null) continue;
    if (Array.isArray(item)) {
      values[i] = convertItems(item, element);
      continue;
    }
    const value = coerceValue(item, element);
    if (!value.ok) throw new Error(`element ${value.reason}`);
    values[i] = value.value;
  }
  return values;
}

/** Built-in types whose hash function sees every bit of the value, and whose equal values print alike. */
const EXACT_TYPES = new Set(["int2", "int4", "oid", "bool", "char", "uuid", "date", "bytea"]);
/** The same for collatable types, hashed under `COLLATE "C"` (a nondeterministic collation hashes `A` like `a`). */
const TEXT_TYPES = new Set(["text", "varchar", "name"]);
/**
 * Types hashed through their binary send function: int8 and the types stored as one (timestamps, time) fold 64 bits
 * into 32 before hashing, numeric's hash ignores the sign and the scale (`-5` = `5`, `1.0` = `1.00`), and float's
 * equates `-0` and `0`.
 */
const SEND_FUNCTIONS: Readonly<Record<string, string>> = {
  int8: "int8send",
  timestamp: "timestamp_send",
  timestamptz: "timestamptz_send",
  time: "time_send",
  numeric: "numeric_send",
  float4: "float4send",
  float8: "float8send",
};

/**
 * How one column enters the PostgreSQL row hash (`hash_record_extended`, which hashes values in their binary form,
 * about three times cheaper than hashing their text): the terms must change whenever the column's output text
 * changes. Arrays add their dimensions (their hash covers the elements only); bpchar adds its length (`'a '` equals
 * `'a'`); json, jsonb (its numbers hash like numeric), interval (`1 day` = `24 hours`), citext, enums, domains and
 * every other type are hashed as their output text, which is exact.
 */
export function hashTerms(quoted: string, type: PgTypeRow | undefined): string[] {
  if (type !== undefined && type.elem_name !== null) {
    const element = type.elem_builtin === "t" ? type.elem_name : "";
    if (TEXT_TYPES.has(element)) return [`${quoted} COLLATE "C"`, `array_dims(${quoted})`];
    if (EXACT_TYPES.has(element)) return [quoted, `array_dims(${quoted})`];
  } else if (type !== undefined && type.builtin === "t") {
    if (TEXT_TYPES.has(type.name)) return [`${quoted} COLLATE "C"`];
    if (EXACT_TYPES.has(type.name)) return [quoted];
    const send = SEND_FUNCTIONS[type.name];
    if (send !== undefined) return [`${send}(${quoted})`];
    if (type.name === "bpchar") return [`${quoted} COLLATE "C"`, `octet_length(${quoted})`];
    if (type.name === "json" || type.name === "jsonb") return [`(${quoted})::text`];
  }
  return [`format('%s', ${quoted})`];
}
