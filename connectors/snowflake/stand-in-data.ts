/**
 * The stand-in's data side: fixture tables, and the few statements the Snowflake source issues, interpreted over
 * them. Not a SQL engine: anything else is refused with a compilation error, as Snowflake refuses what it cannot
 * compile.
 */
import { encode, type RowType, rowTypeOf, type StandInColumn, type StandInValue, toVarchar } from "./stand-in-wire.js";

export type { StandInColumn, StandInType, StandInValue } from "./stand-in-wire.js";

export interface StandInTable {
  columns: StandInColumn[];
  rows: StandInValue[][];
}

/** A statement's outcome: a result, or Snowflake's error (code, SQLSTATE, message). */
export type Outcome =
  | { readonly ok: true; readonly columns: readonly RowType[]; readonly rows: readonly WireRow[] }
  | { readonly ok: false; readonly code: string; readonly sqlState: string; readonly message: string };

export type WireRow = (string | null)[];

/** What a statement sees of its session. */
export interface SessionView {
  warehouse: string | null;
  database: string | null;
  schema: string | null;
  role: string | null;
  readonly params: Map<string, string>;
}

export const fail = (code: string, sqlState: string, message: string): Outcome => ({
  ok: false,
  code,
  sqlState,
  message,
});

/** Splits `a, "b, c", d` on top-level commas (outside quotes and parentheses). */
function splitList(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      items.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  items.push(text.slice(start).trim());
  return items;
}

/** Splits on `separator` outside quotes and parentheses. */
function splitTop(text: string, separator: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (depth === 0 && text.startsWith(separator, i)) {
      items.push(text.slice(start, i));
      start = i + separator.length;
      i += separator.length - 1;
    }
  }
  items.push(text.slice(start));
  return items.map((item) => item.trim());
}

const QUOTED = /^"((?:[^"]|"")+)"$/;

function unquote(text: string): string | undefined {
  const match = QUOTED.exec(text.trim());
  return match ? (match[1] as string).replaceAll('""', '"') : undefined;
}

/** Splits `"A"."B"` into its (unquoted) parts; undefined if a part is not a quoted identifier. */
function relationParts(text: string): string[] | undefined {
  const parts = text.trim().match(/"(?:[^"]|"")+"|[^.]+/g) ?? [];
  const names = parts.map(unquote);
  return names.every((name): name is string => name !== undefined) ? names : undefined;
}

/** A plain name in a login parameter or ALTER: unquoted names fold to upper case. */
export function identifier(text: string): string {
  return unquote(text) ?? text.toUpperCase();
}

const compareBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

/** The tables and queries the stand-in serves, and how it answers statements over them. */
export class StandInData {
  /** Tables by fully qualified stored name: `DB.SCHEMA.TABLE`. */
  readonly tables = new Map<string, StandInTable>();
  /** A mapping's `query`, by its exact (trimmed) text: what that query returns. */
  readonly queries = new Map<string, StandInTable>();
  readonly warehouses = new Set<string>();
  /** A `where` condition, by its exact (trimmed) text: which rows (as column → fixture value) it keeps. */
  readonly conditions = new Map<string, (row: Readonly<Record<string, StandInValue>>) => boolean>();

  hasDatabase(name: string): boolean {
    return [...this.tables.keys()].some((key) => key.startsWith(`${name}.`));
  }

  hasSchema(database: string, schema: string): boolean {
    return [...this.tables.keys()].some((key) => key.startsWith(`${database}.${schema}.`));
  }

  /** Answers one statement; `binds` are the values of its `?` placeholders. */
  run(sql: string, session: SessionView, binds: readonly string[] = []): Outcome {
    const text = sql.trim();
    if (/^ALTER SESSION SET /i.test(text)) return this.alterSession(text.slice("ALTER SESSION SET ".length), session);
    if (/^SELECT CURRENT_WAREHOUSE\(\)/.test(text)) {
      const columns = ["WAREHOUSE", "DATABASE", "SCHEMA", "ROLE"].map((name) => rowTypeOf({ name, type: "text" }));
      return { ok: true, columns, rows: [[session.warehouse, session.database, session.schema, session.role]] };
    }
    const select = /^SELECT ([\s\S]+?) FROM ([\s\S]+)$/.exec(text);
    if (!select) return syntaxError(text);
    return this.select(select[1] as string, select[2] as string, session, binds);
  }

