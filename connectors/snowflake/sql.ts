/**
 * The SQL the Snowflake source runs. Every identifier from the config is quoted here; a user's `query` is checked to
 * be a single SELECT (or WITH … SELECT) and only ever wrapped as a sub-select, so nothing groupsync sends can write.
 * Identifiers: https://docs.snowflake.com/en/sql-reference/identifiers-syntax
 */
import { SourceError } from "../../src/errors.js";
import type { ChangeSpec, HashSpec, ReadSpec } from "../../src/source.js";

/** Quotes one identifier exactly as given: `a"b` → `"a""b"`. Column names come quoted from describe, exact. */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes("\0")) {
    throw new SourceError(`invalid identifier ${JSON.stringify(name)}`, {
      code: "SOURCE_IDENTIFIER_INVALID",
      action: "Use a non-empty column or table name without NUL characters.",
    });
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** What Snowflake accepts unquoted; it stores such names upper-cased. */
const UNQUOTED = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/**
 * Quotes a `from` name: `table`, `schema.table` or `database.schema.table`, each part written plainly or already
 * double-quoted. Plain parts are upper-cased, as Snowflake resolves unquoted names; quoted parts keep their case.
 */
export function quoteRelation(from: string): string {
  const invalid = (why: string) =>
    new SourceError(`invalid table name ${JSON.stringify(from)}: ${why}`, {
      code: "SOURCE_RELATION_INVALID",
      action: 'Write `from` as table, schema.table or database.schema.table; quote names such as "Mixed Case".',
    });
  const text = from.trim();
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = "";
    if (text[i] === '"') {
      for (i++; ; i++) {
        if (i >= text.length) throw invalid("a quote is not closed");
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        part += text[i];
      }
      i++;
      if (part === "") throw invalid("an empty quoted name");
    } else {
      const end = text.indexOf(".", i);
      const raw = text.slice(i, end < 0 ? text.length : end).trim();
      if (raw === "") throw invalid("an empty name part");
      if (!UNQUOTED.test(raw)) throw invalid(`${JSON.stringify(raw)} must be quoted (letters, digits, _ and $ only)`);
      part = raw.toUpperCase();
      i = end < 0 ? text.length : end;
    }
    parts.push(part);
    if (i >= text.length) break;
    if (text[i] !== ".") throw invalid(`unexpected ${JSON.stringify(text[i])} after a quoted name`);
    i++;
  }
  if (parts.length > 3) throw invalid("more than three name parts");
  return parts.map(quoteIdent).join(".");
}

/** A statement, and where the user's query sits in it (for error positions). */
export interface Statement {
  readonly sql: string;
  /** Line of the statement on which the user's query starts (1-based); 0 when reading a table. */
  readonly queryLine: number;
  /** The user's query as embedded, when reading a query. */
  readonly query?: string;
  /** Values for the `?` placeholders, in order: keys travel as binds, never as SQL text. */
  readonly binds?: readonly string[];
}

/**
 * Text forms of the temporal types. Reads render them in SQL (TO_VARCHAR with these formats) rather than in the
 * driver, which formats every value through moment.js (the slowest part of a read by far) and whose output would
 * then depend on the driver's version. The session uses the same formats for anything else it renders.
 */
export const TEXT_FORMATS = {
  date: "YYYY-MM-DD",
  time: "HH24:MI:SS.FF9",
  timestamp_ntz: "YYYY-MM-DD HH24:MI:SS.FF9",
  timestamp_ltz: "YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM",
  timestamp_tz: "YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM",
} as const;

/**
 * The session settings the text rendering depends on, and the safety limits. TIMEZONE decides how TIMESTAMP_LTZ
 * renders; TIMESTAMP_NTZ is rendered as stored (and read as UTC).
 */
