/**
 * The stand-in's wire side: fixture values in Snowflake's JSON result format (what the server sends before the driver
 * formats it: epoch seconds for timestamps, days for dates, hex for binary; see snowflake-sdk result/column.js), and
 * TO_VARCHAR of dates and times as the server renders them.
 */

export type StandInType =
  | "fixed"
  | "real"
  | "text"
  | "boolean"
  | "date"
  | "time"
  | "timestamp_ntz"
  | "timestamp_ltz"
  | "timestamp_tz"
  | "variant"
  | "object"
  | "array"
  | "binary";

export interface StandInColumn {
  readonly name: string;
  readonly type: StandInType;
  readonly precision?: number;
  readonly scale?: number;
  /** A column collation such as `en-ci`: what a plain `ORDER BY "COL"` sorts by. */
  readonly collation?: string;
  /** A structured OBJECT/ARRAY's typed fields (rowtype `fields`); absent for semi-structured ones. */
  readonly fields?: readonly { readonly name: string; readonly type: string }[];
}

/**
 * A fixture cell, written readably: NUMBER as text ("120000.50"), booleans, dates `2024-01-15`, times `10:00:00.5`,
 * NTZ `2024-01-15 10:00:00.123`, LTZ/TZ with a zone (`2024-01-15 12:00:00 +02:00`), VARIANT as JSON text or a value,
 * BINARY as hex. `null` is NULL.
 */
export type StandInValue = string | number | boolean | null | Record<string, unknown> | unknown[];

/** A `rowtype` entry of a query response. */
export interface RowType {
  readonly name: string;
  readonly type: string;
  readonly precision: number | null;
  readonly scale: number | null;
  readonly nullable: boolean;
  readonly length: number | null;
  readonly byteLength: number | null;
  readonly collation: string | null;
  readonly fields?: readonly { readonly name: string; readonly type: string }[];
}

export function rowTypeOf(column: StandInColumn): RowType {
  const fixed = column.type === "fixed";
  const timed = column.type === "time" || column.type.startsWith("timestamp");
  return {
    name: column.name,
    type: column.type,
    precision: fixed ? (column.precision ?? 38) : null,
    scale: fixed ? (column.scale ?? 0) : timed ? (column.scale ?? 9) : null,
    nullable: true,
    length: column.type === "text" ? 16_777_216 : null,
    byteLength: column.type === "text" ? 16_777_216 : null,
    collation: column.collation ?? null,
    ...(column.fields ? { fields: column.fields } : {}),
  };
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|[+-]\d{2}:\d{2})?$/;

const NANOS = 1_000_000_000n;