  private alterSession(assignments: string, session: SessionView): Outcome {
    for (const item of splitList(assignments)) {
      const match = /^(\w+)\s*=\s*(?:'((?:[^']|'')*)'|(\S+))$/.exec(item);
      if (!match) return syntaxError(item);
      session.params.set((match[1] as string).toUpperCase(), match[2]?.replaceAll("''", "'") ?? (match[3] as string));
    }
    return {
      ok: true,
      columns: [rowTypeOf({ name: "status", type: "text" })],
      rows: [["Statement executed successfully."]],
    };
  }

  private resolve(relation: string, session: SessionView): StandInTable | Outcome {
    const sub = /^\(\n([\s\S]*)\n\) AS src$/.exec(relation);
    if (sub) {
      const table = this.queries.get((sub[1] as string).trim());
      return table ?? fail("002003", "42S02", "SQL compilation error:\nObject 'SRC' does not exist or not authorized.");
    }
    const parts = relationParts(relation);
    if (!parts || parts.length > 3) return syntaxError(relation);
    const full = [
      ...(parts.length < 3 ? [session.database ?? ""] : []),
      ...(parts.length < 2 ? [session.schema ?? ""] : []),
      ...parts,
    ].join(".");
    const table = this.tables.get(full);
    return (
      table ?? fail("002003", "42S02", `SQL compilation error:\nObject '${full}' does not exist or not authorized.`)
    );
  }

  private select(list: string, rest: string, session: SessionView, binds: readonly string[]): Outcome {
    const limitZero = / LIMIT 0$/.exec(rest);
    // The outer clauses: after a sub-select's closing line, whose query may have clauses of its own.
    const subEnd = Math.max(0, rest.startsWith("(\n") ? rest.lastIndexOf("\n) AS src") : 0);
    const orderAt = rest.indexOf(" ORDER BY ", subEnd);
    const whereAt = rest.indexOf(" WHERE ", subEnd);
    const relationEnd = [limitZero?.index ?? -1, whereAt, orderAt].filter((at) => at >= 0);
    const relationText = rest.slice(0, relationEnd.length > 0 ? Math.min(...relationEnd) : rest.length);
    const table = this.resolve(relationText, session);
    if ("ok" in table) return table;
    let keep: (row: number) => boolean = () => true;
    if (whereAt >= 0) {
      const filter = this.where(
        rest.slice(whereAt + " WHERE ".length, orderAt >= 0 ? orderAt : undefined),
        table,
        binds,
      );
      if (typeof filter !== "function") return filter;
      keep = filter;
    }
    if (list === "*") {
      return { ok: true, columns: table.columns.map(rowTypeOf), rows: limitZero ? [] : this.wireRows(table) };
    }
    // The projection: "COL", "COL"::VARIANT AS "COL", or TO_VARCHAR("COL", 'format') AS "COL".
    const picks: { index: number; column: StandInColumn; format?: string }[] = [];
    for (const item of splitList(list)) {
      const match =
        /^("(?:[^"]|"")+")(::VARIANT AS "(?:[^"]|"")+")?$/.exec(item) ??
        /^TO_VARCHAR\(("(?:[^"]|"")+"), '([^']*)'\) AS "(?:[^"]|"")+"$/.exec(item);
      const name = match ? unquote(match[1] as string) : undefined;
      const index = table.columns.findIndex((column) => column.name === name);
      if (index < 0) {
        return fail(
          "000904",
          "42000",
          `SQL compilation error: error line 1 at position 7\ninvalid identifier '${item}'`,
        );
      }
      const column = table.columns[index] as StandInColumn;
      if (item.startsWith("TO_VARCHAR(")) {
        picks.push({ index, column: { name: column.name, type: "text" }, format: match?.[2] as string });
      } else if (match?.[2]) {
        picks.push({ index, column: { name: column.name, type: "variant" } });
      } else picks.push({ index, column });
    }
    const rows = this.wireRows(table).filter((_, i) => keep(i));
    const timezone = session.params.get("TIMEZONE") ?? "UTC";
    if (orderAt >= 0 && !limitZero) {
      const order = this.orderBy(rest.slice(orderAt + " ORDER BY ".length), table);
      if (!Array.isArray(order)) return order as Outcome;
      rows.sort((a, b) => {
        for (const { index, compare } of order) {
          const x = a[index] ?? null;
          const y = b[index] ?? null;
          if (x === null || y === null) {
            if (x !== y) return x === null ? 1 : -1;
            continue;
          }
          const result = compare(x, y);
          if (result !== 0) return result;
        }
        return 0;
      });
    }
    return {
      ok: true,
      columns: picks.map(({ column }) => rowTypeOf(column)),
      rows: rows.map((row) =>
        picks.map(({ index, format }) => {
          const cell = row[index] ?? null;
          const type = table.columns[index]?.type as string;
          return cell === null || format === undefined ? cell : toVarchar(cell, type, format, timezone);
        }),
      ),
    };
  }

  /**
   * ORDER BY terms: `COLLATE(TO_VARCHAR("C"), 'utf8') ASC NULLS LAST` sorts by UTF-8 bytes; a plain `"C"` sorts by the
   * column's collation (`en-ci`: case- and accent-insensitive, as an ICU locale collation would).
   */
  private orderBy(
    text: string,
    table: StandInTable,
  ): { index: number; compare: (a: string, b: string) => number }[] | Outcome {
    const terms: { index: number; compare: (a: string, b: string) => number }[] = [];
    for (const item of splitList(text)) {
      const collated = /^COLLATE\(TO_VARCHAR\(("(?:[^"]|"")+")\), 'utf8'\) ASC NULLS LAST$/.exec(item);
      const plain = /^("(?:[^"]|"")+")(?: ASC)?(?: NULLS LAST)?$/.exec(item);
      const name = unquote(((collated ?? plain)?.[1] as string | undefined) ?? "");
      const index = table.columns.findIndex((column) => column.name === name);
      if (index < 0) return syntaxError(item);
      const collation = table.columns[index]?.collation;
      const compare =
        collated || !collation
          ? compareBytes
          : (a: string, b: string) => a.localeCompare(b, collation.split("-")[0], { sensitivity: "base" });
      terms.push({ index, compare });
    }
    return terms;
  }

  /**
   * WHERE: conditions joined by AND: a user's `(\n<condition>\n)`, answered by `conditions`, or the keyset form
   * `((K1 > ?) OR (K1 = ? AND K2 > ?))` over `COLLATE(TO_VARCHAR("K"), 'utf8')` terms, evaluated on the keys' text.
   */
  private where(text: string, table: StandInTable, binds: readonly string[]): ((row: number) => boolean) | Outcome {
    const tests: ((row: number) => boolean)[] = [];
    let nextBind = 0;
    for (const condition of splitTop(text, " AND ")) {
      const user = /^\(\n([\s\S]*)\n\)$/.exec(condition);
      if (user) {
        const predicate = this.conditions.get((user[1] as string).trim());
        if (!predicate) return syntaxError(user[1] as string);
        tests.push((row) => {
          const record: Record<string, StandInValue> = {};
          table.columns.forEach((column, i) => {
            record[column.name] = table.rows[row]?.[i] ?? null;
          });
          return predicate(record);
        });
        continue;
      }
      const terms: { index: number; op: string; value: string }[][] = [];
      for (const term of splitTop(condition.replace(/^\(([\s\S]*)\)$/, "$1"), " OR ")) {
        const atoms: { index: number; op: string; value: string }[] = [];
        for (const atom of splitTop(term.replace(/^\(([\s\S]*)\)$/, "$1"), " AND ")) {
          const match = /^COLLATE\(TO_VARCHAR\(("(?:[^"]|"")+")\), 'utf8'\) ([>=]) \?$/.exec(atom);
          const index = table.columns.findIndex((column) => column.name === unquote(match?.[1] ?? ""));
          if (!match || index < 0 || nextBind >= binds.length) return syntaxError(atom);
          atoms.push({ index, op: match[2] as string, value: binds[nextBind++] as string });
        }
        terms.push(atoms);
      }
      const wire = this.wireRows(table);
      tests.push((row) =>
        terms.some((atoms) =>
          atoms.every(({ index, op, value }) => {
            const cell = wire[row]?.[index] ?? null;
            if (cell === null) return false;
            const order = compareBytes(cell, value);
            return op === ">" ? order > 0 : order === 0;
          }),
        ),
      );
    }
    return (row) => tests.every((test) => test(row));
  }

  private wireRows(table: StandInTable): WireRow[] {
    return table.rows.map((row) => table.columns.map((column, i) => encode(row[i] ?? null, column)));
  }
}

function syntaxError(near: string): Outcome {
  const token = near.trim().split(/\s+/)[0] ?? "";
  return fail("001003", "42000", `SQL compilation error:\nsyntax error line 1 at position 0 unexpected '${token}'.`);
}
