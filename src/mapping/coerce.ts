/**
 * Turns one non-null raw text cell into the JSON value sent to the destination. Pure. Without a declared type the
 * warehouse type is kept faithfully (exact strings where a double would round); with one, the value is converted or
 * refused with a reason naming the declared type and the column's kind. Never yields a Date, NaN or Infinity.
 */
import type { PropertyType } from "../config/schema.js";
import type { JsonValue } from "../model.js";
import type { SourceColumn } from "../source.js";

export type Coerced = { ok: true; value: JsonValue } | { ok: false; reason: string };

const NON_FINITE = "non-finite number; Mixpanel cannot store NaN or Infinity";
const NON_FINITE_TEXT = /^[+-]?(?:nan|inf|infinity)$/i;
const NUMBER_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER_TEXT = /^[+-]?\d+$/;
/** Smallest normal double: below it a decimal loses digits even when it has few. */
const MIN_NORMAL = 2.2250738585072014e-308;
/** A Map, not an object: a cell reading `__proto__` or `constructor` must not find Object.prototype's members. */
const BOOLEAN_TEXT: ReadonlyMap<string, boolean> = new Map([
  ["true", true],
  ["t", true],
  ["yes", true],
  ["1", true],
  ["false", false],
  ["f", false],
  ["no", false],
  ["0", false],
]);
/**
 * PostgreSQL's ISO output (`2024-01-15 10:00:00.123456+00`, years past 9999 with more digits, a ` BC` suffix) and
 * ISO 8601 / RFC 3339 text (`2024-01-15T10:00Z`, `…+05:30`, a bare date).
 */
const DATETIME_TEXT =
  /^(\d{4,})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?\s?(Z|[+-]\d{2}(?::?\d{2}){0,2})?)?( BC)?$/i;

const ok = (value: JsonValue): Coerced => ({ ok: true, value });
const fail = (reason: string): Coerced => ({ ok: false, reason });

