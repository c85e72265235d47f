/**
 * The Snowflake source's optional capabilities through the real snowflake-sdk, against the local REST stand-in:
 * hash push-down (row hashes computed in SQL equal rowHash() over what read() returns, for every type, NULLs and
 * non-ASCII text; lookup of full rows by key through one JSON bind), incremental keyset pages with now() and the
 * watermark, count and key checks; and the engine using them: incremental runs, `validate --check-source`, and a
 * backfill's progress total.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SnowflakeStandIn } from "../../connectors/snowflake/stand-in.js";
import type { StandInTable, StandInValue } from "../../connectors/snowflake/stand-in-data.js";
import { validateConfig } from "../../src/cli/validate-command.js";
import { loadConnectors } from "../../src/connectors.js";
import { rowHash } from "../../src/diff/hash.js";
import type { RunProgressReport } from "../../src/engine/run-sync.js";
import type { RawRow, ReadSpec } from "../../src/source.js";
import { compareCodePoints } from "../../src/state/key-order.js";
import {
  makeKeys,
  readAll,
  type SnowflakeE2E,
  snowflakeSource,
  startSnowflakeE2E,
  startStandIn,
} from "../helpers/snowflake.js";

const connectors = await loadConnectors();

const ALL_COLUMNS: StandInTable["columns"] = [
  { name: "ID", type: "text" },
  { name: "NAME", type: "text", collation: "en-ci" },
  { name: "N_INT", type: "fixed", precision: 38, scale: 0 },
  { name: "N_DEC", type: "fixed", precision: 12, scale: 2 },
  { name: "N_FLOAT", type: "real" },
  { name: "FLAG", type: "boolean" },
  { name: "D", type: "date" },
  { name: "T", type: "time", scale: 9 },
  { name: "TS_NTZ", type: "timestamp_ntz", scale: 9 },
  { name: "TS_LTZ", type: "timestamp_ltz", scale: 9 },
  { name: "TS_TZ", type: "timestamp_tz", scale: 9 },
  { name: "V", type: "variant" },
  { name: "O", type: "object" },
  { name: "A", type: "array" },
  { name: "S_OBJ", type: "object", fields: [{ name: "k", type: "text" }] },
  { name: "BIN", type: "binary" },
];

function allRows(): StandInValue[][] {
  return [
    [
      "acme",
      "Zürich 東京 🚀",
      "12345678901234567890123",
      "120000.50",
      1.5,
      true,
      "2024-02-29",
      "10:00:00.25",
      "2024-01-15 10:00:00.123456789",
      "2024-01-15T10:00:00Z",
      "2024-01-15 12:00:00.5 +02:00",
      '{\n  "a": 1,\n  "s": "ü ok"\n}',
      { k: "v" },
      [1, "two", null],
      { k: "structured" },
      "deadbeef",
    ],
    [
      "blank",
      "",
      "42",
      "0.00",
      -0.25,
      false,
      "1999-12-31",
      "00:00:00",
      "2000-01-01 00:00:00",
      "2000-01-01 00:00:10",
      "2000-01-01 00:00:00 -05:30",
      '"just text"',
      null,
      [],
      null,
      "",
    ],
    ["nulls", ...Array.from({ length: ALL_COLUMNS.length - 1 }, () => null)],
    // `N` and `1:a` as text: the length prefix keeps them apart from NULL and from neighbouring cells.
    [
      "Ärger",
      "N",
      "-7",
      "-0.50",
      1e21,
      true,
      "2024-01-01",
      "23:59:59.999999999",
      null,
      null,
      null,
      "null",
      {},
      null,
      null,
      "00",
    ],
    ["Zed", "1:a", "0", "1.00", 0, false, null, null, null, null, null, "[]", null, null, null, null],
  ];
}

/** Every column but the key, one of them twice: what a mapping's properties hash covers. */
const HASH_COLUMNS = ALL_COLUMNS.slice(1)
  .map((column) => column.name)
  .concat("NAME");
const SPEC: ReadSpec = { from: "all_types", columns: ALL_COLUMNS.map((column) => column.name), orderBy: ["ID"] };

const hex = (hash: string) => Buffer.from(hash, "latin1").toString("hex");

let standIn: SnowflakeStandIn;

before(async () => {
  standIn = await startStandIn(makeKeys(), { inlineRows: 2, chunkRows: 2 });
  standIn.data.tables.set("DB.PUBLIC.ALL_TYPES", { columns: ALL_COLUMNS, rows: allRows() });
});

after(() => standIn.close());

