import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { decodeArray } from "../../connectors/postgres/types.js";
import { PROPERTY_TYPES, type PropertyType } from "../../src/config/schema.js";
import { coerceValue, generalDateTime } from "../../src/mapping/coerce.js";
import type { SourceColumn, ValueKind } from "../../src/source.js";

const KINDS: readonly ValueKind[] = [
  "integer",
  "bigint",
  "decimal",
  "float",
  "boolean",
  "text",
  "timestamptz",
  "timestamp",
  "date",
  "time",
  "json",
  "array",
  "binary",
  "other",
];

function column(kind: ValueKind, element?: ValueKind): SourceColumn {
  if (kind !== "array") return { name: "c", dbType: kind, kind };
  const elementColumn: SourceColumn = { name: "c", dbType: element ?? "text", kind: element ?? "text" };
  return { name: "c", dbType: `_${element}`, kind, decode: (text) => decodeArray(text, ",", elementColumn) };
}

/** [text, kind (or array of element kind), declared, expected value or a pattern the refusal reason matches]. */
type Case = readonly [string, ValueKind | `array:${ValueKind}`, PropertyType | undefined, unknown];

const NON_FINITE = /non-finite number; Mixpanel cannot store NaN or Infinity/;

function run(cases: readonly Case[]) {
  for (const [text, kind, declared, expected] of cases) {
    const [base, element] = kind.split(":") as [ValueKind, ValueKind | undefined];
    test(`${JSON.stringify(text)} (${kind}) as ${declared ?? "native"} → ${expected instanceof RegExp ? `refused ${expected}` : JSON.stringify(expected)}`, () => {
      const result = coerceValue(text, column(base, element), declared);
      if (expected instanceof RegExp) {
        assert.equal(result.ok, false, `expected a refusal, got ${JSON.stringify(result)}`);
        if (!result.ok) assert.match(result.reason, expected);
      } else {
        assert.deepEqual(result, { ok: true, value: expected });
      }
    });
  }
}

describe("native: integers and bigints are numbers while exact, else exact strings", () => {
  run([
    ["42", "integer", undefined, 42],
    ["-7", "integer", undefined, -7],
    ["0", "integer", undefined, 0],
    ["-2147483648", "integer", undefined, -2147483648],
    ["9007199254740991", "bigint", undefined, 9007199254740991],
    ["9007199254740992", "bigint", undefined, "9007199254740992"],
    ["9007199254740993", "bigint", undefined, "9007199254740993"],
    ["-9007199254740991", "bigint", undefined, -9007199254740991],
    ["-9007199254740992", "bigint", undefined, "-9007199254740992"],
    ["-9223372036854775808", "bigint", undefined, "-9223372036854775808"],
    ["12x", "integer", undefined, /cannot read "12x" \(integer\) as number/],
  ]);
});

describe("native: decimals are numbers up to 15 significant digits, else exact strings", () => {
  run([
    ["123.45", "decimal", undefined, 123.45],
    ["-0.5", "decimal", undefined, -0.5],
    ["0.00", "decimal", undefined, 0],
    ["123456789012345", "decimal", undefined, 123456789012345],
    ["1234567890123456", "decimal", undefined, "1234567890123456"],
    ["1.23456789012345", "decimal", undefined, 1.23456789012345],
    ["1.234567890123456", "decimal", undefined, "1.234567890123456"],
    ["-99999999999999.9", "decimal", undefined, -99999999999999.9],
    ["-999999999999999.99", "decimal", undefined, "-999999999999999.99"],
    ["0.000123456789012345", "decimal", undefined, 0.000123456789012345],
    ["1.50000000000000000000", "decimal", undefined, 1.5],
    ["100000000000000000000", "decimal", undefined, 1e20],
    ["12345678901234567890", "decimal", undefined, "12345678901234567890"],
    ["1e400", "decimal", undefined, "1e400"],
    ["NaN", "decimal", undefined, NON_FINITE],
    ["Infinity", "decimal", undefined, NON_FINITE],
    ["-Infinity", "decimal", undefined, NON_FINITE],
    ["NaN", "bigint", undefined, NON_FINITE],
  ]);
});

