/**
 * Property-based tests (fast-check), bounded by run counts so the suite stays fast:
 * - the config loader, fed random mutations of a valid config and random text, either loads or throws a ConfigError
 *   whose every issue names its file and its key or line; never any other exception;
 * - the coercion and mapping layer, fed random cells of every value kind (any Unicode, lone surrogates included,
 *   deep JSON), yields a sendable value or a refusal with a reason, never a throw; JSON cells round-trip.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import YAML from "yaml";
import { decodeArray } from "../../connectors/postgres/types.js";
import { loadConfig } from "../../src/config/load.js";
import { PROPERTY_TYPES } from "../../src/config/schema.js";
import { ConfigError } from "../../src/errors.js";
import { coerceValue } from "../../src/mapping/coerce.js";
import { compileMapping } from "../../src/mapping/mapper.js";
import type { SourceColumn, ValueKind } from "../../src/source.js";

const KINDS: readonly ValueKind[] = [
  ...["integer", "bigint", "decimal", "float", "boolean", "text", "timestamptz", "timestamp", "date"],
  ...["time", "json", "array", "binary", "other"],
] as ValueKind[];

function column(kind: ValueKind, element: ValueKind = "text"): SourceColumn {
  if (kind !== "array") return { name: "c", dbType: kind, kind };
  const elementColumn: SourceColumn = { name: "c", dbType: element, kind: element };
  return { name: "c", dbType: `_${element}`, kind, decode: (text) => decodeArray(text, ",", elementColumn) };
}

const VALID = {
  version: 1,
  state_dir: "state",
  sources: { db: { type: "postgres", url: "${DB_URL}" } },
  destinations: { mp: { type: "mixpanel", project_token: "${MP_TOKEN}", batch_size: 50 } },
  syncs: { s: { source: "db", destination: "mp", mapping: "mapping.yaml", mode: "mirror" } },
};
const MAPPING = "from: t\ngroup_key: company\ngroup_id: id\nproperties:\n  name: name\n";
const ENV = { DB_URL: "postgres://u:secret-password@localhost/db", MP_TOKEN: "fuzz-token-abcdef" };

/** Every key path of a JSON-ish object. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== "object") return [prefix];
  return [prefix, ...Object.entries(value).flatMap(([key, child]) => paths(child, [...prefix, key]))];
}

function mutate(config: unknown, path: string[], replacement: unknown, mode: "set" | "delete" | "add"): unknown {
  const copy = structuredClone(config) as Record<string, unknown>;
  if (path.length === 0) return mode === "set" ? replacement : copy;
  let node = copy;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== "object") return copy; // an earlier mutation replaced this branch
    node = node[key] as Record<string, unknown>;
  }
  if (node === null || typeof node !== "object") return copy;
  const last = path.at(-1) as string;
  if (mode === "delete") delete node[last];
  else if (mode === "add" && node[last] !== null && typeof node[last] === "object")
    // JSON, not String(): a generated object such as { toString: false } cannot be turned into a string.
    (node[last] as Record<string, unknown>)[`x_${JSON.stringify(replacement).slice(0, 8)}`] = replacement;
  else node[last] = replacement;
  return copy;
}

async function expectLoadsOrConfigError(dir: string, text: string): Promise<void> {
  const file = join(dir, "sync.config.yaml");
  writeFileSync(file, text);
  try {
    await loadConfig(file, { env: ENV });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `not a ConfigError: ${(error as Error)?.stack ?? String(error)}`);
    assert.ok(error.issues.length > 0, "a ConfigError lists its issues");
    for (const issue of error.issues) {
      assert.ok(issue.file, `an issue names its file: ${JSON.stringify(issue)}`);
      // A key path, a line, or (path "") the document as a whole, e.g. an unresolved alias.
      assert.ok(typeof issue.path === "string", `an issue names its key: ${JSON.stringify(issue)}`);
      assert.ok(issue.line === undefined || issue.line >= 1);
      assert.ok(issue.message.length > 0);
      assert.ok(!issue.message.includes("secret-password") && !issue.message.includes("fuzz-token-abcdef"));
    }
  }
}

test("config loader: a random mutation of a valid config loads or is a ConfigError naming file and key", async () => {
  const dir = mkdtempSync(join(tmpdir(), "groupsync-fuzz-"));
  writeFileSync(join(dir, "mapping.yaml"), MAPPING);
  const candidates = paths(VALID);
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          path: fc.constantFrom(...candidates),
          replacement: fc.oneof(
            fc.jsonValue({ maxDepth: 2 }),
            fc.constantFrom("${MISSING}", "", "\u0000", -1, Number.MAX_VALUE),
          ),
          mode: fc.constantFrom("set" as const, "delete" as const, "add" as const),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      async (mutations) => {
        let config: unknown = VALID;
        for (const { path, replacement, mode } of mutations) config = mutate(config, path, replacement, mode);
        await expectLoadsOrConfigError(dir, YAML.stringify(config));
      },
    ),
    { numRuns: 200 },
  );
});

test("config loader: random text loads or is a ConfigError naming file and line", async () => {
  const dir = mkdtempSync(join(tmpdir(), "groupsync-fuzz-"));
  writeFileSync(join(dir, "mapping.yaml"), MAPPING);
  const valid = YAML.stringify(VALID);
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.string({ unit: "binary", maxLength: 200 }),
        // A valid config with a random slice replaced: broken indentation, quotes, anchors, tabs…
        fc
          .tuple(fc.nat(valid.length), fc.nat(40), fc.string({ maxLength: 20 }))
          .map(([at, cut, insert]) => valid.slice(0, at) + insert + valid.slice(at + cut)),
        fc.constantFrom("", "---\n---\n", "*a", "&a [*a]", "version: !!binary x", "{", "syncs: []", "? [a]\n: b"),
      ),
      (text) => expectLoadsOrConfigError(dir, text),
    ),
    { numRuns: 300 },
  );
});

/** Cell texts: any Unicode (lone surrogates too), numbers, dates, array and JSON texts, deep JSON. */
const cells = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)) }),
  fc.double().map(String),
  fc.bigInt().map(String),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc.array(fc.oneof(fc.string(), fc.constant("NULL"), fc.integer().map(String))).map((items) => `{${items.join(",")}}`),
  fc.nat(300).map((depth) => `${"[".repeat(depth)}1${"]".repeat(depth)}`),
  fc.constantFrom("NaN", "-Infinity", "1e999", '"\\ud800"', '{"a":"\\udfff"}', "{{1,2},{3}}", "\\x00ff", "t"),
);

