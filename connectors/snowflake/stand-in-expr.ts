/**
 * The stand-in's expression evaluator: the handful of Snowflake functions and operators the source's hash, lookup,
 * incremental, count and key-check statements use, evaluated over a fixture row's wire cells with Snowflake's
 * documented semantics (NULL propagation, `||` NULL → NULL, OCTET_LENGTH in UTF-8 bytes, MD5 as 32 lowercase hex
 * digits). Not a SQL engine: anything else is a compilation error, as Snowflake refuses what it cannot compile.
 * https://docs.snowflake.com/en/sql-reference/functions-all
 */
import { createHash } from "node:crypto";
import { type StandInColumn, toVarchar } from "./stand-in-wire.js";

/** A value: a column's wire text with its type, a computed text or number, a boolean, or NULL. */
export type Value =
  | { readonly kind: "wire"; readonly type: string; readonly text: string }
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "number"; readonly value: number }
  | { readonly kind: "boolean"; readonly value: boolean }
  | null;

type Node =
  | { readonly op: "column"; readonly name: string }
  | { readonly op: "literal"; readonly value: Value }
  | { readonly op: "bind" }
  | { readonly op: "call"; readonly name: string; readonly args: readonly Node[]; readonly star?: boolean }
  | { readonly op: "binary"; readonly operator: string; readonly left: Node; readonly right: Node }
  | { readonly op: "not"; readonly operand: Node }
  | { readonly op: "isNull"; readonly operand: Node; readonly negated: boolean }
  | { readonly op: "cast"; readonly operand: Node; readonly type: string }
  | { readonly op: "index"; readonly operand: Node; readonly index: number }
  | { readonly op: "inKeys"; readonly tuple: readonly Node[]; readonly bind: number };

/** A parsed expression; `binds` is how many `?` it consumes, in text order. */
export interface Expression {
  readonly node: Node;
  readonly binds: number;
  /** The aggregate functions it calls (MAX, COUNT, SUM): evaluated over a group of rows. */
  readonly aggregate: boolean;
}

export class CompileError extends Error {}

const TOKEN =
  /\s*(?:("(?:[^"]|"")+")|('(?:[^']|'')*')|(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_$]*)|(\|\||::|=>|>=|<=|<>|!=|[(),?><=*.[\]]))/y;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(text);
    if (!match) throw new CompileError(`syntax error near '${text.slice(at, at + 20).trim()}'`);
    tokens.push((match[1] ?? match[2] ?? match[3] ?? match[4] ?? match[5]) as string);
  }
  return tokens;
}

const AGGREGATES = new Set(["MAX", "COUNT", "SUM"]);

