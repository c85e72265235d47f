/**
 * The stand-in's data side: fixture tables, and the few statements the Snowflake source issues, interpreted over
 * them. Not a SQL engine: anything else is refused with a compilation error, as Snowflake refuses what it cannot
 * compile.
 */
import {
  CompileError,
  compareValues,
  type Expression,
  evaluate,
  isTrue,
  parseExpression,
  type Value,
} from "./stand-in-expr.js";
import { encode, type RowType, rowTypeOf, type StandInColumn, type StandInValue, toVarchar } from "./stand-in-wire.js";

export type { StandInColumn, StandInType, StandInValue } from "./stand-in-wire.js";

export interface StandInTable {
  columns: StandInColumn[];
  rows: StandInValue[][];
  /** Rows already in wire form (a derived table). */
  wire?: boolean;
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
    if (/^SELECT TO_VARCHAR\(CURRENT_TIMESTAMP\(\), '([^']*)'\) AS "NOW"$/.test(text)) {
      const format = /'([^']*)'/.exec(text)?.[1] as string;
      const nanos = BigInt(Date.now()) * 1_000_000n;
      const wire = `${nanos / 1_000_000_000n}.${String(nanos % 1_000_000_000n).padStart(9, "0")}`;
      const now = toVarchar(wire, "timestamp_ltz", format, session.params.get("TIMEZONE") ?? "UTC");
      return { ok: true, columns: [rowTypeOf({ name: "NOW", type: "text" })], rows: [[now]] };
    }
    const select = /^SELECT ([\s\S]+?) FROM ([\s\S]+)$/.exec(text);
    if (!select) return syntaxError(text);
    try {
      return this.select(select[1] as string, select[2] as string, session, binds);
    } catch (error) {
      if (error instanceof CompileError) return fail("001003", "42000", `SQL compilation error:\n${error.message}`);
      throw error;
    }
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
    const derived = /^\((SELECT [\s\S]*)\) AS "K"$/.exec(relation);
    if (derived) {
      const inner = this.run(derived[1] as string, session);
      if (!inner.ok) return inner;
      const columns = inner.columns.map(
        (column): StandInColumn => ({ name: column.name, type: column.type as StandInColumn["type"] }),
      );
      return { columns, rows: inner.rows.map((row) => [...row]), wire: true };
    }
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
    const limit = / LIMIT (\d+)$/.exec(rest);
    // The outer clauses: after a sub-select's closing line, whose query may have clauses of its own.
    const subEnd = rest.startsWith("(\n")
      ? Math.max(0, rest.lastIndexOf("\n) AS src"))
      : rest.startsWith("(SELECT ")
        ? Math.max(0, rest.lastIndexOf(') AS "K"'))
        : 0;
    const orderAt = rest.indexOf(" ORDER BY ", subEnd);
    const whereAt = rest.indexOf(" WHERE ", subEnd);
    const groupAt = rest.indexOf(" GROUP BY ", subEnd);
    const clauseEnds = [limit?.index ?? -1, whereAt, orderAt, groupAt].filter((at) => at >= 0);
    const relationText = rest.slice(0, clauseEnds.length > 0 ? Math.min(...clauseEnds) : rest.length);
    const table = this.resolve(relationText, session);
    if ("ok" in table) return table;
    const end = (from: number) =>
      Math.min(...[limit?.index ?? rest.length, orderAt, groupAt, rest.length].filter((at) => at > from));
    const wire = table.wire ? (table.rows as WireRow[]) : this.wireRows(table);
    const scope = (
      row: readonly (string | null)[],
      firstBind = 0,
      group?: readonly (readonly (string | null)[])[],
    ) => ({
      columns: table.columns,
      row,
      binds,
      firstBind,
      params: session.params,
      ...(group ? { group } : {}),
    });
    let keep: (row: number) => boolean = () => true;
    if (whereAt >= 0) {
      const filter = this.where(rest.slice(whereAt + " WHERE ".length, end(whereAt)), table, wire, binds, scope);
      if (typeof filter !== "function") return filter;
      keep = filter;
    }
    if (list === "*") {
      return { ok: true, columns: table.columns.map(rowTypeOf), rows: limitZero ? [] : wire };
    }
    // The projection: "COL", "COL"::VARIANT AS "COL", TO_VARCHAR("COL", 'format') AS "COL", or an expression.
    const picks: { index: number; column: StandInColumn; format?: string; expression?: Expression }[] = [];
    for (const item of splitList(list)) {
      const match =
        /^("(?:[^"]|"")+")(::VARIANT AS "(?:[^"]|"")+")?$/.exec(item) ??
        /^TO_VARCHAR\(("(?:[^"]|"")+"), '([^']*)'\) AS "(?:[^"]|"")+"$/.exec(item);
      if (!match) {
        const aliased = /^([\s\S]+) AS ("(?:[^"]|"")+")$/.exec(item);
        if (!aliased) return syntaxError(item);
        const expression = parseExpression(aliased[1] as string);
        picks.push({ index: -1, column: { name: unquote(aliased[2] as string) as string, type: "text" }, expression });
        continue;
      }
      const name = unquote(match[1] as string);
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
    let rows = wire.filter((_, i) => keep(i));
    const timezone = session.params.get("TIMEZONE") ?? "UTC";
    if (picks.some((pick) => pick.expression?.aggregate)) {
      let groups: WireRow[][] = [rows];
      if (groupAt >= 0) {
        const keys = splitList(rest.slice(groupAt + " GROUP BY ".length, end(groupAt))).map(parseExpression);
        const byKey = new Map<string, WireRow[]>();
        for (const row of rows) {
          const key = JSON.stringify(keys.map((key) => valueText(evaluate(key, scope(row)))));
          byKey.set(key, [...(byKey.get(key) ?? []), row]);
        }
        groups = [...byKey.values()];
      }
      const values = groups.map((group) =>
        picks.map((pick) => evaluate(pick.expression as Expression, scope(group[0] ?? [], 0, group))),
      );
      return {
        ok: true,
        columns: picks.map((pick, i) =>
          rowTypeOf({ name: pick.column.name, type: values[0]?.[i]?.kind === "number" ? "fixed" : "text" }),
        ),
        rows: values.map((row) => row.map((value) => valueText(value))),
      };
    }
    if (orderAt >= 0 && !limitZero) {
      const order = this.orderBy(rest.slice(orderAt + " ORDER BY ".length, end(orderAt)), table, scope, session.params);
      if (!Array.isArray(order)) return order as Outcome;
      const keyed = rows.map((row) => ({ row, keys: order.map(({ key }) => key(row)) }));
      keyed.sort((a, b) => {
        for (let t = 0; t < order.length; t++) {
          const x = a.keys[t] ?? null;
          const y = b.keys[t] ?? null;
          if (x === null || y === null) {
            if (x !== y) return x === null ? 1 : -1;
            continue;
          }
          const result = (order[t] as { compare: (a: Value, b: Value) => number }).compare(x, y);
          if (result !== 0) return result;
        }
        return 0;
      });
      rows = keyed.map(({ row }) => row);
    }
    if (limit && !limitZero) rows = rows.slice(0, Number(limit[1]));
    const types = picks.map(({ column, expression }) => {
      if (!expression) return rowTypeOf(column);
      const first = rows.length > 0 ? evaluate(expression, scope(rows[0] as WireRow)) : null;
      return rowTypeOf({ name: column.name, type: first?.kind === "number" ? "fixed" : "text" });
    });
    return {
      ok: true,
      columns: types,
      rows: rows.map((row) =>
        picks.map(({ index, format, expression }) => {
          if (expression) return valueText(evaluate(expression, scope(row)), true);
          const cell = row[index] ?? null;
          const type = table.columns[index]?.type as string;
          return cell === null || format === undefined ? cell : toVarchar(cell, type, format, timezone);
        }),
      ),
    };
  }

  /**
   * ORDER BY terms: a plain `"C"` sorts by the column's collation (`en-ci`: case- and accent-insensitive, as an ICU
   * locale collation would); any other expression (`COLLATE(TO_VARCHAR("C"), 'utf8')`…) by its value, text by UTF-8
   * bytes. NULLs last.
   */
  private orderBy(
    text: string,
    table: StandInTable,
    scope: (row: readonly (string | null)[]) => Parameters<typeof evaluate>[1],
    params: ReadonlyMap<string, string>,
  ): { key: (row: WireRow) => Value; compare: (a: Value, b: Value) => number }[] | Outcome {
    const terms: { key: (row: WireRow) => Value; compare: (a: Value, b: Value) => number }[] = [];
    for (const item of splitList(text)) {
      const term = item.replace(/(?: ASC)?(?: NULLS LAST)?$/, "");
      const plain = /^("(?:[^"]|"")+")$/.exec(term);
      const expression = parseExpression(term);
      const collation = plain
        ? table.columns.find((column) => column.name === unquote(plain[1] as string))?.collation
        : undefined;
      const compare = collation
        ? (a: Value, b: Value) =>
            (valueText(a) ?? "").localeCompare(valueText(b) ?? "", collation.split("-")[0], { sensitivity: "base" })
        : (a: Value, b: Value) => compareValues(a as Exclude<Value, null>, b as Exclude<Value, null>, params);
      terms.push({ key: (row) => evaluate(expression, scope(row)), compare });
    }
    return terms;
  }

  /**
   * WHERE: conditions joined by AND: a user's `(\n<condition>\n)`, answered by `conditions`, or an expression (the
   * keyset form over `COLLATE(TO_VARCHAR("K"), 'utf8')` terms, cursor conditions, the IN list of a lookup), evaluated
   * per row with its binds.
   */
  private where(
    text: string,
    table: StandInTable,
    wire: readonly WireRow[],
    binds: readonly string[],
    scope: (row: readonly (string | null)[], firstBind?: number) => Parameters<typeof evaluate>[1],
  ): ((row: number) => boolean) | Outcome {
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
      const expression = parseExpression(condition);
      const firstBind = nextBind;
      nextBind += expression.binds;
      if (nextBind > binds.length) return syntaxError(condition);
      tests.push((row) => isTrue(evaluate(expression, scope(wire[row] ?? [], firstBind))));
    }
    return (row) => tests.every((test) => test(row));
  }

  private wireRows(table: StandInTable): WireRow[] {
    return table.rows.map((row) => table.columns.map((column, i) => encode(row[i] ?? null, column)));
  }
}

/** A value as a result cell: wire text for a bare column (`wire`), else its text; numbers in decimal. */
function valueText(value: Value, wire = false): string | null {
  if (value === null) return null;
  switch (value.kind) {
    case "wire":
      if (wire) return value.text;
      return value.type === "boolean" ? (value.text === "1" ? "true" : "false") : value.text;
    case "text":
      return value.text;
    case "number":
      return String(value.value);
    case "boolean":
      return value.value ? "true" : "false";
  }
}

function syntaxError(near: string): Outcome {
  const token = near.trim().split(/\s+/)[0] ?? "";
  return fail("001003", "42000", `SQL compilation error:\nsyntax error line 1 at position 0 unexpected '${token}'.`);
}