function show(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}…` : text);
}

function cannot(text: string, column: SourceColumn, as: string, hint?: string): Coerced {
  return fail(`cannot read ${show(text)} (${column.kind}) as ${as}${hint ? `: ${hint}` : ""}`);
}

/** Deeper JSON is refused: rendering it would exhaust the stack, and no analytics tool can show it. */
export const MAX_JSON_DEPTH = 100;
const LONE_SURROGATE = /\p{Cs}/u;
/** Any surrogate code unit, paired or not: a cheap first test (most strings have none, and skip the Unicode one). */
const ANY_SURROGATE = /[\ud800-\udfff]/;

/**
 * The value to send for one cell, or a refusal with a reason. Whatever the path, the value is plain JSON with finite
 * numbers, nested at most MAX_JSON_DEPTH levels, and its strings are valid Unicode (no lone surrogate: a PostgreSQL
 * `json` column keeps a `"\ud800"` escape that UTF-8 cannot carry).
 */
export function coerceValue(text: string, column: SourceColumn, declared?: PropertyType): Coerced {
  const result = coerceCell(text, column, declared);
  if (!result.ok) return result;
  // A parsed JSON value or list was checked as it was read: walking it a second time would change nothing.
  if (result.value === verified && typeof result.value === "object") return result;
  const problem = jsonProblem(result.value);
  return problem === undefined ? result : fail(`cannot send ${show(text)} (${column.kind}): ${problem}`);
}

function coerceCell(text: string, column: SourceColumn, declared?: PropertyType): Coerced {
  switch (declared) {
    case undefined:
      return native(text, column);
    case "string":
      return toText(text, column);
    case "number":
      return toNumber(text, column);
    case "boolean":
      return toBoolean(text, column);
    case "datetime":
      return toDateTime(text, column, "datetime");
    case "date":
      return toDateTime(text, column, "date");
    case "list":
      return toList(text, column);
    case "object":
      return toObject(text, column);
  }
}

/** The warehouse type kept as it is. */
function native(text: string, column: SourceColumn): Coerced {
  switch (column.kind) {
    case "integer":
    case "bigint":
      return integer(text, column);
    case "decimal":
      return decimal(text, column);
    case "float":
      return float(text, column, "number");
    case "boolean": {
      const value = text === "t" || text === "true" ? true : text === "f" || text === "false" ? false : undefined;
      return value === undefined ? cannot(text, column, "boolean", "expected t or f") : ok(value);
    }
    case "timestamptz":
    case "timestamp":
    case "date":
      return toDateTime(text, column, column.kind === "date" ? "date" : "datetime");
    case "json":
      return json(text, column);
    case "array":
      return decodeArray(text, column);
    case "time":
    case "binary":
    case "text":
    case "other":
      return ok(text);
  }
}

/** An integer: a number while it is exact (|x| ≤ 2^53−1), else the exact decimal string. */
function integer(text: string, column: SourceColumn): Coerced {
  if (!INTEGER_TEXT.test(text)) {
    return cannot(text, column, "number", NON_FINITE_TEXT.test(text) ? NON_FINITE : "expected an integer");
  }
  const value = Number(text);
  return ok(Number.isSafeInteger(value) ? value + 0 : text);
}

/**
 * A decimal: a number when it has at most 15 significant digits (every such decimal survives the round trip through
 * a double, DBL_DIG) and lies in the normal range of doubles; else the exact string.
 */
function decimal(text: string, column: SourceColumn): Coerced {
  if (NON_FINITE_TEXT.test(text)) return cannot(text, column, "number", NON_FINITE);
  if (!NUMBER_TEXT.test(text)) return cannot(text, column, "number", "expected a decimal number");
  const digits = text
    .replace(/^[+-]/, "")
    .replace(/[eE].*$/, "")
    .replace(".", "")
    .replace(/^0+/, "")
    .replace(/0+$/, "");
  const value = Number(text);
  const exact =
    digits.length <= 15 && (digits.length === 0 || (Math.abs(value) >= MIN_NORMAL && Number.isFinite(value)));
  return ok(exact ? value + 0 : text);
}

/** Any finite number, rounded to the nearest double. */
function float(text: string, column: SourceColumn, as: string): Coerced {
  const trimmed = text.trim();
  if (!NUMBER_TEXT.test(trimmed)) {
    const hint = NON_FINITE_TEXT.test(trimmed) ? NON_FINITE : "expected a number such as 42 or -1.5";
    return cannot(text, column, as, hint);
  }
  const value = Number(trimmed);
  return Number.isFinite(value) ? ok(value + 0) : cannot(text, column, as, NON_FINITE);
}

function json(text: string, column: SourceColumn): Coerced {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return cannot(text, column, "JSON", (error as Error).message);
  }
  return checked(value, text, column, "JSON");
}

function decodeArray(text: string, column: SourceColumn): Coerced {
  if (!column.decode) return cannot(text, column, "list", `the source gave no decoder for ${column.dbType}`);
  let value: unknown;
  try {
    value = column.decode(text);
  } catch (error) {
    return cannot(text, column, "list", (error as Error).message);
  }
  if (!Array.isArray(value)) return cannot(text, column, "list", "the decoder did not return a list");
  return checked(value, text, column, "list");
}

/** The last object `checked` found to be plain JSON (coerceValue need not walk it again). */
let verified: unknown;

/** Returns `value` if it is a JSON value with finite numbers only. */
function checked(value: unknown, text: string, column: SourceColumn, as: string): Coerced {
  const problem = jsonProblem(value);
  if (problem !== undefined) return cannot(text, column, as, problem);
  verified = value;
  return ok(value as JsonValue);
}

function jsonProblem(value: unknown, depth = 0): string | undefined {
  switch (typeof value) {
    case "string":
      return ANY_SURROGATE.test(value) && LONE_SURROGATE.test(value)
        ? "a string holds a lone surrogate (invalid Unicode that UTF-8 cannot carry)"
        : undefined;
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : NON_FINITE;
    case "object": {
      if (value === null) return undefined;
      if (depth >= MAX_JSON_DEPTH) return `nested more than ${MAX_JSON_DEPTH} levels deep`;
      if (Array.isArray(value)) {
        for (const item of value) {
          const problem = jsonProblem(item, depth + 1);
          if (problem !== undefined) return problem;
        }
        return undefined;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) {
        return `${(value as object).constructor?.name ?? "an object"} is not a JSON value`;
      }
      // for-in, not Object.values: no array per object (the prototype is Object.prototype or null, checked above).
      for (const key in value) {
        const problem = jsonProblem((value as Record<string, unknown>)[key], depth + 1);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    default:
      return `a ${typeof value} is not a JSON value`;
  }
}

function toText(text: string, column: SourceColumn): Coerced {
  switch (column.kind) {
    case "boolean": {
      const value = native(text, column);
      return value.ok ? ok(String(value.value)) : value;
    }
    case "timestamptz":
    case "timestamp":
    case "date":
      return native(text, column);
    case "json": {
      const value = json(text, column);
      return value.ok ? ok(compactJson(text)) : value;
    }
    case "array": {
      const value = decodeArray(text, column);
      return value.ok ? ok(JSON.stringify(value.value)) : value;
    }
    default:
      return ok(text);
  }
}

/** Drops the whitespace between JSON tokens without re-rendering numbers (a parse would round big ones). */
function compactJson(text: string): string {
  let out = "";
  let start = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      out += text.slice(start, i);
      start = i + 1;
    }
  }
  return out + text.slice(start);
}

function toNumber(text: string, column: SourceColumn): Coerced {
  switch (column.kind) {
    case "integer":
    case "bigint":
    case "decimal":
    case "float":
    case "text":
      return float(text, column, "number");
    default:
      return cannot(text, column, "number", "only numeric and text columns convert to numbers");
  }
}

function toBoolean(text: string, column: SourceColumn): Coerced {
  if (column.kind !== "boolean" && column.kind !== "text" && column.kind !== "integer" && column.kind !== "bigint") {
    return cannot(text, column, "boolean", "only boolean, integer and text columns convert to booleans");
  }
  const value = BOOLEAN_TEXT.get(text.trim().toLowerCase());
  return value === undefined ? cannot(text, column, "boolean", "expected true/false, t/f, 1/0 or yes/no") : ok(value);
}

/**
 * An instant as ISO 8601 UTC (`2024-01-15T10:00:00.123456Z`, the fraction digits kept as given) or its UTC date.
 * Timestamps without zone and zone-less text are read as UTC.
 */
function toDateTime(text: string, column: SourceColumn, as: "datetime" | "date"): Coerced {
  const hint = as === "date" ? "expected a date such as 2024-01-15" : "expected ISO 8601 such as 2024-01-15T10:00:00Z";
  if (
    column.kind !== "timestamptz" &&
    column.kind !== "timestamp" &&
    column.kind !== "date" &&
    column.kind !== "text"
  ) {
    return cannot(text, column, as, `only timestamp, date and text columns convert to ${as}s`);
  }
  if (column.kind !== "text") {
    const fast = postgresDateTime(text, column.kind, as);
    if (fast !== undefined) return ok(fast);
  }
  return generalDateTime(text, column, as, hint);
}

/** toDateTime without its fast path (exported for the test that proves the fast path gives the same). */
export function generalDateTime(
  text: string,
  column: SourceColumn,
  as: "datetime" | "date",
  hint = as === "date" ? "expected a date such as 2024-01-15" : "expected ISO 8601 such as 2024-01-15T10:00:00Z",
): Coerced {
  const trimmed = column.kind === "text" ? text.trim() : text;
  if (/^[+-]?infinity$/i.test(trimmed)) return cannot(text, column, as, "an infinite date has no ISO 8601 form");
  const match = DATETIME_TEXT.exec(trimmed);
  if (!match) return cannot(text, column, as, hint);
  const [, year, month, day, hour = "0", minute = "0", second = "0", fraction = "", zone, bc] = match;
  if (column.kind === "date" && match[4] !== undefined) return cannot(text, column, as, hint);
  const outside = "years before 0001 or after 9999 have no ISO 8601 form";
  if (bc !== undefined) return cannot(text, column, as, outside);
  const instant = new Date(0);
  instant.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  instant.setUTCHours(Number(hour), Number(minute), Number(second), 0);
  const valid =
    instant.getUTCFullYear() === Number(year) &&
    instant.getUTCMonth() === Number(month) - 1 &&
    instant.getUTCDate() === Number(day) &&
    instant.getUTCHours() === Number(hour) &&
    instant.getUTCMinutes() === Number(minute) &&
    instant.getUTCSeconds() === Number(second);
  if (!valid) return cannot(text, column, as, "no such date or time");
  instant.setTime(instant.getTime() - offsetSeconds(zone) * 1000);
  const y = instant.getUTCFullYear();
  if (y < 1 || y > 9999) return cannot(text, column, as, outside);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const date = `${pad(y, 4)}-${pad(instant.getUTCMonth() + 1)}-${pad(instant.getUTCDate())}`;
  if (as === "date") return ok(date);
  const time = `${pad(instant.getUTCHours())}:${pad(instant.getUTCMinutes())}:${pad(instant.getUTCSeconds())}`;
  return ok(`${date}T${time}${fraction}Z`);
}

/** Days in each month of a common year. */
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The number of the `count` ASCII digits at `at`, or -1 if one of them is not a digit. */
function digitsAt(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * The fast path of toDateTime for what PostgreSQL itself prints in the UTC session groupsync opens (DateStyle ISO):
 * `2024-01-15 10:00:00[.123456]+00` (timestamptz), the same without `+00` (timestamp) and `2024-01-15` (date), in
 * years 0001–9999. It gives exactly what the general path gives (the digits are already UTC, and the fraction is
 * kept as it is), and undefined for anything else, which the general path then reads or refuses with its reason.
 */
function postgresDateTime(text: string, kind: SourceColumn["kind"], as: "datetime" | "date"): string | undefined {
  const length = text.length;
  if (length < 10 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return undefined;
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  if (year < 1 || month < 1 || month > 12 || day < 1) return undefined;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : MONTH_DAYS[month - 1]!)) return undefined;
  const date = text.slice(0, 10);
  if (kind === "date") {
    if (length !== 10) return undefined;
    return as === "date" ? date : `${date}T00:00:00Z`;
  }
  // `YYYY-MM-DD HH:MM:SS`, an optional fraction, then `+00` for timestamptz and nothing for timestamp.
  const end = kind === "timestamptz" ? length - 3 : length;
  if (kind === "timestamptz" && !text.endsWith("+00")) return undefined;
  if (kind !== "timestamptz" && kind !== "timestamp") return undefined;
  if (end < 19 || text.charCodeAt(10) !== 32 || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) {
    return undefined;
  }
  const hour = digitsAt(text, 11, 2);
  const minute = digitsAt(text, 14, 2);
  const second = digitsAt(text, 17, 2);
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return undefined;
  if (end > 19 && (text.charCodeAt(19) !== 46 || end === 20 || digitsAt(text, 20, end - 20) < 0)) return undefined;
  if (as === "date") return date;
  return `${date}T${text.slice(11, 19)}${text.slice(19, end)}Z`;
}

/** `Z`, `+05`, `+05:30`, `-0330`, `+05:53:28` → seconds east of UTC. */
function offsetSeconds(zone: string | undefined): number {
  if (zone === undefined || zone.toUpperCase() === "Z") return 0;
  const digits = zone.slice(1).replaceAll(":", "");
  const seconds =
    Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || "0") * 60 + Number(digits.slice(4, 6) || "0");
  return zone.startsWith("-") ? -seconds : seconds;
}

function toList(text: string, column: SourceColumn): Coerced {
  if (column.kind === "array") return decodeArray(text, column);
  if (column.kind === "json") {
    const value = json(text, column);
    if (!value.ok || Array.isArray(value.value)) return value;
    return cannot(text, column, "list", "the JSON value is not an array");
  }
  return cannot(text, column, "list", "only array and JSON columns convert to lists");
}

function toObject(text: string, column: SourceColumn): Coerced {
  if (column.kind !== "json") return cannot(text, column, "object", "only JSON columns convert to objects");
  const value = json(text, column);
  if (!value.ok) return value;
  if (value.value === null || typeof value.value !== "object" || Array.isArray(value.value)) {
    return cannot(text, column, "object", "the JSON value is not an object");
  }
  return value;
}