/** Parses one expression (a select item without its alias, an ORDER BY term, a WHERE condition). */
export function parseExpression(text: string): Expression {
  const tokens = tokenize(text);
  let i = 0;
  let binds = 0;
  let aggregate = false;
  const peek = () => tokens[i];
  const upper = () => tokens[i]?.toUpperCase();
  const expect = (token: string) => {
    if (upper() !== token) throw new CompileError(`syntax error: expected '${token}' near '${tokens[i] ?? "end"}'`);
    i++;
  };
  const or = (): Node => {
    let left = and();
    while (upper() === "OR") {
      i++;
      left = { op: "binary", operator: "OR", left, right: and() };
    }
    return left;
  };
  const and = (): Node => {
    let left = not();
    while (upper() === "AND") {
      i++;
      left = { op: "binary", operator: "AND", left, right: not() };
    }
    return left;
  };
  const not = (): Node => {
    if (upper() === "NOT") {
      i++;
      return { op: "not", operand: not() };
    }
    return comparison();
  };
  const comparison = (): Node => {
    const left = concat();
    const token = peek();
    if (token && ["=", ">", "<", ">=", "<=", "<>", "!="].includes(token)) {
      i++;
      return { op: "binary", operator: token === "!=" ? "<>" : token, left, right: concat() };
    }
    if (upper() === "IS") {
      i++;
      const negated = upper() === "NOT";
      if (negated) i++;
      expect("NULL");
      return { op: "isNull", operand: left, negated };
    }
    return left;
  };
  const concat = (): Node => {
    let left = postfix();
    while (peek() === "||") {
      i++;
      left = { op: "binary", operator: "||", left, right: postfix() };
    }
    return left;
  };
  const postfix = (): Node => {
    let node = primary();
    for (;;) {
      if (peek() === "::") {
        i++;
        const type = upper();
        if (!type) throw new CompileError("syntax error: a type name is missing after ::");
        i++;
        node = { op: "cast", operand: node, type };
      } else if (peek() === "[") {
        i++;
        const index = Number(peek());
        i++;
        expect("]");
        node = { op: "index", operand: node, index };
      } else return node;
    }
  };
  const primary = (): Node => {
    const token = peek();
    if (token === undefined) throw new CompileError("syntax error: unexpected end of expression");
    i++;
    if (token === "?") {
      binds++;
      return { op: "bind" };
    }
    if (token.startsWith('"')) return { op: "column", name: token.slice(1, -1).replaceAll('""', '"') };
    if (token.startsWith("'"))
      return { op: "literal", value: { kind: "text", text: token.slice(1, -1).replaceAll("''", "'") } };
    if (/^\d/.test(token)) return { op: "literal", value: { kind: "number", value: Number(token) } };
    if (token === "(") {
      const items = [or()];
      while (peek() === ",") {
        i++;
        items.push(or());
      }
      expect(")");
      if (upper() === "IN") {
        // (k1, k2) IN (SELECT f.value[0]::VARCHAR, … FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?))) AS f)
        i++;
        const start = i;
        let depth = 0;
        do {
          if (tokens[i] === "(") depth++;
          else if (tokens[i] === ")") depth--;
          i++;
        } while (depth > 0 && i < tokens.length);
        const sub = tokens.slice(start, i).join(" ").toUpperCase();
        if (!/^\( SELECT .* FROM TABLE \( FLATTEN \( INPUT => PARSE_JSON \( \? \) \) \) AS F \)$/.test(sub)) {
          throw new CompileError(`syntax error: unsupported IN list ${sub}`);
        }
        return { op: "inKeys", tuple: items, bind: binds++ };
      }
      if (items.length !== 1) throw new CompileError("syntax error: a row value outside IN");
      return items[0] as Node;
    }
    const name = token.toUpperCase();
    if (name === "NULL") return { op: "literal", value: null };
    if (name === "TRUE" || name === "FALSE")
      return { op: "literal", value: { kind: "boolean", value: name === "TRUE" } };
    if (peek() !== "(") {
      // `f.value`: the FLATTEN output, only inside the IN list handled above.
      throw new CompileError(`invalid identifier '${token}'`);
    }
    i++;
    if (AGGREGATES.has(name)) aggregate = true;
    if (peek() === "*") {
      i++;
      expect(")");
      return { op: "call", name, args: [], star: true };
    }
    const args: Node[] = [];
    if (peek() !== ")") {
      args.push(or());
      while (peek() === ",") {
        i++;
        args.push(or());
      }
    }
    expect(")");
    return { op: "call", name, args };
  };
  const node = or();
  if (i < tokens.length) throw new CompileError(`syntax error: unexpected '${tokens[i]}'`);
  return { node, binds, aggregate };
}

/** What an expression is evaluated against: one row (or a group of rows, for aggregates). */
export interface Scope {
  readonly columns: readonly StandInColumn[];
  /** The row's wire cells, aligned with `columns`. */
  readonly row: readonly (string | null)[];
  /** The group's rows, when aggregating. */
  readonly group?: readonly (readonly (string | null)[])[];
  readonly binds: readonly string[];
  /** Index of the first bind this expression consumes. */
  readonly firstBind: number;
  /** The session's TIMEZONE and output formats. */
  readonly params: ReadonlyMap<string, string>;
}

const NANOS = 1_000_000_000n;

