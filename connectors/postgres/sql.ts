/**
 * The SQL the PostgreSQL source runs. Every identifier from the config is quoted here; a user's `query` is only ever
 * wrapped as a sub-select, so it runs as one statement inside the read-only transaction.
 */
import { SourceError } from "../../src/errors.js";
import type { ChangeSpec, HashSpec, ReadSpec } from "../../src/source.js";
import { quoteIdent, quoteRelation as quoteNames } from "../shared/sql-names.js";
import { hashTerms, type PgTypeRow } from "./types.js";

export { quoteIdent };

/**
 * Quotes a `from` name: `table`, `schema.table` or `database.schema.table`, each part either written plainly or
 * already double-quoted. Plain parts fold to lower case, as PostgreSQL folds unquoted names; quoted parts keep their
 * case and may contain dots.
 */
export function quoteRelation(from: string): string {
  return quoteNames(from, {
    action: 'Write `from` as table, schema.table or "Quoted"."Name" in the mapping file.',
    plain: (raw, invalid) => {
      if (raw.includes('"')) invalid("a quote inside an unquoted name");
      return raw.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
    },
  });
}

/** A statement, and where the user's query sits in it (for error positions); `queryAt` is -1 for a table. */
export interface Statement {
  readonly sql: string;
  readonly queryAt: number;
  /** The user's query as embedded, when reading a query. */
  readonly query?: string;
  /** Parameters ($1, $2, …): watermarks and keys travel as parameters, never as SQL text. */
  readonly values?: readonly (string | readonly string[])[];
}

/** A `from`/`query` as the text after `FROM`. */
export function relationSql(spec: Pick<ReadSpec, "from" | "query">): Statement {
  if ((spec.from === undefined) === (spec.query === undefined)) {
    throw new SourceError("a read needs exactly one of `from` and `query`", {
      code: "SOURCE_SPEC_INVALID",
      action: "Set either `from` or `query` in the mapping file, not both.",
    });
  }
  if (spec.from !== undefined) return { sql: quoteRelation(spec.from), queryAt: -1 };
  // Line breaks around the query keep a trailing `-- comment` from swallowing the closing parenthesis.
  const query = (spec.query as string).replace(/[\s;]+$/, "");
  return { sql: `(\n${query}\n) AS src`, queryAt: 2, query };
}

/** The columns-only query `describe` runs. */
export function describeSql(spec: Pick<ReadSpec, "from" | "query">): Statement {
  const relation = relationSql(spec);
  const prefix = "SELECT * FROM ";
  return { ...relation, sql: `${prefix}${relation.sql} LIMIT 0`, queryAt: offset(prefix, relation.queryAt) };
}

/** A key column as the engine orders it: its text, compared byte-wise (code points on UTF-8). */
const keyText = (column: string) => `(${quoteIdent(column)})::text COLLATE "C"`;

/** The conditions of `where` and `after`, with their parameters numbered from `$<first>`. */
function filters(spec: ReadSpec, values: string[]): string[] {
  const conditions: string[] = [];
  // Line breaks keep a trailing `-- comment` in the user's condition from swallowing what follows.
  if (spec.where !== undefined) conditions.push(`(\n${spec.where.replace(/[\s;]+$/, "")}\n)`);
  if (spec.after !== undefined) {
    if (spec.after.length !== spec.orderBy.length) {
      throw new SourceError("`after` needs one value per key column", {
        code: "SOURCE_SPEC_INVALID",
        action: "This is a bug in groupsync: report it.",
      });
    }
    const placeholders = spec.after.map((value) => `$${values.push(value)}`);
    conditions.push(`(${spec.orderBy.map(keyText).join(", ")}) > (${placeholders.join(", ")})`);
  }
  return conditions;
}

function checkColumns(spec: ReadSpec): void {
  if (spec.columns.length === 0) {
    throw new SourceError("a read needs at least one column", {
      code: "SOURCE_SPEC_INVALID",
      action: "Map the Group ID column in the mapping file.",
    });
  }
}

function statement(
  relation: Statement,
  prefix: string,
  rest: string,
  values: readonly (string | readonly string[])[],
): Statement {
  return {
    ...relation,
    sql: `${prefix}${relation.sql}${rest}`,
    queryAt: offset(prefix, relation.queryAt),
    ...(values.length > 0 ? { values } : {}),
  };
}