export function sessionSql(statementTimeoutMs: number): string {
  const seconds = Math.max(0, Math.ceil(statementTimeoutMs / 1000));
  return [
    "ALTER SESSION SET TIMEZONE = 'UTC'",
    `TIMESTAMP_OUTPUT_FORMAT = '${TEXT_FORMATS.timestamp_tz}'`,
    `TIMESTAMP_NTZ_OUTPUT_FORMAT = '${TEXT_FORMATS.timestamp_ntz}'`,
    `TIMESTAMP_LTZ_OUTPUT_FORMAT = '${TEXT_FORMATS.timestamp_ltz}'`,
    `TIMESTAMP_TZ_OUTPUT_FORMAT = '${TEXT_FORMATS.timestamp_tz}'`,
    `DATE_OUTPUT_FORMAT = '${TEXT_FORMATS.date}'`,
    `TIME_OUTPUT_FORMAT = '${TEXT_FORMATS.time}'`,
    "BINARY_OUTPUT_FORMAT = 'HEX'",
    `STATEMENT_TIMEOUT_IN_SECONDS = ${seconds}`,
    "MULTI_STATEMENT_COUNT = 1",
  ].join(", ");
}

/** What `check` asks: the session's context, NULL where the object is missing or not granted to the role. */
export const CONTEXT_SQL =
  'SELECT CURRENT_WAREHOUSE() AS "WAREHOUSE", CURRENT_DATABASE() AS "DATABASE", CURRENT_SCHEMA() AS "SCHEMA", CURRENT_ROLE() AS "ROLE"';

/** A `from`/`query` as the text after `FROM`. */
export function relationSql(spec: Pick<ReadSpec, "from" | "query">): Statement {
  if ((spec.from === undefined) === (spec.query === undefined)) {
    throw new SourceError("a read needs exactly one of `from` and `query`", {
      code: "SOURCE_SPEC_INVALID",
      action: "Set either `from` or `query` in the mapping file, not both.",
    });
  }
  if (spec.from !== undefined) return { sql: quoteRelation(spec.from), queryLine: 0 };
  const query = checkReadOnly(spec.query as string);
  // Line breaks around the query keep a trailing `-- comment` from swallowing the closing parenthesis.
  return { sql: `(\n${query}\n) AS src`, queryLine: 2, query };
}

/** The columns-only statement `describe` runs (with describeOnly: compiled, never executed, no warehouse needed). */
export function describeSql(spec: Pick<ReadSpec, "from" | "query">): Statement {
  const relation = relationSql(spec);
  return { ...relation, sql: `SELECT * FROM ${relation.sql} LIMIT 0` };
}

/** How the read selects a column of the given driver type (`fixed`, `timestamp_tz`…; structured types flagged). */
export interface ColumnType {
  readonly type: string;
  readonly structured: boolean;
  /** Digits after the point of a NUMBER. */
  readonly scale?: number | null;
}

const SEMI_STRUCTURED = new Set(["variant", "object", "array", "map"]);

/**
 * A column in the read's select list: temporal types as text in the formats above; VARIANT, OBJECT and ARRAY as
 * compact JSON (TO_JSON), so that the hash push-down can compute the very same text in SQL; the rest as the driver's
 * text. https://docs.snowflake.com/en/sql-reference/functions/to_json
 */
function selectItem(name: string, type: ColumnType | undefined): string {
  const column = quoteIdent(name);
  if (type === undefined) return column;
  if (type.structured) return `TO_JSON(${column}::VARIANT) AS ${column}`;
  if (SEMI_STRUCTURED.has(type.type)) return `TO_JSON(${column}) AS ${column}`;
  const format = TEXT_FORMATS[type.type as keyof typeof TEXT_FORMATS];
  return format === undefined ? column : `TO_VARCHAR(${column}, '${format}') AS ${column}`;
}

/**
 * SQL computing exactly the text `read()` returns for a value of this type (after the source's renderers: booleans
 * in lower case, trailing zeros of a fraction of a second dropped). The row hash of the push-down is computed over
 * it, so any difference would make every row look changed. NUMBER and FLOAT: TO_VARCHAR, assumed equal to the
 * driver's text (see README: to check on a real account). `expr` must already be valid SQL of that type.
 */