/** Snowflake's TO_VARCHAR without a format: the session's output formats for dates and times. */
function toText(value: Value, params: ReadonlyMap<string, string>): string | null {
  if (value === null) return null;
  switch (value.kind) {
    case "text":
      return value.text;
    case "number":
      return String(value.value);
    case "boolean":
      return value.value ? "true" : "false";
    case "wire":
      break;
  }
  const timezone = params.get("TIMEZONE") ?? "UTC";
  switch (value.type) {
    case "boolean":
      return value.text === "1" ? "true" : "false";
    case "date":
      return toVarchar(value.text, value.type, params.get("DATE_OUTPUT_FORMAT") ?? "YYYY-MM-DD", timezone);
    case "time":
      return toVarchar(value.text, value.type, params.get("TIME_OUTPUT_FORMAT") ?? "HH24:MI:SS", timezone);
    case "timestamp_ntz":
    case "timestamp_ltz":
    case "timestamp_tz": {
      const key = `${value.type.toUpperCase()}_OUTPUT_FORMAT`;
      const format = params.get(key) ?? params.get("TIMESTAMP_OUTPUT_FORMAT") ?? "YYYY-MM-DD HH24:MI:SS.FF3 TZH:TZM";
      return toVarchar(value.text, value.type, format, timezone);
    }
    case "variant":
    case "object":
    case "array": {
      // A string stored in a VARIANT converts as the string itself, anything else as compact JSON.
      const parsed = JSON.parse(value.text) as unknown;
      return typeof parsed === "string" ? parsed : JSON.stringify(parsed);
    }
    default:
      // NUMBER, FLOAT, VARCHAR; BINARY under BINARY_OUTPUT_FORMAT = HEX.
      return value.text;
  }
}

/** A temporal wire value as nanoseconds since the epoch (dates: days × 86400 s), for comparisons and MAX. */
function nanosOf(value: Value & { kind: "wire" }): bigint {
  const [seconds = "0"] = value.text.split(" ");
  if (value.type === "date") return BigInt(seconds) * 86_400n * NANOS;
  const negative = seconds.startsWith("-");
  const [whole = "0", fraction = ""] = seconds.replace(/^-/, "").split(".");
  const nanos = BigInt(whole) * NANOS + BigInt(fraction.padEnd(9, "0").slice(0, 9) || "0");
  return negative ? -nanos : nanos;
}

const TEMPORAL = new Set(["date", "time", "timestamp_ntz", "timestamp_ltz", "timestamp_tz"]);

