/**
 * The SQL of the Snowflake source's optional capabilities: hash push-down (keys with a row hash computed in SQL,
 * lookup of full rows by key), incremental keyset pages with the watermark and the warehouse clock, the row count and
 * the key check. Built from the same select items, key order and conditions as the read (sql.ts), so that what these
 * statements return agrees with what read() returns.
 */
import { SourceError } from "../../src/errors.js";
import type { ChangeSpec, HashSpec, ReadSpec } from "../../src/source.js";
import {
  afterCondition,
  type ColumnType,
  checkColumns,
  keyText,
  quoteIdent,
  relationSql,
  renderSql,
  type Statement,
  selectItem,
  TEXT_FORMATS,
  whereSql,
} from "./sql.js";

/** The column the hash push-down's keys() adds after the key columns. */
const ROW_HASH = '"GROUPSYNC_ROW_HASH"';

/**
 * The row hash in SQL, equal to rowHash() of src/diff/hash.ts over the texts read() returns: MD5 over, per cell,
 * `N` for NULL else `<UTF-8 octet length>:<text>`, first 8 bytes as 16 hex digits. `||` with a NULL is NULL, hence
 * the IFF per cell. OCTET_LENGTH counts UTF-8 bytes; MD5 answers 32 lowercase hex digits.
 * https://docs.snowflake.com/en/sql-reference/functions/octet_length https://docs.snowflake.com/en/sql-reference/functions/md5
 */
export function rowHashSql(columns: readonly string[], types: ReadonlyMap<string, ColumnType>): string {
  const cells = columns.map((name) => {
    const text = renderSql(quoteIdent(name), types.get(name));
    return `IFF(${text} IS NULL, 'N', OCTET_LENGTH(${text}) || ':' || ${text})`;
  });
  return `LEFT(MD5(${cells.length === 0 ? "''" : cells.join(" || ")}), 16)`;
}

/** Hash push-down: the key columns as read() selects them and the row hash, in read() order. */
export function hashKeysSql(spec: HashSpec, types: ReadonlyMap<string, ColumnType> = new Map()): Statement {
  if (spec.orderBy.length === 0) {
    throw new SourceError("a hash read needs the key columns", {
      code: "SOURCE_SPEC_INVALID",
      action: "This is a bug in groupsync: report it.",
    });
  }
  const relation = relationSql(spec);
  const binds: string[] = [];
  const columns = [
    ...spec.orderBy.map((name) => selectItem(name, types.get(name))),
    `${rowHashSql(spec.hashColumns, types)} AS ${ROW_HASH}`,
  ];
  const where = whereSql(spec, binds);
  const order = spec.orderBy.map((column) => `${keyText(column)} ASC NULLS LAST`);
  const sql = `SELECT ${columns.join(", ")} FROM ${relation.sql}${where} ORDER BY ${order.join(", ")}`;
  return { ...relation, sql, ...(binds.length > 0 ? { binds } : {}) };
}

/**
 * Full rows for the given keys: one JSON array bind (`[["k1"], ["k2"]]`) unnested with FLATTEN, so a statement
 * carries thousands of keys in one bind variable instead of thousands of `?`. Keys compare as the read orders them.
 * https://docs.snowflake.com/en/sql-reference/functions/flatten
 */
export function lookupSql(
  spec: ReadSpec,
  keys: readonly (readonly string[])[],
  types: ReadonlyMap<string, ColumnType> = new Map(),
): Statement {
  checkColumns(spec);
  if (spec.orderBy.length === 0 || keys.some((key) => key.length !== spec.orderBy.length)) {
    throw new SourceError("a lookup needs one text per key column for every key", {
      code: "SOURCE_SPEC_INVALID",
      action: "This is a bug in groupsync: report it.",
    });
  }
  const relation = relationSql(spec);
  const picks = spec.orderBy.map((_, i) => `f.value[${i}]::VARCHAR`).join(", ");
  const inKeys = `(${spec.orderBy.map(keyText).join(", ")}) IN (SELECT ${picks} FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) AS f)`;
  const binds: string[] = [JSON.stringify(keys)];
  const columns = spec.columns.map((name) => selectItem(name, types.get(name)));
  const where = whereSql({ ...spec, after: undefined }, binds, [inKeys]);
  const order = spec.orderBy.map((column) => `${keyText(column)} ASC NULLS LAST`);
  const sql = `SELECT ${columns.join(", ")} FROM ${relation.sql}${where} ORDER BY ${order.join(", ")}`;
  return { ...relation, sql, binds };
}

