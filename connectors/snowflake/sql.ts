/**
 * The SQL the Snowflake source runs. Every identifier from the config is quoted here; a user's `query` is checked to
 * be a single SELECT (or WITH … SELECT) and only ever wrapped as a sub-select, so nothing groupsync sends can write.
 * Identifiers: https://docs.snowflake.com/en/sql-reference/identifiers-syntax
 */
import { SourceError } from "../../src/errors.js";
import type { ReadSpec } from "../../src/source.js";
import { quoteIdent, quoteRelation as quoteNames } from "../shared/sql-names.js";

/** Column names come quoted from describe, exact. */
export { quoteIdent };

/** What Snowflake accepts unquoted; it stores such names upper-cased. */
const UNQUOTED = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/**
 * Quotes a `from` name: `table`, `schema.table` or `database.schema.table`, each part written plainly or already
 * double-quoted. Plain parts are upper-cased, as Snowflake resolves unquoted names; quoted parts keep their case.
 */
export function quoteRelation(from: string): string {
  return quoteNames(from, {
    action: 'Write `from` as table, schema.table or database.schema.table; quote names such as "Mixed Case".',
    plain: (raw, invalid) => {
      if (!UNQUOTED.test(raw)) invalid(`${JSON.stringify(raw)} must be quoted (letters, digits, _ and $ only)`);
      return raw.toUpperCase();
    },
  });
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
export function selectItem(name: string, type: ColumnType | undefined): string {
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
export const keyText = (column: string) => `COLLATE(TO_VARCHAR(${quoteIdent(column)}), 'utf8')`;

/**
 * Rows whose key comes after `after` in key order. Snowflake has no row-value comparison, so (a, b) > (x, y) is
 * written out: a > x OR (a = x AND b > y). A NULL key compares to NULL and leaves the row out.
 */
export function afterCondition(keys: readonly string[], after: readonly string[], binds: string[]): string {
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
export function whereSql(spec: ReadSpec, binds: string[], extra: readonly string[] = []): string {
  const conditions: string[] = [...extra];
  // Line breaks keep a trailing `-- comment` in the user's condition from swallowing what follows.
  if (spec.where !== undefined) conditions.push(`(\n${checkCondition(spec.where)}\n)`);
  if (spec.after !== undefined) conditions.push(afterCondition(spec.orderBy, spec.after, binds));
  return conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`;
}

export function checkColumns(spec: ReadSpec): void {
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