test("coercion: any cell of any kind, as any declared type, is a sendable value or a refusal with a reason", () => {
  fc.assert(
    fc.property(
      cells,
      fc.constantFrom(...KINDS),
      fc.constantFrom(...KINDS.filter((kind) => kind !== "array")),
      fc.constantFrom(undefined, ...PROPERTY_TYPES),
      (text, kind, element, declared) => {
        const result = coerceValue(text, column(kind, element), declared);
        if (!result.ok) {
          assert.ok(typeof result.reason === "string" && result.reason.length > 0);
          return;
        }
        const json = JSON.stringify(result.value);
        assert.doesNotMatch(json, /(?<!\\)\\ud[89a-f]/i, "no lone surrogate is ever sent");
        assert.deepEqual(JSON.parse(json), result.value);
      },
    ),
    { numRuns: 4000 },
  );
});

test("coercion: a JSON cell round-trips to the same value", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
      const result = coerceValue(JSON.stringify(value), column("json"));
      assert.ok(result.ok, result.ok ? "" : result.reason);
      assert.deepEqual(result.value, JSON.parse(JSON.stringify(value)));
    }),
    { numRuns: 1000 },
  );
});

test("mapper: any row maps to a group with cells, or a rejection with a reason; values never throw", () => {
  const columns: SourceColumn[] = [
    { name: "id", dbType: "text", kind: "text" },
    { name: "company", dbType: "text", kind: "text" },
    { name: "n", dbType: "int8", kind: "bigint" },
    { name: "doc", dbType: "json", kind: "json" },
  ];
  for (const hierarchical of [false, true]) {
    const mapping = compileMapping(
      {
        from: "t",
        group_key: "company",
        group_id: "id",
        company_id: "company",
        properties: { n: "n", doc: "doc", as_number: { column: "doc", type: "number" } },
      } as never,
      columns,
      { hierarchical, file: "mapping.yaml" },
    );
    fc.assert(
      fc.property(fc.array(fc.option(cells, { nil: null }), { minLength: 4, maxLength: 4 }), (row) => {
        const mapped = mapping.map(row);
        if (!mapped.ok) {
          assert.ok(mapped.reason.length > 0);
          return;
        }
        assert.ok(mapped.key.groupId.trim() !== "");
        mapped.cells.forEach((cell, index) => {
          if (cell === null) return;
          const value = mapping.value(index, cell);
          assert.ok(value.ok || value.reason.startsWith("property "), JSON.stringify(value));
        });
      }),
      { numRuns: 1500 },
    );
  }
});