export function renderSql(expr: string, type: ColumnType | undefined): string {
  if (type === undefined) return `TO_VARCHAR(${expr})`;
  if (type.structured) return `TO_JSON(${expr}::VARIANT)`;
  if (SEMI_STRUCTURED.has(type.type)) return `TO_JSON(${expr})`;
  const trimmed = (format: string) => `RTRIM(RTRIM(TO_VARCHAR(${expr}, '${format}'), '0'), '.')`;
  switch (type.type) {
    case "text":
      return expr;
    case "boolean":
      // IFF takes its else branch for a NULL condition: NULL must stay NULL, not become 'false'.
      return `IFF(${expr} IS NULL, NULL, IFF(${expr}, 'true', 'false'))`;
    case "date":
      return `TO_VARCHAR(${expr}, '${TEXT_FORMATS.date}')`;
    case "time":
      return trimmed(TEXT_FORMATS.time);
    case "timestamp_ntz":
      return trimmed(TEXT_FORMATS.timestamp_ntz);
    case "timestamp_ltz":
    case "timestamp_tz":
      return `${trimmed(TEXT_FORMATS.timestamp_ntz)} || TO_VARCHAR(${expr}, ' TZH:TZM')`;
    case "binary":
      return `TO_VARCHAR(${expr}, 'HEX')`;
    default:
      return `TO_VARCHAR(${expr})`;
  }
}

/** A key column's text as the read orders it: UTF-8 bytes, i.e. code points, whatever the declared collation. */
const keyText = (column: string) => `COLLATE(TO_VARCHAR(${quoteIdent(column)}), 'utf8')`;

/**
 * Rows whose key comes after `after` in key order. Snowflake has no row-value comparison, so (a, b) > (x, y) is
 * written out: a > x OR (a = x AND b > y). A NULL key compares to NULL and leaves the row out.
 */
function afterCondition(keys: readonly string[], after: readonly string[], binds: string[]): string {
  if (after.length !== keys.length || keys.length === 0) {
    throw new SourceError("`after` needs one value per key column", {
      code: "SOURCE_SPEC_INVALID",
      action: "This is a bug in groupsync: report it.",
    });
  }
  const terms = keys.map((key, i) => {
    const equal = keys.slice(0, i).map((earlier, j) => {
      binds.push(after[j] as string);
      return `${keyText(earlier)} = ?`;
    });
    binds.push(after[i] as string);
    return `(${[...equal, `${keyText(key)} > ?`].join(" AND ")})`;
  });
  return `(${terms.join(" OR ")})`;
}

/** The WHERE clause of `where` (the user's condition, one expression), `after` and `extra`, with its binds. */
function whereSql(spec: ReadSpec, binds: string[], extra: readonly string[] = []): string {
  const conditions: string[] = [...extra];
  // Line breaks keep a trailing `-- comment` in the user's condition from swallowing what follows.
  if (spec.where !== undefined) conditions.push(`(\n${checkCondition(spec.where)}\n)`);
  if (spec.after !== undefined) conditions.push(afterCondition(spec.orderBy, spec.after, binds));
  return conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`;
}

function checkColumns(spec: ReadSpec): void {
  if (spec.columns.length === 0) {
    throw new SourceError("a read needs at least one column", {
      code: "SOURCE_SPEC_INVALID",
      action: "Map the Group ID column in the mapping file.",
    });
  }
}

/**
 * The read: the needed columns, ordered by the keys' text in code-point order, NULLs last. `COLLATE(…, 'utf8')`
 * compares the UTF-8 bytes (code-point order) whatever collation the column, schema or account declares; TO_VARCHAR
 * gives numbers the same text the rows carry. https://docs.snowflake.com/en/sql-reference/collation
 * `where` and `after` narrow it.
 */
export function readSql(spec: ReadSpec, types: ReadonlyMap<string, ColumnType> = new Map()): Statement {
  checkColumns(spec);
  const relation = relationSql(spec);
  const binds: string[] = [];
  const columns = spec.columns.map((name) => selectItem(name, types.get(name)));
  const where = whereSql(spec, binds);
  const order = spec.orderBy.map((column) => `${keyText(column)} ASC NULLS LAST`);
  const sql = `SELECT ${columns.join(", ")} FROM ${relation.sql}${where}${order.length === 0 ? "" : ` ORDER BY ${order.join(", ")}`}`;
  return { ...relation, sql, ...(binds.length > 0 ? { binds } : {}) };
}

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

/**
 * Refuses a query that is not one SELECT: Snowflake has no read-only transaction, so groupsync runs only a query
 * that starts with SELECT or WITH (or a parenthesis), holds no second statement, and is wrapped as a sub-select,
 * where INSERT, MERGE, CALL and DDL do not compile. Returns the query without trailing semicolons.
 */
export function checkReadOnly(query: string): string {
  const refuse = (why: string) =>
    new SourceError(`the mapping's query ${why}; groupsync only runs a single SELECT, as a sub-select`, {
      code: "SOURCE_QUERY_WRITES",
      action:
        "Use a query that only reads: one SELECT (or WITH … SELECT) without a semicolon between statements. Give groupsync a role with SELECT only.",
    });
  const tokens = scan(query);
  const trimmed = query.slice(0, tokens.end).replace(/\s+$/, "");
  const first = tokens.firstWord?.toUpperCase();
  if (first === undefined && !tokens.startsWithParen) throw refuse("is empty");
  if (!tokens.startsWithParen && first !== "SELECT" && first !== "WITH") {
    throw refuse(`starts with ${first ?? "nothing"}, not SELECT or WITH`);
  }
  if (tokens.semicolonAt >= 0) throw refuse("holds more than one statement");
  return trimmed;
}

