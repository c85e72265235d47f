/**
 * The SQL the PostgreSQL source runs. Every identifier from the config is quoted here; a user's `query` is only ever
 * wrapped as a sub-select, so it runs as one statement inside the read-only transaction.
 */
import { SourceError } from "../../src/errors.js";
import type { ReadSpec } from "../../src/source.js";

/** Quotes one identifier exactly as given: `a"b` → `"a""b"`. */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes("\0")) {
    throw new SourceError(`invalid identifier ${JSON.stringify(name)}`, {
      code: "SOURCE_IDENTIFIER_INVALID",
      action: "Use a non-empty column or table name without NUL characters.",
    });
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Quotes a `from` name: `table`, `schema.table` or `database.schema.table`, each part either written plainly or
 * already double-quoted. Plain parts fold to lower case, as PostgreSQL folds unquoted names; quoted parts keep their
 * case and may contain dots.
 */
export function quoteRelation(from: string): string {
  const invalid = (why: string) =>
    new SourceError(`invalid table name ${JSON.stringify(from)}: ${why}`, {
      code: "SOURCE_RELATION_INVALID",
      action: 'Write `from` as table, schema.table or "Quoted"."Name" in the mapping file.',
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
      if (raw.includes('"')) throw invalid("a quote inside an unquoted name");
      part = raw.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
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

/** A statement, and where the user's query sits in it (for error positions); `queryAt` is -1 for a table. */
export interface Statement {
  readonly sql: string;
  readonly queryAt: number;
  /** The user's query as embedded, when reading a query. */
  readonly query?: string;
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

/**
 * The read: the needed columns, ordered by the keys' text in code-point order (`COLLATE "C"` compares UTF-8 bytes),
 * NULLs last, whatever the database's default collation.
 */
export function readSql(spec: ReadSpec): Statement {
  if (spec.columns.length === 0) {
    throw new SourceError("a read needs at least one column", {
      code: "SOURCE_SPEC_INVALID",
      action: "Map the Group ID column in the mapping file.",
    });
  }
  const relation = relationSql(spec);
  const prefix = `SELECT ${spec.columns.map(quoteIdent).join(", ")} FROM `;
  const order = spec.orderBy.map((column) => `(${quoteIdent(column)})::text COLLATE "C" NULLS LAST`).join(", ");
  const sql = `${prefix}${relation.sql}${order === "" ? "" : ` ORDER BY ${order}`}`;
  return { ...relation, sql, queryAt: offset(prefix, relation.queryAt) };
}

/** PostgreSQL reports error positions in characters (code points) of the whole statement. */
function offset(prefix: string, queryAt: number): number {
  return queryAt < 0 ? -1 : [...prefix].length + queryAt;
}