/** Snowflake's comparison of two non-null values: temporal by instant, numbers numerically, text by UTF-8 bytes. */
export function compareValues(
  a: Exclude<Value, null>,
  b: Exclude<Value, null>,
  params: ReadonlyMap<string, string>,
): number {
  if (a.kind === "wire" && b.kind === "wire" && TEMPORAL.has(a.type) && TEMPORAL.has(b.type)) {
    const x = nanosOf(a);
    const y = nanosOf(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const numeric = (value: Exclude<Value, null>) =>
    value.kind === "number"
      ? value.value
      : value.kind === "wire" && (value.type === "fixed" || value.type === "real")
        ? Number(value.text)
        : undefined;
  const x = numeric(a);
  const y = numeric(b);
  if (x !== undefined && y !== undefined) return x < y ? -1 : x > y ? 1 : 0;
  return Buffer.compare(Buffer.from(toText(a, params) ?? "", "utf8"), Buffer.from(toText(b, params) ?? "", "utf8"));
}

/**
 * TO_TIMESTAMP_TZ/NTZ/LTZ(text, format) and TO_DATE(text, format) for the formats the source uses: the text parsed
 * back into a wire value of that type.
 */
function parseTemporal(type: string, text: string): Value {
  const match =
    /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?(?: ([+-])(\d{2}):(\d{2}))?$/.exec(text);
  if (!match) throw new CompileError(`Timestamp '${text}' is not recognized`);
  const [, y, mo, d, h = "0", mi = "0", s = "0", fraction = "", sign, zh = "0", zm = "0"] = match;
  const offset = sign === undefined ? 0 : (sign === "-" ? -1 : 1) * (Number(zh) * 60 + Number(zm));
  const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
  const seconds = BigInt(wall - (type === "timestamp_ntz" ? 0 : offset * 60));
  if (type === "date") return { kind: "wire", type, text: String(seconds / 86_400n) };
  const text9 = `${seconds}.${fraction.padEnd(9, "0")}`;
  return { kind: "wire", type, text: type === "timestamp_tz" ? `${text9} ${offset + 1440}` : text9 };
}

const truthy = (value: Value) =>
  value !== null &&
  ((value.kind === "boolean" && value.value) ||
    (value.kind === "wire" && value.type === "boolean" && value.text === "1") ||
    (value.kind === "number" && value.value !== 0));

/** Evaluates an expression in a scope. */
export function evaluate(expression: Expression, scope: Scope): Value {
  let nextBind = scope.firstBind;
  const text = (value: Value) => toText(value, scope.params);
  const run = (node: Node, row: readonly (string | null)[]): Value => {
    switch (node.op) {
      case "literal":
        return node.value;
      case "bind": {
        const bind = scope.binds[nextBind++];
        if (bind === undefined) throw new CompileError("a bind variable has no value");
        return { kind: "text", text: bind };
      }
      case "column": {
        const index = scope.columns.findIndex((column) => column.name === node.name);
        if (index < 0) throw new CompileError(`invalid identifier '"${node.name}"'`);
        const cell = row[index] ?? null;
        return cell === null ? null : { kind: "wire", type: (scope.columns[index] as StandInColumn).type, text: cell };
      }
      case "isNull": {
        const isNull = run(node.operand, row) === null;
        return { kind: "boolean", value: node.negated ? !isNull : isNull };
      }
      case "not": {
        const value = run(node.operand, row);
        return value === null ? null : { kind: "boolean", value: !truthy(value) };
      }
      case "cast": {
        const value = run(node.operand, row);
        if (value === null) return null;
        if (node.type === "VARIANT") {
          return value.kind === "wire" ? { kind: "wire", type: "variant", text: value.text } : value;
        }
        if (node.type === "VARCHAR") return { kind: "text", text: text(value) as string };
        throw new CompileError(`unsupported cast to ${node.type}`);
      }
      case "index": {
        const value = run(node.operand, row);
        if (value === null) return null;
        const parsed = JSON.parse(value.kind === "text" ? value.text : (text(value) as string)) as unknown[];
        const item = parsed[node.index];
        return item === undefined || item === null
          ? null
          : { kind: "wire", type: "variant", text: JSON.stringify(item) };
      }
      case "inKeys": {
        const bind = scope.binds[scope.firstBind + node.bind];
        if (bind === undefined) throw new CompileError("a bind variable has no value");
        nextBind++;
        const wanted = keySet(bind);
        const tuple = node.tuple.map((item) => text(run(item, row)));
        return { kind: "boolean", value: !tuple.includes(null) && wanted.has(JSON.stringify(tuple)) };
      }
      case "binary": {
        if (node.operator === "AND" || node.operator === "OR") {
          const left = run(node.left, row);
          const right = run(node.right, row);
          if (node.operator === "AND") {
            if ((left !== null && !truthy(left)) || (right !== null && !truthy(right)))
              return { kind: "boolean", value: false };
            return left === null || right === null ? null : { kind: "boolean", value: true };
          }
          if (truthy(left) || truthy(right)) return { kind: "boolean", value: true };
          return left === null || right === null ? null : { kind: "boolean", value: false };
        }
        const left = run(node.left, row);
        const right = run(node.right, row);
        if (left === null || right === null) return null;
        if (node.operator === "||") return { kind: "text", text: `${text(left)}${text(right)}` };
        const order = compareValues(left, right, scope.params);
        const result =
          node.operator === "="
            ? order === 0
            : node.operator === "<>"
              ? order !== 0
              : node.operator === ">"
                ? order > 0
                : node.operator === "<"
                  ? order < 0
                  : node.operator === ">="
                    ? order >= 0
                    : order <= 0;
        return { kind: "boolean", value: result };
      }
      case "call":
        return call(node, row);
    }
  };
  const call = (node: Node & { op: "call" }, row: readonly (string | null)[]): Value => {
    if (AGGREGATES.has(node.name)) {
      const group = scope.group ?? [row];
      if (node.name === "COUNT") return { kind: "number", value: group.length };
      const start = nextBind;
      const values = group
        .map((member) => {
          nextBind = start;
          return run(node.args[0] as Node, member);
        })
        .filter((value): value is Exclude<Value, null> => value !== null);
      if (values.length === 0) return null;
      if (node.name === "SUM")
        return { kind: "number", value: values.reduce((sum, value) => sum + Number(text(value)), 0) };
      return values.reduce((max, value) => (compareValues(value, max, scope.params) > 0 ? value : max));
    }
    const args = node.args.map((arg) => run(arg, row));
    const [first = null, second = null, third = null] = args;
    switch (node.name) {
      case "IFF":
        return truthy(first) ? second : third;
      case "COALESCE":
        return args.find((value) => value !== null) ?? null;
      case "COLLATE":
        return first === null ? null : { kind: "text", text: text(first) as string };
      case "TO_VARCHAR": {
        if (first === null) return null;
        if (args.length === 1) return { kind: "text", text: text(first) as string };
        const format = text(second) as string;
        if (first.kind === "wire" && TEMPORAL.has(first.type)) {
          return {
            kind: "text",
            text: toVarchar(first.text, first.type, format, scope.params.get("TIMEZONE") ?? "UTC"),
          };
        }
        if (first.kind === "wire" && first.type === "binary" && format.toUpperCase() === "HEX") {
          return { kind: "text", text: first.text.toUpperCase() };
        }
        throw new CompileError(`TO_VARCHAR of ${first.kind === "wire" ? first.type : first.kind} with a format`);
      }
      case "TO_JSON":
        if (first === null) return null;
        return { kind: "text", text: first.kind === "wire" ? compactJson(first.text) : JSON.stringify(text(first)) };
      case "TO_TIMESTAMP_TZ":
      case "TO_TIMESTAMP_NTZ":
      case "TO_TIMESTAMP_LTZ":
      case "TO_DATE":
      case "TO_TIME": {
        if (first === null) return null;
        const type = node.name === "TO_DATE" ? "date" : node.name.slice(3).toLowerCase();
        if (type === "time") {
          const [h = "0", m = "0", rest = "0"] = (text(first) as string).split(":");
          const [s = "0", fraction = ""] = rest.split(".");
          const seconds = Number(h) * 3600 + Number(m) * 60 + Number(s);
          return { kind: "wire", type, text: `${seconds}.${fraction.padEnd(9, "0")}` };
        }
        return parseTemporal(type, text(first) as string);
      }
      case "TO_NUMBER":
      case "TO_DOUBLE":
        return first === null ? null : { kind: "number", value: Number(text(first)) };
      case "RTRIM": {
        if (first === null || second === null) return null;
        const chars = new Set(text(second) as string);
        let out = text(first) as string;
        while (out.length > 0 && chars.has(out.at(-1) as string)) out = out.slice(0, -1);
        return { kind: "text", text: out };
      }
      case "OCTET_LENGTH":
        return first === null ? null : { kind: "number", value: Buffer.byteLength(text(first) as string, "utf8") };
      case "MD5":
        return first === null
          ? null
          : {
              kind: "text",
              text: createHash("md5")
                .update(text(first) as string, "utf8")
                .digest("hex"),
            };
      case "LEFT":
        return first === null || second === null
          ? null
          : { kind: "text", text: [...(text(first) as string)].slice(0, Number(text(second))).join("") };
      case "REGEXP_LIKE":
        // Snowflake anchors the pattern at both ends; POSIX classes as the source writes them.
        return first === null || second === null
          ? null
          : {
              kind: "boolean",
              value: new RegExp(`^(?:${(text(second) as string).replaceAll("[[:space:]]", "\\s")})$`, "u").test(
                text(first) as string,
              ),
            };
      default:
        throw new CompileError(`Unknown function ${node.name}`);
    }
  };
  return run(expression.node, scope.row);
}

let lastKeys: { readonly bind: string; readonly set: ReadonlySet<string> } | undefined;

/** The keys of a lookup's JSON bind, parsed once per statement rather than once per row. */
function keySet(bind: string): ReadonlySet<string> {
  if (lastKeys?.bind !== bind) {
    lastKeys = { bind, set: new Set((JSON.parse(bind) as string[][]).map((key) => JSON.stringify(key))) };
  }
  return lastKeys.set;
}

/** JSON text without the whitespace between tokens, numbers kept digit for digit (TO_JSON's compact form). */
function compactJson(json: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i] as string;
    if (inString) {
      out += c;
      if (c === "\\") out += json[++i] ?? "";
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (!/\s/.test(c)) out += c;
  }
  return out;
}

/** A boolean result as WHERE treats it: NULL and FALSE drop the row. */
export const isTrue = truthy;