describe("native: floats, booleans, text kinds", () => {
  run([
    ["1.5", "float", undefined, 1.5],
    ["-0.1", "float", undefined, -0.1],
    ["1e+20", "float", undefined, 1e20],
    ["1.7976931348623157e+308", "float", undefined, 1.7976931348623157e308],
    ["NaN", "float", undefined, NON_FINITE],
    ["Infinity", "float", undefined, NON_FINITE],
    ["-Infinity", "float", undefined, NON_FINITE],
    ["t", "boolean", undefined, true],
    ["f", "boolean", undefined, false],
    ["x", "boolean", undefined, /cannot read "x" \(boolean\) as boolean/],
    ["10:00:00.5", "time", undefined, "10:00:00.5"],
    ["10:00:00+02", "time", undefined, "10:00:00+02"],
    ["\\x0102ff", "binary", undefined, "\\x0102ff"],
    ["hello, world", "text", undefined, "hello, world"],
    ["", "text", undefined, ""],
    ["P1Y2M", "other", undefined, "P1Y2M"],
  ]);
});

describe("native: timestamps become ISO 8601 UTC, fraction digits kept", () => {
  run([
    ["2024-01-15 10:00:00.123456+00", "timestamptz", undefined, "2024-01-15T10:00:00.123456Z"],
    ["2024-01-15 10:00:00+00", "timestamptz", undefined, "2024-01-15T10:00:00Z"],
    ["2024-01-15 10:00:00.5+00", "timestamptz", undefined, "2024-01-15T10:00:00.5Z"],
    ["2024-01-15 01:30:00.120+05:30", "timestamptz", undefined, "2024-01-14T20:00:00.120Z"],
    ["1900-01-01 00:00:00+05:53:28", "timestamptz", undefined, "1899-12-31T18:06:32Z"],
    ["2024-02-29 23:00:00-01", "timestamptz", undefined, "2024-03-01T00:00:00Z"],
    ["0001-01-01 00:00:00+00", "timestamptz", undefined, "0001-01-01T00:00:00Z"],
    ["0044-03-15 12:00:00+00", "timestamptz", undefined, "0044-03-15T12:00:00Z"],
    ["9999-12-31 23:59:59.999999+00", "timestamptz", undefined, "9999-12-31T23:59:59.999999Z"],
    ["infinity", "timestamptz", undefined, /infinite/],
    ["-infinity", "timestamptz", undefined, /infinite/],
    ["0044-03-15 10:00:00+00 BC", "timestamptz", undefined, /0001 or after 9999/],
    ["10000-01-01 00:00:00+00", "timestamptz", undefined, /0001 or after 9999/],
    ["0001-01-01 00:30:00+01", "timestamptz", undefined, /0001 or after 9999/],
    ["2024-01-15 10:00:00.123", "timestamp", undefined, "2024-01-15T10:00:00.123Z"],
    ["2024-01-15 10:00:00", "timestamp", undefined, "2024-01-15T10:00:00Z"],
    ["0044-03-15 10:00:00 BC", "timestamp", undefined, /0001 or after 9999/],
    ["2024-01-15", "date", undefined, "2024-01-15"],
    ["2024-02-30", "date", undefined, /no such date/],
    ["0044-03-15 BC", "date", undefined, /0001 or after 9999/],
    ["infinity", "date", undefined, /infinite/],
    ["2024-01-15 10:00:00", "date", undefined, /expected a date/],
  ]);
});