async function keysOf(spec: ReadSpec & { hashColumns: readonly string[] }, batchSize = 2): Promise<RawRow[]> {
  const source = snowflakeSource(standIn);
  try {
    const rows: RawRow[] = [];
    for await (const batch of source.hashes!.keys(spec, { batchSize })) rows.push(...batch);
    return rows;
  } finally {
    await source.close();
  }
}

describe("hash push-down", () => {
  test("keys(): the row hash computed in SQL equals rowHash() over the cells read() returns, for every type", async () => {
    const source = snowflakeSource(standIn);
    const { rows } = await readAll(source, SPEC);
    await source.close();
    const keys = await keysOf({ ...SPEC, hashColumns: HASH_COLUMNS });
    assert.equal(keys.length, 5);
    assert.deepEqual(
      keys.map((row) => row[0]),
      rows.map((row) => row[0]),
      "the same keys in the same (code-point) order as read()",
    );
    assert.deepEqual(
      keys.map((row) => row[0]),
      ["Zed", "acme", "blank", "nulls", "Ärger"],
    );
    const columns = SPEC.columns;
    for (const [i, row] of rows.entries()) {
      const cells = HASH_COLUMNS.map((name) => row[columns.indexOf(name)] ?? null);
      assert.match(keys[i]?.[1] ?? "", /^[0-9a-f]{16}$/);
      assert.equal(keys[i]?.[1], hex(rowHash(cells)), `row ${row[0]}: ${JSON.stringify(cells)}`);
    }
    const query = standIn.queries.findLast((record) => record.sql.includes("MD5("));
    assert.match(
      query?.sql ?? "",
      /LEFT\(MD5\(IFF\("NAME" IS NULL, 'N', OCTET_LENGTH\("NAME"\) \|\| ':' \|\| "NAME"\)/,
    );
  });

  test("a changed cell changes only its row's hash; where and after narrow the keys like read()", async () => {
    const before = await keysOf({ ...SPEC, hashColumns: HASH_COLUMNS });
    const table = standIn.data.tables.get("DB.PUBLIC.ALL_TYPES") as StandInTable;
    (table.rows[1] as StandInValue[])[10] = "2000-01-01 00:00:00.000000001 -05:30";
    try {
      const changed = await keysOf({ ...SPEC, hashColumns: HASH_COLUMNS });
      assert.deepEqual(
        changed.map((row, i) => row[1] === before[i]?.[1]),
        [true, true, false, true, true],
      );
    } finally {
      table.rows = allRows();
    }
    const after = await keysOf({ ...SPEC, hashColumns: ["NAME"], after: ["acme"] });
    assert.deepEqual(
      after.map((row) => row[0]),
      ["blank", "nulls", "Ärger"],
    );
    assert.equal(after[0]?.[1], hex(rowHash([""])));
    assert.equal(after[1]?.[1], hex(rowHash([null])));
  });

  test("lookup(): exactly the rows asked for, rendered like read(), in read() order; a missing key is absent", async () => {
    const source = snowflakeSource(standIn);
    try {
      const { rows } = await readAll(source, SPEC);
      const found = await source.hashes!.lookup(SPEC, [["nulls"], ["Ärger"], ["acme"], ["gone"]], {});
      assert.deepEqual(
        found,
        rows.filter((row) => ["acme", "nulls", "Ärger"].includes(row[0] as string)),
      );
      const query = standIn.queries.at(-1);
      assert.match(
        query?.sql ?? "",
        /IN \(SELECT f\.value\[0\]::VARCHAR FROM TABLE\(FLATTEN\(INPUT => PARSE_JSON\(\?\)\)\) AS f\)/,
      );
      assert.deepEqual(await source.hashes!.lookup(SPEC, [], {}), []);
      // Keys compare as text, byte for byte: a case-insensitive column collation does not widen the match.
      const byName = await source.hashes!.lookup({ ...SPEC, orderBy: ["NAME"] }, [["n"]], {});
      assert.deepEqual(byName, []);
    } finally {
      await source.close();
    }
  });
});

test("a lookup too large for one statement is split under 1 MB of keys a statement, and merged back in key order", async () => {
  const id = (i: number) => `k${String(i).padStart(4, "0")}-${"x".repeat(1000)}`;
  standIn.data.tables.set("DB.PUBLIC.LONG_KEYS", {
    columns: [
      { name: "ID", type: "text" },
      { name: "N", type: "fixed", precision: 38, scale: 0 },
    ],
    rows: Array.from({ length: 1500 }, (_, i) => [id(1499 - i), String(i)]),
  });
  const source = snowflakeSource(standIn);
  try {
    const spec = { from: "long_keys", columns: ["ID", "N"], orderBy: ["ID"] };
    const wanted = Array.from({ length: 1200 }, (_, i) => [id(1199 - i)]).concat([["missing"]]);
    const before = standIn.queries.length;
    const rows = await source.hashes!.lookup(spec, wanted, {});
    const statements = standIn.queries.slice(before).filter((record) => record.sql.includes("FLATTEN"));
    assert.equal(statements.length, 2, "1.2 MB of keys: two statements");
    assert.deepEqual(
      rows.map((row) => row[0]),
      Array.from({ length: 1200 }, (_, i) => id(i)),
    );
  } finally {
    await source.close();
  }
});

describe("count and key checks", () => {
  before(() => {
    standIn.data.tables.set("DB.PUBLIC.KEYS", {
      columns: [
        { name: "ID", type: "text" },
        { name: "NAME", type: "text" },
      ],
      rows: [
        ["a", "A"],
        ["b", "B"],
        ["b", "B2"],
        ["c", "C"],
        ["c", "C2"],
        ["c", "C3"],
        [null, "X"],
        ["  ", "Y"],
      ],
    });
    standIn.data.conditions.set("name like 'B%'", (row) => String(row.NAME).startsWith("B"));
  });

  test("count() counts what read() would return, `where` included; checkKeys() finds NULL, blank and duplicate keys", async () => {
    const source = snowflakeSource(standIn);
    try {
      const spec = { from: "keys", columns: ["ID", "NAME"], orderBy: ["ID"] };
      assert.equal(await source.count!(spec), 8);
      assert.equal(await source.count!({ ...spec, where: "name like 'B%'" }), 2);
      assert.deepEqual(await source.checkKeys!(spec), { rows: 8, nullKeys: 2, duplicateKeys: 2, duplicateRows: 5 });
      assert.deepEqual(await source.checkKeys!({ from: "all_types", columns: ["ID"], orderBy: ["ID"] }), {
        rows: 5,
        nullKeys: 0,
        duplicateKeys: 0,
        duplicateRows: 0,
      });
    } finally {
      await source.close();
    }
  });
});

describe("incremental reads", () => {
  const start = Date.UTC(2024, 0, 1);
  const stamp = (seconds: number) =>
    new Date(start + seconds * 1000).toISOString().replace("T", " ").replace("Z", " +00:00");

  before(() => {
    // 12 rows share one instant; the rest follow a quarter second apart; one lies in the future.
    const rows: StandInValue[][] = [];
    for (let i = 0; i < 30; i++)
      rows.push([`e${String(29 - i).padStart(2, "0")}`, `v${i}`, stamp(Math.max(0, i - 11) / 4)]);
    rows.push(["future", "later", "2999-01-01 00:00:00 +00:00"]);
    rows.push(["never", "no stamp", null]);
    standIn.data.tables.set("DB.PUBLIC.EVENTS", {
      columns: [
        { name: "ID", type: "text" },
        { name: "NAME", type: "text" },
        { name: "UPDATED", type: "timestamp_tz", scale: 9 },
      ],
      rows,
    });
  });

  test("pages walk (cursor, key) with LIMIT through equal timestamps; since, until and the watermark agree with read()", async () => {
    const source = snowflakeSource(standIn);
    try {
      const spec = { from: "events", columns: ["ID", "NAME", "UPDATED"], orderBy: ["ID"], cursor: "UPDATED" };
      const now = await source.changes!.now();
      assert.match(now, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{9} \+00:00$/);
      assert.ok(Math.abs(Date.parse(now.replace(" ", "T").replace(" +00:00", "Z")) - Date.now()) < 60_000);
      const { rows: all } = await readAll(source, { from: "events", columns: spec.columns, orderBy: ["ID"] });
      const expected = all
        .filter((row) => row[2] !== null && row[0] !== "future")
        .sort((a, b) => {
          const at = (row: RawRow) => Date.parse(String(row[2]).replace(" ", "T").replace(" +00:00", "Z"));
          return at(a) - at(b) || compareCodePoints(a[0] as string, b[0] as string);
        });
      const pages: RawRow[][] = [];
      let position: { cursor: string; key: string[] } | undefined;
      for (;;) {
        const page = await source.changes!.page(
          { ...spec, until: now, limit: 7, ...(position ? { position } : {}) },
          {},
        );
        pages.push([...page]);
        const last = page.at(-1);
        if (!last || page.length < 7) break;
        position = { cursor: last[2] as string, key: [last[0] as string] };
      }
      assert.deepEqual(pages.flat(), expected, "every row once, in (cursor, key) order; the future row waits");
      assert.equal(pages[0]?.length, 7);
      assert.match(standIn.queries.at(-1)?.sql ?? "", / LIMIT 7$/);
      const watermark = await source.changes!.watermark({ ...spec, until: now });
      assert.equal(watermark, expected.at(-1)?.[2], "the watermark is rendered as read() renders the column");
      assert.equal(watermark, "2024-01-01 00:00:04.5 +00:00");
      const since = await source.changes!.page(
        { ...spec, since: "2024-01-01 00:00:04.25 +00:00", until: now, limit: 100 },
        {},
      );
      assert.deepEqual(
        since.map((row) => row[0]),
        ["e01", "e00"],
        ">= since: the row at the watermark itself is read again",
      );
    } finally {
      await source.close();
    }
  });
});

describe("the engine with a Snowflake source", () => {
  let e2e: SnowflakeE2E;
  let table: StandInTable;
  before(async () => {
    table = {
      columns: [
        { name: "ID", type: "text" },
        { name: "NAME", type: "text" },
        { name: "UPDATED_AT", type: "timestamp_ltz", scale: 9 },
      ],
      rows: [
        ["acme", "Acme", "2024-01-01 10:00:00 +00:00"],
        ["globex", "Globex", "2024-01-01 10:00:00 +00:00"],
        ["initech", "Initech", "2024-01-02 10:00:00.5 +00:00"],
        ["umbrella", "Umbrella", "2024-01-03 10:00:00 +00:00"],
      ],
    };
    standIn.data.tables.set("DB.PUBLIC.INC", table);
    e2e = await startSnowflakeE2E(standIn, {
      mapping: "from: inc\ngroup_key: company\ngroup_id: id\ncursor: updated_at\nproperties:\n  name: name\n",
    });
  });
  after(() => e2e.dispose());

  test("incremental runs: a full first pass, then only rows changed since the watermark", async () => {
    const first = await e2e.run();
    assert.equal(first.read, "full");
    assert.equal(Object.keys(e2e.profiles()).length, 4);
    (table.rows[1] as StandInValue[])[1] = "Globex Corp";
    (table.rows[1] as StandInValue[])[2] = "2024-01-04 09:00:00 +00:00";
    const queriesBefore = standIn.queries.length;
    const second = await e2e.run();
    assert.equal(second.read, "incremental");
    assert.equal(second.rows_read, 2, "the changed row, and the row at the old watermark (>=)");
    assert.equal(e2e.profiles().globex?.name, "Globex Corp");
    const pages = standIn.queries.slice(queriesBefore).filter((record) => / LIMIT \d+$/.test(record.sql));
    assert.ok(pages.length >= 1, "read in keyset pages");
    const reads = standIn.queries.slice(queriesBefore).filter((record) => record.sql.startsWith('SELECT "ID", "NAME"'));
    assert.deepEqual(
      reads.filter((record) => !/ LIMIT \d+$/.test(record.sql)),
      [],
      "no full read: only keyset pages",
    );
  });

  test("a backfill with a progress bar counts the rows first: the total is known", async () => {
    const reports: RunProgressReport[] = [];
    const summary = await e2e.run({
      backfill: {},
      countRows: true,
      onProgress: (report) => reports.push(report),
      progressIntervalMs: 0,
    });
    assert.equal(summary.rows_read, 4);
    assert.ok(standIn.queries.some((record) => record.sql.startsWith('SELECT COUNT(*) AS "ROWS" FROM "INC"')));
    assert.ok(reports.length > 0 && reports.every((report) => report.total === 4), JSON.stringify(reports));
  });

  test("validate --check-source counts NULL and duplicated Group IDs in Snowflake", async () => {
    table.rows.push(["acme", "Acme again", "2024-01-05 00:00:00 +00:00"], [null, "nobody", null]);
    try {
      const report = await validateConfig({
        config: e2e.configFile,
        checkSource: true,
        strictEnv: false,
        connectors: async () => connectors,
        env: e2e.env,
      });
      const source = report.sources?.find((entry) => entry.sync === "companies");
      assert.deepEqual(source?.keys, { rows: 6, nullKeys: 1, duplicateKeys: 1, duplicateRows: 2 });
      assert.equal(source?.issues.length, 2, JSON.stringify(source?.issues));
    } finally {
      table.rows.splice(4);
    }
  });
});