/** A fixture's date/time text → nanoseconds since the epoch (the wall time read as UTC) and its zone offset. */
function instant(text: string, column: StandInColumn): { nanos: bigint; offset: number } {
  const match = DATETIME.exec(text);
  if (!match) throw new Error(`stand-in: cannot read ${JSON.stringify(text)} as ${column.type}`);
  const [, y, mo, d, h = "0", mi = "0", s = "0", fraction = "", zone] = match;
  const offset =
    zone === undefined || zone === "Z"
      ? 0
      : (zone.startsWith("-") ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
  return { nanos: BigInt(wall - offset * 60) * NANOS + BigInt(fraction.padEnd(9, "0")), offset };
}

/** Nanoseconds → Snowflake's decimal seconds with `scale` fraction digits (`-1.5` is 1.5 s before the epoch). */
function decimalSeconds(nanos: bigint, scale: number): string {
  const negative = nanos < 0n;
  const abs = negative ? -nanos : nanos;
  const whole = abs / NANOS;
  const text = scale === 0 ? `${whole}` : `${whole}.${(abs % NANOS).toString().padStart(9, "0").slice(0, scale)}`;
  return negative ? `-${text}` : text;
}

function parseSeconds(text: string): bigint {
  const negative = text.startsWith("-");
  const [whole = "0", fraction = ""] = text.replace(/^-/, "").split(".");
  const nanos = BigInt(whole) * NANOS + BigInt(fraction.padEnd(9, "0").slice(0, 9) || "0");
  return negative ? -nanos : nanos;
}

/** A fixture cell in the JSON wire format. */
export function encode(value: StandInValue, column: StandInColumn): string | null {
  if (value === null) return null;
  const scale = rowTypeOf(column).scale ?? 0;
  switch (column.type) {
    case "fixed":
      return typeof value === "number" && scale > 0 ? value.toFixed(scale) : String(value);
    case "real":
      return String(value);
    case "text":
      return String(value);
    case "boolean":
      return value === true || value === "true" ? "1" : "0";
    case "date":
      return String(instant(String(value), column).nanos / NANOS / 86_400n);
    case "time": {
      const [h = "0", m = "0", rest = "0"] = String(value).split(":");
      const [s = "0", fraction = ""] = rest.split(".");
      const nanos = BigInt(Number(h) * 3600 + Number(m) * 60 + Number(s)) * NANOS + BigInt(fraction.padEnd(9, "0"));
      return decimalSeconds(nanos, scale);
    }
    case "timestamp_ntz":
    case "timestamp_ltz":
      return decimalSeconds(instant(String(value), column).nanos, scale);
    case "timestamp_tz": {
      const { nanos, offset } = instant(String(value), column);
      return `${decimalSeconds(nanos, scale)} ${offset + 1440}`;
    }
    case "variant":
    case "object":
    case "array":
      // Snowflake sends VARIANT text pretty-printed with two-space indents.
      return typeof value === "string" ? value : JSON.stringify(value, null, 2);
    case "binary":
      return String(value).toUpperCase();
  }
}

/** Minutes east of UTC of an IANA zone at an instant. */
function zoneOffset(zone: string, millis: number): number {
  if (zone.toUpperCase() === "UTC") return 0;
  const name = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" })
    .formatToParts(new Date(millis))
    .find((part) => part.type === "timeZoneName")?.value;
  const match = /GMT([+-])(\d{2}):(\d{2})/.exec(name ?? "");
  return match ? (match[1] === "-" ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) : 0;
}

/**
 * Snowflake's TO_VARCHAR(<date/time>, '<format>') for the format elements groupsync uses: YYYY MM DD HH24 MI SS
 * FF0-9 TZH:TZM, anything else literal. https://docs.snowflake.com/en/sql-reference/functions-conversion#label-date-time-format-conversion
 */
export function toVarchar(wire: string, type: string, format: string, timezone: string): string {
  let nanos: bigint;
  let offset = 0;
  if (type === "date") nanos = BigInt(wire) * 86_400n * NANOS;
  else if (type === "timestamp_tz") {
    const [seconds = "0", index = "1440"] = wire.split(" ");
    nanos = parseSeconds(seconds);
    offset = Number(index) - 1440;
  } else nanos = parseSeconds(wire);
  let seconds = nanos / NANOS;
  if (nanos < 0n && nanos % NANOS !== 0n) seconds -= 1n;
  const fraction = (nanos - seconds * NANOS).toString().padStart(9, "0");
  if (type === "timestamp_ltz") offset = zoneOffset(timezone, Number(seconds) * 1000);
  const local = new Date(Number(seconds) * 1000 + offset * 60_000);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const elements: [string, () => string][] = [
    ["YYYY", () => pad(local.getUTCFullYear(), 4)],
    ["MM", () => pad(local.getUTCMonth() + 1)],
    ["DD", () => pad(local.getUTCDate())],
    ["HH24", () => pad(local.getUTCHours())],
    ["MI", () => pad(local.getUTCMinutes())],
    ["SS", () => pad(local.getUTCSeconds())],
    [
      "TZH:TZM",
      () => `${offset < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`,
    ],
  ];
  let out = "";
  for (let i = 0; i < format.length; ) {
    const ff = /^FF(\d)?/.exec(format.slice(i));
    if (ff) {
      out += fraction.slice(0, Number(ff[1] ?? "9"));
      i += ff[0].length;
      continue;
    }
    const element = elements.find(([name]) => format.startsWith(name, i));
    if (element) {
      out += element[1]();
      i += element[0].length;
    } else out += format[i++];
  }
  return out;
}