describe("native: JSON is parsed, arrays decoded with element kinds", () => {
  run([
    ['{"a": [1, 2.5, "x", null, true]}', "json", undefined, { a: [1, 2.5, "x", null, true] }],
    ["[1, 2]", "json", undefined, [1, 2]],
    ['"s"', "json", undefined, "s"],
    ["null", "json", undefined, null],
    ['{"big": 1e400}', "json", undefined, NON_FINITE],
    ["not json", "json", undefined, /cannot read "not json" \(json\) as JSON/],
    ["{1,2,NULL}", "array:integer", undefined, [1, 2, null]],
    ["{9007199254740993,-1}", "array:bigint", undefined, ["9007199254740993", -1]],
    ["{1.5,12345678901234567890}", "array:decimal", undefined, [1.5, "12345678901234567890"]],
    [
      '{"a,b","c \\"q\\" \\\\",NULL,"NULL","",plain}',
      "array:text",
      undefined,
      ["a,b", 'c "q" \\', null, "NULL", "", "plain"],
    ],
    [
      "{{1,2},{3,NULL}}",
      "array:integer",
      undefined,
      [
        [1, 2],
        [3, null],
      ],
    ],
    ["{{{1}},{{2}}}", "array:integer", undefined, [[[1]], [[2]]]],
    ["[0:1]={7,8}", "array:integer", undefined, [7, 8]],
    ["{}", "array:integer", undefined, []],
    ["{t,f,NULL}", "array:boolean", undefined, [true, false, null]],
    ["{1.5,-2}", "array:float", undefined, [1.5, -2]],
    ["{1.5,NaN}", "array:float", undefined, NON_FINITE],
    ['{"2024-01-15 10:00:00.5+00",NULL}', "array:timestamptz", undefined, ["2024-01-15T10:00:00.5Z", null]],
    ["{2024-01-15}", "array:date", undefined, ["2024-01-15"]],
    ['{"{\\"a\\": 1}","[2]"}', "array:json", undefined, [{ a: 1 }, [2]]],
    ["{1,2", "array:integer", undefined, /malformed array text/],
  ]);

  test("an array column without a decoder, or a decoder returning a non-JSON value, is refused", () => {
    assert.match(
      (coerceValue("{1}", { name: "c", dbType: "_int4", kind: "array" }) as { reason: string }).reason,
      /no decoder/,
    );
    const dates: SourceColumn = { name: "c", dbType: "_x", kind: "array", decode: () => [new Date(0)] };
    assert.match((coerceValue("{x}", dates) as { reason: string }).reason, /Date is not a JSON value/);
    const notList: SourceColumn = { name: "c", dbType: "_x", kind: "array", decode: () => ({ a: 1 }) };
    assert.equal(coerceValue("{x}", notList).ok, false);
  });
});

describe("declared string", () => {
  run([
    ["abc", "text", "string", "abc"],
    ["42", "integer", "string", "42"],
    ["9007199254740993", "bigint", "string", "9007199254740993"],
    ["1.50", "decimal", "string", "1.50"],
    ["t", "boolean", "string", "true"],
    ["f", "boolean", "string", "false"],
    ['{"a b": "c  d", "n": [1, 2]}', "json", "string", '{"a b":"c  d","n":[1,2]}'],
    ['{"n": 12345678901234567890, "q": "\\" x"}', "json", "string", '{"n":12345678901234567890,"q":"\\" x"}'],
    ["{1,NULL}", "array:integer", "string", "[1,null]"],
    ["2024-01-15 10:00:00.25+00", "timestamptz", "string", "2024-01-15T10:00:00.25Z"],
    ["2024-01-15 10:00:00", "timestamp", "string", "2024-01-15T10:00:00Z"],
    ["2024-01-15", "date", "string", "2024-01-15"],
    ["\\xff", "binary", "string", "\\xff"],
    ["infinity", "timestamptz", "string", /infinite/],
  ]);
});

describe("declared number", () => {
  run([
    ["42", "integer", "number", 42],
    ["-42", "bigint", "number", -42],
    ["9007199254740993", "bigint", "number", 9007199254740992],
    ["12345678901234567890", "decimal", "number", 12345678901234567000],
    ["1.5", "float", "number", 1.5],
    [" 3.25 ", "text", "number", 3.25],
    ["-1e3", "text", "number", -1000],
    ["abc", "text", "number", /^cannot read "abc" \(text\) as number: expected a number/],
    ["", "text", "number", /cannot read "" \(text\) as number/],
    ["0x10", "text", "number", /cannot read "0x10" \(text\) as number/],
    ["Infinity", "text", "number", NON_FINITE],
    ["1e400", "text", "number", NON_FINITE],
    ["NaN", "decimal", "number", NON_FINITE],
    ["-Infinity", "float", "number", NON_FINITE],
    ["t", "boolean", "number", /cannot read "t" \(boolean\) as number/],
    ["1", "json", "number", /\(json\) as number/],
  ]);
});