/** `COUNT(*)` of what `readSql(spec)` returns. */
export function countSql(spec: ReadSpec): Statement {
  const relation = relationSql(spec);
  const binds: string[] = [];
  const sql = `SELECT COUNT(*) AS "ROWS" FROM ${relation.sql}${whereSql(spec, binds)}`;
  return { ...relation, sql, ...(binds.length > 0 ? { binds } : {}) };
}

/** Rows, rows with a NULL or blank key, duplicated keys and their rows, in one pass (keys compared as read orders). */
export function keyCheckSql(spec: ReadSpec): Statement {
  const relation = relationSql(spec);
  const texts = spec.orderBy.map((column) => `TO_VARCHAR(${quoteIdent(column)})`);
  const blank = texts.map((text) => `${text} IS NULL OR REGEXP_LIKE(${text}, '[[:space:]]*')`).join(" OR ");
  const duplicated = `"N" > 1 AND "BLANK" = 0`;
  const sql = `SELECT COALESCE(SUM("N"), 0) AS "ROWS", COALESCE(SUM(IFF("BLANK" = 1, "N", 0)), 0) AS "NULL_KEYS", COALESCE(SUM(IFF(${duplicated}, 1, 0)), 0) AS "DUPLICATE_KEYS", COALESCE(SUM(IFF(${duplicated}, "N", 0)), 0) AS "DUPLICATE_ROWS" FROM (SELECT COUNT(*) AS "N", MAX(IFF(${blank}, 1, 0)) AS "BLANK" FROM ${relation.sql} GROUP BY ${spec.orderBy.map(keyText).join(", ")}) AS "K"`;
  return { ...relation, sql };
}

/** What `ChangeReader.now()` runs: the warehouse clock, in UTC (the session's TIMEZONE). */
export const NOW_SQL = `SELECT TO_VARCHAR(CURRENT_TIMESTAMP(), '${TEXT_FORMATS.timestamp_tz}') AS "NOW"`;

/**
 * A cursor value written back into SQL: the text a read rendered (fraction trimmed) converted to the column's type
 * with a fixed format; `normalizeCursor` pads the text to that format first. A text cursor compares byte-wise.
 */
function cursorValueSql(type: ColumnType | undefined): string {
  switch (type?.type) {
    case "date":
      return `TO_DATE(?, '${TEXT_FORMATS.date}')`;
    case "time":
      return `TO_TIME(?, '${TEXT_FORMATS.time}')`;
    case "timestamp_ntz":
      return `TO_TIMESTAMP_NTZ(?, '${TEXT_FORMATS.timestamp_ntz}')`;
    case "timestamp_ltz":
      return `TO_TIMESTAMP_LTZ(?, '${TEXT_FORMATS.timestamp_ltz}')`;
    case "timestamp_tz":
      return `TO_TIMESTAMP_TZ(?, '${TEXT_FORMATS.timestamp_tz}')`;
    case "fixed":
      return `TO_NUMBER(?, 38, ${type.scale ?? 0})`;
    case "real":
      return "TO_DOUBLE(?)";
    default:
      return "COLLATE(?, 'utf8')";
  }
}

