/**
 * Snowflake result columns → the engine's value kinds, and the few fix-ups that turn the driver's text into the
 * stable forms the mapping layer reads. Every value arrives as text (`fetchAsString`), rendered under the fixed
 * session formats of `sessionSql`. https://docs.snowflake.com/en/sql-reference/intro-summary-data-types
 */
import type { SourceColumn, ValueKind } from "../../src/source.js";

/** A result column as snowflake-sdk describes it (its `rowtype` entry). */
export interface SnowflakeColumnInfo {
  /** Column name as Snowflake returns it (unquoted names upper-case). */
  readonly name: string;
  /** The driver's type name: fixed, real, text, boolean, date, time, timestamp_ntz|ltz|tz, variant, object, … */
  readonly type: string;
  /** Digits after the point (NUMBER) or of the fraction of a second (TIME, TIMESTAMP_*); null otherwise. */
  readonly scale: number | null;
  /** Total digits of a NUMBER; null otherwise. */
  readonly precision: number | null;
  /** A structured OBJECT/ARRAY/MAP (typed fields): read as VARIANT so that its JSON text arrives untouched. */
  readonly structured: boolean;
}

/** The SQL type name for messages: NUMBER(38,0), FLOAT, TIMESTAMP_NTZ(9), VARIANT… */
export function sqlTypeName(column: SnowflakeColumnInfo): string {
  switch (column.type) {
    case "fixed":
      return `NUMBER(${column.precision ?? 38},${column.scale ?? 0})`;
    case "real":
      return "FLOAT";
    case "text":
      return "VARCHAR";
    default:
      return column.type.toUpperCase();
  }
}

const KINDS: Readonly<Record<string, ValueKind>> = {
  real: "float",
  text: "text",
  boolean: "boolean",
  date: "date",
  time: "time",
  // NTZ is a wall-clock time without zone: rendered as is, read as UTC (see README).
  timestamp_ntz: "timestamp",
  timestamp_ltz: "timestamptz",
  timestamp_tz: "timestamptz",
  variant: "json",
  object: "json",
  array: "json",
  map: "json",
  binary: "binary",
};

/** NUMBER with scale 0 is an integer of up to 38 digits: exact, as a string when a double cannot hold it. */
export function kindOf(column: SnowflakeColumnInfo): ValueKind {
  if (column.type === "fixed") return (column.scale ?? 0) === 0 ? "bigint" : "decimal";
  return KINDS[column.type] ?? "other";
}

export function columnOf(column: SnowflakeColumnInfo): SourceColumn {
  return { name: column.name, dbType: sqlTypeName(column), kind: kindOf(column) };
}

/** Turns one non-null cell into the text the engine hashes and coerces; undefined when the text is used as is. */
export type CellRenderer = (text: string) => string;

/**
 * The driver renders BOOLEAN as TRUE/FALSE; Snowflake's own TO_VARCHAR (and the mapping layer) say true/false.
 * Timestamps and times come with nine fraction digits (FF9); trailing zeros are dropped (`10:00:00.500000000` →
 * `10:00:00.5`, `10:00:00.000000000` → `10:00:00`) so that values read like PostgreSQL's and whole seconds stay whole.
 */
export function rendererOf(column: SnowflakeColumnInfo): CellRenderer | undefined {
  switch (column.type) {
    case "boolean":
      return (text) => text.toLowerCase();
    case "time":
    case "timestamp_ntz":
    case "timestamp_ltz":
    case "timestamp_tz":
      return trimFraction;
    default:
      return undefined;
  }
}

const FRACTION = /\.(\d*?)0*(?=$| )/;

/** `… 10:00:00.120000000 +02:00` → `… 10:00:00.12 +02:00`. */
export function trimFraction(text: string): string {
  return text.replace(FRACTION, (_, kept: string) => (kept === "" ? "" : `.${kept}`));
}