const whereClause = (conditions: readonly string[]) =>
  conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`;

/** The columns' types by name, as `describe` found them (hash terms depend on them). */
export type ColumnTypes = ReadonlyMap<string, PgTypeRow>;

/**
 * The row hash: `hash_record_extended` over each column's hash terms (types.ts `hashTerms`), a signed 64-bit
 * integer. Without the columns' types every column is hashed as its output text: slower, as exact.
 */
export function rowHashSql(columns: readonly string[], types: ColumnTypes = new Map()): string {
  const terms = columns.flatMap((column) => hashTerms(quoteIdent(column), types.get(column)));
  return `hash_record_extended(ROW(${terms.join(", ")}), 0)`;
}

/** The selected columns, and the row hash after them when the spec asks for it. */
function selectList(spec: ReadSpec, types: ColumnTypes | undefined): string {
  const columns = spec.columns.map(quoteIdent);
  if (spec.rowHash !== undefined) columns.push(rowHashSql(spec.rowHash, types));
  return columns.join(", ");
}

/**
 * The read: the needed columns (and the row hash when `spec.rowHash` asks for it), ordered by the keys' text in
 * code-point order (`COLLATE "C"` compares UTF-8 bytes), NULLs last, whatever the database's default collation;
 * `where` and `after` narrow it.
 */
export function readSql(spec: ReadSpec, types?: ColumnTypes): Statement {
  checkColumns(spec);
  const relation = relationSql(spec);
  const values: string[] = [];
  const conditions = filters(spec, values);
  const prefix = `SELECT ${selectList(spec, types)} FROM `;
  const order = spec.orderBy.map((column) => `${keyText(column)} NULLS LAST`).join(", ");
  return statement(relation, prefix, `${whereClause(conditions)}${order === "" ? "" : ` ORDER BY ${order}`}`, values);
}

/**
 * A value as its type's output function renders it, which is the text a read returns. Not `::text`: some types cast
 * to text differently (boolean gives `true`, not `t`; char(n) drops trailing blanks; inet adds the netmask).
 */
const outputText = (column: string) => `format('%s', ${quoteIdent(column)})`;

/** The hash read: the key texts and the row hash (`rowHashSql`), in `readSql` order. */
export function hashSql(
  spec: HashSpec,
  types?: ColumnTypes,
  /** Key columns of type text or varchar (see `lookupSql`). */
  textColumns: ReadonlySet<string> = new Set(),
): Statement {
  checkColumns(spec);
  const relation = relationSql(spec);
  const values: string[] = [];
  const conditions = filters(spec, values);
  // A text or varchar key is its own text (and the cheapest to send). Other types go through their output function;
  // `format('%s', NULL)` is '', but a NULL key must stay NULL (COPY's `\N`), so that it is rejected as one.
  const keys = spec.orderBy.map((column) =>
    textColumns.has(column)
      ? quoteIdent(column)
      : `CASE WHEN ${quoteIdent(column)} IS NULL THEN NULL ELSE ${outputText(column)} END`,
  );
  const prefix = `SELECT ${[...keys, rowHashSql(spec.hashColumns, types)].join(", ")} FROM `;
  const order = spec.orderBy.map((column) => `${keyText(column)} NULLS LAST`).join(", ");
  return statement(relation, prefix, `${whereClause(conditions)} ORDER BY ${order}`, values);
}

/**
 * Full rows for a list of keys, in `readSql` order: the key texts travel as one text array per key column, so the
 * statement's size does not grow with the number of keys.
 */
export function lookupSql(
  spec: ReadSpec,
  keys: readonly (readonly string[])[],
  /** Key columns of type text or varchar: compared as they are, so that an index on them serves the lookup. */
  textColumns: ReadonlySet<string> = new Set(),
  types?: ColumnTypes,
): Statement {
  checkColumns(spec);
  const relation = relationSql(spec);
  const values: (string | string[])[] = [];
  const conditions = filters(spec, values as string[]);
  const placeholders = spec.orderBy.map(
    (_, index) => `$${values.push(keys.map((key) => key[index] as string))}::text[]`,
  );
  const texts = spec.orderBy.map((column) => (textColumns.has(column) ? quoteIdent(column) : outputText(column)));
  conditions.push(
    texts.length === 1
      ? `${texts[0]} = ANY(${placeholders[0]})`
      : `(${texts.join(", ")}) IN (SELECT * FROM unnest(${placeholders.join(", ")}))`,
  );
  const prefix = `SELECT ${selectList(spec, types)} FROM `;
  const order = spec.orderBy.map((column) => `${keyText(column)} NULLS LAST`).join(", ");
  return statement(relation, prefix, `${whereClause(conditions)} ORDER BY ${order}`, values);
}

/** `count(*)` of what `readSql(spec)` returns. */
export function countSql(spec: ReadSpec): Statement {
  const relation = relationSql(spec);
  const values: string[] = [];
  return statement(relation, "SELECT count(*) FROM ", whereClause(filters(spec, values)), values);
}

/**
 * The conditions of an incremental page: a non-null cursor, `>= since` (the parameter takes the column's own type,
 * so the watermark round-trips exactly), `<= until` (a timestamptz), and the keyset position.
 */
function changeConditions(spec: Omit<ChangeSpec, "limit">, values: string[]): string[] {
  const cursor = `(${quoteIdent(spec.cursor)})`;
  const conditions = [`${cursor} IS NOT NULL`, ...spec.orderBy.map((column) => `${quoteIdent(column)} IS NOT NULL`)];
  if (spec.since !== undefined) conditions.push(`${cursor} >= $${values.push(spec.since)}`);
  if (spec.until !== undefined) conditions.push(`${cursor} <= $${values.push(spec.until)}::timestamptz`);
  if (spec.position !== undefined) {
    const placeholders = [spec.position.cursor, ...spec.position.key].map((value) => `$${values.push(value)}`);
    conditions.push(`(${[cursor, ...spec.orderBy.map(keyText)].join(", ")}) > (${placeholders.join(", ")})`);
  }
  return [...conditions, ...filters(spec, values)];
}

/** One keyset page of changed rows, ordered by (cursor, key): `LIMIT`, never `OFFSET`. */
export function changesSql(spec: ChangeSpec): Statement {
  checkColumns(spec);
  if (!Number.isInteger(spec.limit) || spec.limit < 1) {
    throw new SourceError(`invalid page size ${spec.limit}`, {
      code: "SOURCE_SPEC_INVALID",
      action: "Set fetch_size to a whole number of rows, at least 1.",
    });
  }
  const relation = relationSql(spec);
  const values: string[] = [];
  const conditions = changeConditions(spec, values);
  const order = [`(${quoteIdent(spec.cursor)})`, ...spec.orderBy.map(keyText)].join(", ");
  const prefix = `SELECT ${spec.columns.map(quoteIdent).join(", ")} FROM `;
  return statement(relation, prefix, `${whereClause(conditions)} ORDER BY ${order} LIMIT ${spec.limit}`, values);
}

/** The greatest cursor value (at most `until`), as text. */
export function watermarkSql(spec: Omit<ChangeSpec, "limit" | "since" | "position">): Statement {
  const relation = relationSql(spec);
  const values: string[] = [];
  const conditions = changeConditions(spec, values);
  const prefix = `SELECT (max(${quoteIdent(spec.cursor)}))::text FROM `;
  return statement(relation, prefix, whereClause(conditions), values);
}

/** Rows, rows with a NULL or blank key, duplicated keys and their rows, in one pass. */
export function keyCheckSql(spec: ReadSpec): Statement {
  const relation = relationSql(spec);
  const keys = spec.orderBy.map((column) => `(${quoteIdent(column)})::text`);
  const blank = keys.map((key) => `${key} IS NULL OR ${key} ~ '^[[:space:]]*$'`).join(" OR ");
  const prefix = `SELECT coalesce(sum(n), 0)::text, coalesce(sum(n) FILTER (WHERE blank), 0)::text, count(*) FILTER (WHERE n > 1 AND NOT blank)::text, coalesce(sum(n) FILTER (WHERE n > 1 AND NOT blank), 0)::text FROM (SELECT count(*) AS n, bool_or(${blank}) AS blank FROM `;
  return statement(relation, prefix, ` GROUP BY ${keys.join(", ")}) AS k`, []);
}

/** PostgreSQL reports error positions in characters (code points) of the whole statement. */
function offset(prefix: string, queryAt: number): number {
  return queryAt < 0 ? -1 : [...prefix].length + queryAt;
}