/** A `where` condition: one expression, no second statement. Returns it without trailing semicolons. */
function checkCondition(condition: string): string {
  const tokens = scan(condition);
  if (tokens.semicolonAt >= 0 || tokens.end === 0) {
    throw new SourceError("the `where` condition must be one SQL expression", {
      code: "SOURCE_QUERY_WRITES",
      action: "Give a condition such as plan = 'enterprise', without semicolons.",
    });
  }
  return condition.slice(0, tokens.end).replace(/\s+$/, "");
}

interface Scan {
  firstWord: string | undefined;
  startsWithParen: boolean;
  /** Offset of a `;` followed by more than comments and blanks; -1 when none. */
  semicolonAt: number;
  /** Where the query ends once trailing semicolons, comments and blanks are dropped. */
  end: number;
}

/** Walks the query past comments (`--`, `//`, `/* *\/`), 'strings' (with \ escapes), $$strings$$ and "names". */
function scan(query: string): Scan {
  const result: Scan = { firstWord: undefined, startsWithParen: false, semicolonAt: -1, end: 0 };
  let pendingSemicolon = -1;
  let seenToken = false;
  let i = 0;
  const token = (start: number, end: number) => {
    if (pendingSemicolon >= 0 && result.semicolonAt < 0) result.semicolonAt = pendingSemicolon;
    if (!seenToken) {
      seenToken = true;
      const word = /^[A-Za-z_]+/.exec(query.slice(start, end));
      if (word) result.firstWord = word[0];
      else if (query[start] === "(") result.startsWithParen = true;
    }
    result.end = end;
  };
  while (i < query.length) {
    const c = query[i] as string;
    const next = query[i + 1];
    if (/\s/.test(c)) {
      i++;
    } else if ((c === "-" && next === "-") || (c === "/" && next === "/")) {
      const end = query.indexOf("\n", i);
      i = end < 0 ? query.length : end + 1;
    } else if (c === "/" && next === "*") {
      const end = query.indexOf("*/", i + 2);
      i = end < 0 ? query.length : end + 2;
    } else if (c === ";") {
      if (pendingSemicolon < 0) pendingSemicolon = i;
      i++;
    } else if (c === "'" || c === '"') {
      const start = i;
      for (i++; i < query.length; i++) {
        if (c === "'" && query[i] === "\\") i++;
        else if (query[i] === c) {
          if (query[i + 1] !== c) break;
          i++;
        }
      }
      i = Math.min(i + 1, query.length);
      token(start, i);
    } else if (c === "$" && next === "$") {
      const start = i;
      const end = query.indexOf("$$", i + 2);
      i = end < 0 ? query.length : end + 2;
      token(start, i);
    } else {
      const start = i;
      const word = /^[A-Za-z0-9_$]+/.exec(query.slice(i, i + 256));
      i += word ? word[0].length : 1;
      token(start, i);
    }
  }
  return result;
}