describe("declared boolean", () => {
  run([
    ["t", "boolean", "boolean", true],
    ["f", "boolean", "boolean", false],
    ["TRUE", "text", "boolean", true],
    ["Yes", "text", "boolean", true],
    ["no", "text", "boolean", false],
    ["F", "text", "boolean", false],
    ["0", "text", "boolean", false],
    ["1", "integer", "boolean", true],
    ["0", "bigint", "boolean", false],
    ["2", "integer", "boolean", /cannot read "2" \(integer\) as boolean/],
    ["maybe", "text", "boolean", /cannot read "maybe" \(text\) as boolean: expected true\/false/],
    ["1", "float", "boolean", /\(float\) as boolean/],
  ]);
});

describe("declared datetime and date", () => {
  run([
    ["2024-01-15 10:00:00.123456+00", "timestamptz", "datetime", "2024-01-15T10:00:00.123456Z"],
    ["2024-01-15 10:00:00", "timestamp", "datetime", "2024-01-15T10:00:00Z"],
    ["2024-01-15", "date", "datetime", "2024-01-15T00:00:00Z"],
    ["2024-01-15T10:00:00+02:00", "text", "datetime", "2024-01-15T08:00:00Z"],
    ["2024-01-15T23:30:00-01:00", "text", "datetime", "2024-01-16T00:30:00Z"],
    ["2024-01-15T10:00:00.250Z", "text", "datetime", "2024-01-15T10:00:00.250Z"],
    ["2024-01-15T10:00:00+0530", "text", "datetime", "2024-01-15T04:30:00Z"],
    ["2024-01-15 10:00", "text", "datetime", "2024-01-15T10:00:00Z"],
    ["2024-01-15", "text", "datetime", "2024-01-15T00:00:00Z"],
    ["15/01/2024", "text", "datetime", /cannot read "15\/01\/2024" \(text\) as datetime: expected ISO 8601/],
    ["2024-13-01T00:00:00Z", "text", "datetime", /no such date/],
    ["2024-01-15T24:00:00Z", "text", "datetime", /no such date/],
    ["10:00:00", "time", "datetime", /\(time\) as datetime/],
    ["1700000000", "integer", "datetime", /\(integer\) as datetime/],
    ["infinity", "timestamptz", "datetime", /infinite/],
    ["2024-01-15", "date", "date", "2024-01-15"],
    ["2024-01-15 23:30:00-02", "timestamptz", "date", "2024-01-16"],
    ["2024-01-15 23:30:00", "timestamp", "date", "2024-01-15"],
    ["2024-01-15T23:30:00-02:00", "text", "date", "2024-01-16"],
    ["2024-01-15", "text", "date", "2024-01-15"],
    ["nope", "text", "date", /cannot read "nope" \(text\) as date/],
  ]);
});