/** Pads a rendered time's fraction of a second back to nine digits: `10:00:00.5` → `10:00:00.500000000`. */
export function normalizeCursor(text: string, type: ColumnType | undefined): string {
  if (type === undefined || !["time", "timestamp_ntz", "timestamp_ltz", "timestamp_tz"].includes(type.type))
    return text;
  return text.replace(
    /(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?/,
    (_, time: string, fraction = "") => `${time}.${fraction.padEnd(9, "0")}`,
  );
}

/** `until` (NOW_SQL's text, UTC) as a value comparable with the cursor; undefined for a cursor that is no time. */
function untilSql(until: string, type: ColumnType | undefined, binds: string[]): string | undefined {
  switch (type?.type) {
    case "date":
      binds.push(until.slice(0, 10));
      return `TO_DATE(?, '${TEXT_FORMATS.date}')`;
    case "timestamp_ntz":
      // NTZ is read as UTC: compare with the UTC wall time.
      binds.push(normalizeCursor(until, type).replace(/ [+-]\d{2}:\d{2}$/, ""));
      return `TO_TIMESTAMP_NTZ(?, '${TEXT_FORMATS.timestamp_ntz}')`;
    case "timestamp_ltz":
    case "timestamp_tz":
      binds.push(normalizeCursor(until, type));
      return `TO_TIMESTAMP_TZ(?, '${TEXT_FORMATS.timestamp_tz}')`;
    default:
      return undefined;
  }
}

/** The cursor column as the pages order and compare it (a text cursor byte-wise, like the keys). */
const cursorSql = (name: string, type: ColumnType | undefined) =>
  type === undefined || type.type === "text" ? `COLLATE(${quoteIdent(name)}, 'utf8')` : quoteIdent(name);

/** The conditions of an incremental page: a non-null cursor and key, `>= since`, `<= until`, the keyset position. */
function changeConditions(
  spec: Omit<ChangeSpec, "limit">,
  types: ReadonlyMap<string, ColumnType>,
  binds: string[],
): string[] {
  const type = types.get(spec.cursor);
  const cursor = cursorSql(spec.cursor, type);
  const conditions = [
    `${quoteIdent(spec.cursor)} IS NOT NULL`,
    ...spec.orderBy.map((column) => `${quoteIdent(column)} IS NOT NULL`),
  ];
  if (spec.since !== undefined) {
    binds.push(normalizeCursor(spec.since, type));
    conditions.push(`${cursor} >= ${cursorValueSql(type)}`);
  }
  if (spec.until !== undefined) {
    const until = untilSql(spec.until, type, binds);
    if (until !== undefined) conditions.push(`${cursor} <= ${until}`);
  }
  if (spec.position !== undefined) {
    const value = normalizeCursor(spec.position.cursor, type);
    binds.push(value);
    const after = `${cursor} > ${cursorValueSql(type)}`;
    binds.push(value);
    const equal = `${cursor} = ${cursorValueSql(type)}`;
    const keys = afterCondition(spec.orderBy, spec.position.key, binds);
    conditions.push(`(${after} OR (${equal} AND ${keys}))`);
  }
  return conditions;
}

/** One keyset page of changed rows, ordered by (cursor, key): `LIMIT`, never `OFFSET`. */
export function changesSql(spec: ChangeSpec, types: ReadonlyMap<string, ColumnType> = new Map()): Statement {
  checkColumns(spec);
  if (!Number.isInteger(spec.limit) || spec.limit < 1) {
    throw new SourceError(`invalid page size ${spec.limit}`, {
      code: "SOURCE_SPEC_INVALID",
      action: "Set fetch_size to a whole number of rows, at least 1.",
    });
  }
  const relation = relationSql(spec);
  const binds: string[] = [];
  const conditions = changeConditions(spec, types, binds);
  const columns = spec.columns.map((name) => selectItem(name, types.get(name)));
  const where = whereSql({ ...spec, after: undefined }, binds, conditions);
  const order = [
    `${cursorSql(spec.cursor, types.get(spec.cursor))} ASC`,
    ...spec.orderBy.map((column) => `${keyText(column)} ASC`),
  ];
  const sql = `SELECT ${columns.join(", ")} FROM ${relation.sql}${where} ORDER BY ${order.join(", ")} LIMIT ${spec.limit}`;
  return { ...relation, sql, binds };
}

/** The greatest cursor value (at most `until`), rendered like read() renders the column. */
export function watermarkSql(
  spec: Omit<ChangeSpec, "limit" | "since" | "position">,
  types: ReadonlyMap<string, ColumnType> = new Map(),
): Statement {
  const relation = relationSql(spec);
  const binds: string[] = [];
  const conditions = changeConditions(spec, types, binds);
  const type = types.get(spec.cursor);
  const max = `MAX(${cursorSql(spec.cursor, type)})`;
  const where = whereSql({ ...spec, after: undefined }, binds, conditions);
  const sql = `SELECT ${renderSql(max, type ?? { type: "text", structured: false })} AS "WATERMARK" FROM ${relation.sql}${where}`;
  return { ...relation, sql, ...(binds.length > 0 ? { binds } : {}) };
}