test("the fast path for PostgreSQL's own timestamp and date output gives what the general path gives", () => {
  const digits = (count: number) =>
    fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: count, maxLength: count });
  // Mostly well-formed PostgreSQL output (leap days, month ends, fractions of 0–7 digits), with every part sometimes
  // out of range or malformed, so both the fast path and its fall-back to the general path are exercised.
  const part = (valid: fc.Arbitrary<number>, width: number) =>
    fc.oneof(
      { weight: 4, arbitrary: valid.map((n) => String(n).padStart(width, "0")) },
      { weight: 1, arbitrary: digits(width) },
      { weight: 1, arbitrary: fc.constantFrom("", "x", "-1", "1", "+0", " 1") },
    );
  const stamp = fc
    .tuple(
      part(fc.constantFrom(1, 4, 99, 100, 400, 1900, 1999, 2000, 2023, 2024, 2100, 9999), 4),
      part(fc.integer({ min: 1, max: 12 }), 2),
      part(fc.integer({ min: 27, max: 31 }), 2),
      fc.constantFrom(" ", "T", ""),
      part(fc.integer({ min: 0, max: 23 }), 2),
      part(fc.integer({ min: 0, max: 59 }), 2),
      part(fc.integer({ min: 0, max: 60 }), 2),
      fc.oneof(
        fc.constant(""),
        fc.integer({ min: 0, max: 7 }).map((n) => `.${"1234567".slice(0, n)}`),
      ),
      fc.constantFrom("", "+00", "+00", "-02", "Z", "+00:00", " BC", "+00 BC"),
      fc.boolean(),
    )
    .map(([y, mo, d, sep, h, mi, s, fraction, zone, dateOnly]) =>
      dateOnly
        ? `${y}-${mo}-${d}${zone === " BC" ? zone : ""}`
        : `${y}-${mo}-${d}${sep}${h}:${mi}:${s}${fraction}${zone}`,
    );
  fc.assert(
    fc.property(
      stamp,
      fc.constantFrom<ValueKind>("timestamptz", "timestamp", "date"),
      fc.constantFrom<"datetime" | "date">("datetime", "date"),
      (text, kind, as) => {
        assert.deepEqual(coerceValue(text, column(kind), as), generalDateTime(text, column(kind), as));
      },
    ),
    { numRuns: 20000 },
  );
  // The fast path itself answers these (PostgreSQL's shapes), and they are right.
  assert.deepEqual(coerceValue("2024-02-29 23:59:59.5+00", column("timestamptz"), "datetime"), {
    ok: true,
    value: "2024-02-29T23:59:59.5Z",
  });
  assert.deepEqual(coerceValue("0001-01-01", column("date"), "datetime"), { ok: true, value: "0001-01-01T00:00:00Z" });
  assert.equal(coerceValue("2023-02-29", column("date"), "date").ok, false);
  assert.equal(coerceValue("2100-02-29 00:00:00+00", column("timestamptz"), "datetime").ok, false);
});

describe("declared list and object", () => {
  run([
    ["{1,2}", "array:integer", "list", [1, 2]],
    ['[1, "a", {"b": null}]', "json", "list", [1, "a", { b: null }]],
    ['{"a": 1}', "json", "list", /not an array/],
    ["a,b", "text", "list", /cannot read "a,b" \(text\) as list/],
    ['{"a": {"b": [1]}}', "json", "object", { a: { b: [1] } }],
    ["[1]", "json", "object", /not an object/],
    ["null", "json", "object", /not an object/],
    ['{"a": 1}', "text", "object", /\(text\) as object/],
  ]);
});

test("cells named like Object.prototype members are refused as booleans, not looked up on the prototype", () => {
  for (const text of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
    const result = coerceValue(text, column("integer"), "boolean");
    assert.equal(result.ok, false, text);
  }
});

test("a long value is shortened in the refusal reason", () => {
  const result = coerceValue("x".repeat(500), column("text"), "number");
  assert.equal(result.ok, false);
  if (!result.ok) assert.ok(result.reason.length < 200, result.reason);
});

test("no text, kind and declared type ever yields NaN, Infinity, a Date or anything JSON cannot carry", () => {
  const texts = fc.oneof(
    fc.string(),
    fc.double().map(String),
    fc.bigInt().map(String),
    fc.date({ noInvalidDate: true }).map((date) => date.toISOString().replace("T", " ").replace("Z", "+00")),
    fc.constantFrom("NaN", "Infinity", "-Infinity", "infinity", "t", "f", "{1,NULL}", '{"a": 1e999}', "1e999"),
  );
  fc.assert(
    fc.property(
      texts,
      fc.constantFrom(...KINDS),
      fc.constantFrom(undefined, ...PROPERTY_TYPES),
      (text, kind, declared) => {
        const result = coerceValue(text, column(kind, "float"), declared);
        if (!result.ok) {
          assert.equal(typeof result.reason, "string");
          return;
        }
        assert.deepEqual(JSON.parse(JSON.stringify(result.value)), result.value);
      },
    ),
    { numRuns: 5000 },
  );
});
