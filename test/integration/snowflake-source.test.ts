/**
 * The Snowflake source through the real snowflake-sdk, against the local REST stand-in (connectors/snowflake/
 * stand-in.ts) reached with the driver's own `accessUrl`: logins of every kind, session settings, every type, NULLs,
 * upper-case columns, code-point order, multi-chunk results, token renewal, and failures before and mid-stream.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import type { SnowflakeStandIn } from "../../connectors/snowflake/stand-in.js";
import type { StandInValue } from "../../connectors/snowflake/stand-in-data.js";
import { mappingSchema } from "../../src/config/schema.js";
import { type ConfigError, SourceError } from "../../src/errors.js";
import { coerceValue } from "../../src/mapping/coerce.js";
import { compileMapping } from "../../src/mapping/mapper.js";
import { compareCodePoints } from "../../src/state/key-order.js";
import {
  type KeyFiles,
  makeKeys,
  OAUTH_TOKEN,
  PASSPHRASE,
  PASSWORD,
  readAll,
  snowflakeSource,
  startStandIn,
} from "../helpers/snowflake.js";

const TYPES_COLUMNS = [
  { name: "ID", type: "text" },
  { name: "MixedCase", type: "text" },
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
] as const;

const TYPES_ROWS: StandInValue[][] = [
  [
    "acme",
    "NULL",
    "12345678901234567890123",
    "120000.50",
    1.5,
    true,
    "2024-02-29",
    "10:00:00.25",
    "2024-01-15 10:00:00.123456789",
    "2024-01-15T10:00:00Z",
    "2024-01-15 12:00:00.5 +02:00",
    '{\n  "a": 1,\n  "big": 12345678901234567890\n}',
    { k: "v" },
    [1, "two", null],
    { k: "structured" },
    "deadbeef",
  ],
  [
    "blank",
    null,
    "42",
    "0.00",
    -0.25,
    false,
    "1999-12-31",
    "00:00:00",
    "2000-01-01 00:00:00",
    null,
    null,
    '"just text"',
    null,
    [],
    null,
    "",
  ],
  ["nulls", ...Array.from({ length: TYPES_COLUMNS.length - 1 }, () => null)],
];

/** What the mapping layer must make of each column of TYPES_ROWS[0], without a declared type. */
const EXPECTED_FIRST: Record<string, unknown> = {
  ID: "acme",
  MixedCase: "NULL",
  N_INT: "12345678901234567890123",
  N_DEC: 120000.5,
  N_FLOAT: 1.5,
  FLAG: true,
  D: "2024-02-29",
  T: "10:00:00.25",
  TS_NTZ: "2024-01-15T10:00:00.123456789Z",
  TS_LTZ: "2024-01-15T10:00:00Z",
  TS_TZ: "2024-01-15T10:00:00.5Z",
  V: { a: 1, big: "(rounded)" },
  O: { k: "v" },
  A: [1, "two", null],
  S_OBJ: { k: "structured" },
  BIN: "DEADBEEF",
};

let keys: KeyFiles;
let standIn: SnowflakeStandIn;

/** Rows of a generated table: ID `g000001`… in shuffled order, a name and a number. */
function generated(count: number): StandInValue[][] {
  const rows: StandInValue[][] = [];
  for (let i = 0; i < count; i++) {
    const n = (i * 7919) % count;
    rows.push([`g${String(n).padStart(6, "0")}`, `name ${n}`, String(n)]);
  }
  return rows;
}

const GENERATED_COLUMNS = [
  { name: "ID", type: "text" as const },
  { name: "NAME", type: "text" as const },
  { name: "N", type: "fixed" as const, scale: 0 },
];

before(async () => {
  keys = makeKeys();
  standIn = await startStandIn(keys, { inlineRows: 1000, chunkRows: 10_000 });
  standIn.data.tables.set("DB.PUBLIC.TYPES", { columns: [...TYPES_COLUMNS], rows: TYPES_ROWS });
  standIn.data.tables.set("DB.PUBLIC.BIG", { columns: GENERATED_COLUMNS, rows: generated(120_000) });
  standIn.data.tables.set("DB.PUBLIC.MID", { columns: GENERATED_COLUMNS, rows: generated(25_000) });
});

after(() => standIn.close());

describe("login and session", () => {
  test("a password login passes warehouse, database, schema, role and query tag; the session renders in UTC; close logs out", async () => {
    const source = snowflakeSource(standIn);
    const closedBefore = standIn.sessionsClosed;
    const queriesBefore = standIn.queries.length;
    await source.check();
    await source.close();
    await source.close();
    const login = standIn.logins.at(-1);
    assert.deepEqual(login, {
      user: "GROUPSYNC",
      authenticator: "SNOWFLAKE",
      ok: true,
      warehouse: "wh",
      database: "db",
      schema: "public",
      role: "reader",
      queryTag: "groupsync:companies",
      application: "groupsync",
    });
    const [settings, context] = standIn.queries.slice(queriesBefore);
    assert.match(settings?.sql ?? "", /^ALTER SESSION SET TIMEZONE = 'UTC'/);
    assert.equal(context?.params.get("TIMEZONE"), "UTC", "the settings hold for the next statements");
    assert.equal(context?.params.get("TIMESTAMP_LTZ_OUTPUT_FORMAT"), "YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM");
    assert.equal(context?.queryTag, "groupsync:companies");
    assert.equal(standIn.sessionsClosed, closedBefore + 1, "one logout, however often close() is called");
    assert.ok(!existsSync("snowflake.log"), "the driver writes no log file");
  });

  test("query_tag overrides the default tag", async () => {
    const source = snowflakeSource(standIn, { query_tag: "team:growth" });
    await source.check();
    await source.close();
    assert.equal(standIn.logins.at(-1)?.queryTag, "team:growth");
    assert.equal(standIn.queries.at(-1)?.queryTag, "team:growth");
  });

  test("key pair: an encrypted key file with its passphrase, or a PEM with \\n escapes from the environment", async () => {
    for (const extra of [
      { password: undefined, private_key_file: keys.encryptedFile, private_key_passphrase: PASSPHRASE },
      { password: undefined, private_key: keys.pem.trim().replaceAll("\n", "\\n") },
    ]) {
      const source = snowflakeSource(standIn, extra);
      await source.check();
      await source.close();
      assert.equal(standIn.logins.at(-1)?.authenticator, "SNOWFLAKE_JWT");
      assert.equal(standIn.logins.at(-1)?.ok, true, "the stand-in verified the JWT with the user's public key");
    }
  });

  test("a wrong passphrase or key file is reported with the setting to fix, never the key or passphrase", async () => {
    const wrong = snowflakeSource(standIn, {
      password: undefined,
      private_key_file: keys.encryptedFile,
      private_key_passphrase: "not-the-passphrase",
    });
    const error = await wrong.check().then(
      () => assert.fail("expected a failure"),
      (failure: unknown) => failure as SourceError,
    );
    assert.equal(error.code, "SOURCE_AUTH");
    assert.match(error.action ?? "", /private_key_passphrase/);
    const shown = `${error.message} ${error.action} ${inspect(error, { depth: 6 })}`;
    assert.ok(!shown.includes("not-the-passphrase") && !shown.includes(PASSPHRASE), shown);
    assert.ok(!shown.includes(keys.pem.split("\n")[1] as string), "no line of the key");
    await wrong.close();

    const missing = snowflakeSource(standIn, { password: undefined, private_key_file: "/nonexistent/rsa_key.p8" });
    await assert.rejects(missing.check(), (failure: SourceError) => failure.code === "SOURCE_KEY_FILE");
    await missing.close();

    const otherKey = snowflakeSource(standIn, { password: undefined, private_key: makeKeys().pem });
    await assert.rejects(otherKey.check(), (failure: SourceError) => {
      assert.equal(failure.code, "SOURCE_AUTH");
      assert.match(failure.action ?? "", /RSA_PUBLIC_KEY/);
      return true;
    });
    await otherKey.close();
  });

  test("OAuth: the token logs in; a wrong one is refused with the setting to check", async () => {
    const source = snowflakeSource(standIn, { password: undefined, oauth_token: OAUTH_TOKEN });
    await source.check();
    await source.close();
    assert.equal(standIn.logins.at(-1)?.authenticator, "OAUTH");
    const wrong = snowflakeSource(standIn, { password: undefined, oauth_token: "expired-token-0000" });
    await assert.rejects(wrong.check(), (error: SourceError) => {
      assert.equal(error.code, "SOURCE_AUTH");
      assert.match(error.action ?? "", /oauth_token/);
      assert.ok(!`${error.message}${inspect(error, { depth: 6 })}`.includes("expired-token-0000"));
      return true;
    });
    await wrong.close();
  });

  test("bad credentials: SOURCE_AUTH naming username and password, without the password", async () => {
    const source = snowflakeSource(standIn, { password: "wrong-password-0042" });
    await assert.rejects(source.check(), (error: SourceError) => {
      assert.ok(error instanceof SourceError);
      assert.equal(error.code, "SOURCE_AUTH");
      assert.match(error.message, /testorg-testacct/);
      assert.match(error.action ?? "", /username and password/);
      const shown = `${error.message} ${error.action} ${inspect(error, { depth: 6 })}`;
      assert.ok(!shown.includes("wrong-password-0042") && !shown.includes(PASSWORD), shown);
      return true;
    });
    await source.close();
  });

  test("a role not granted, a missing warehouse or database: each names its setting", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ role: "admin" }, "SOURCE_ROLE", /`role`/],
      [{ warehouse: "no_such_wh" }, "SOURCE_WAREHOUSE", /`warehouse`.*GRANT USAGE ON WAREHOUSE no_such_wh/],
      [{ database: "nodb" }, "SOURCE_DATABASE", /`database`/],
      [{ schema: "nope" }, "SOURCE_SCHEMA", /`schema`/],
    ];
    for (const [extra, code, action] of cases) {
      const source = snowflakeSource(standIn, extra);
      await assert.rejects(source.check(), (error: SourceError) => {
        assert.equal(error.code, code, JSON.stringify(extra));
        assert.match(error.action ?? "", action);
        return true;
      });
      await source.close();
    }
  });

  test("an expired session token is renewed with the master token, and the work goes on", async () => {
    const source = snowflakeSource(standIn);
    await source.check();
    const renewals = standIn.renewals;
    standIn.expireSessionTokens();
    const columns = await source.describe({ from: "types" });
    assert.equal(columns.length, TYPES_COLUMNS.length);
    assert.equal(standIn.renewals, renewals + 1);
    const { rows } = await readAll(source, { from: "types", columns: ["ID"], orderBy: ["ID"] });
    assert.equal(rows.length, 3);
    await source.close();
  });
});

describe("types, NULLs and names", () => {
  test("describe maps every Snowflake type without running the query (describeOnly)", async () => {
    const source = snowflakeSource(standIn);
    const columns = await source.describe({ from: "public.types" });
    await source.close();
    assert.deepEqual(
      columns.map((column) => [column.name, column.dbType, column.kind]),
      [
        ["ID", "VARCHAR", "text"],
        ["MixedCase", "VARCHAR", "text"],
        ["N_INT", "NUMBER(38,0)", "bigint"],
        ["N_DEC", "NUMBER(12,2)", "decimal"],
        ["N_FLOAT", "FLOAT", "float"],
        ["FLAG", "BOOLEAN", "boolean"],
        ["D", "DATE", "date"],
        ["T", "TIME", "time"],
        ["TS_NTZ", "TIMESTAMP_NTZ", "timestamp"],
        ["TS_LTZ", "TIMESTAMP_LTZ", "timestamptz"],
        ["TS_TZ", "TIMESTAMP_TZ", "timestamptz"],
        ["V", "VARIANT", "json"],
        ["O", "OBJECT", "json"],
        ["A", "ARRAY", "json"],
        ["S_OBJ", "OBJECT", "json"],
        ["BIN", "BINARY", "binary"],
      ],
    );
    const describe = standIn.queries.find((query) => query.sql === 'SELECT * FROM "PUBLIC"."TYPES" LIMIT 0');
    assert.equal(describe?.describeOnly, true);
  });

  test("every type arrives as stable text that the mapping layer turns into the right value; NULL stays null", async () => {
    const source = snowflakeSource(standIn);
    const columns = await source.describe({ from: "types" });
    const spec = { from: "types", columns: columns.map((column) => column.name), orderBy: ["ID"] };
    const first = await readAll(source, spec);
    const second = await readAll(source, spec);
    await source.close();
    assert.deepEqual(second.rows, first.rows, "the same bytes every run: the hashes depend on it");
    const byId = new Map(first.rows.map((row) => [row[0], row]));
    const acme = byId.get("acme") as (string | null)[];
    const values: Record<string, unknown> = {};
    columns.forEach((column, i) => {
      const result = coerceValue(acme[i] as string, column);
      assert.ok(result.ok, `${column.name}: ${JSON.stringify(result)}`);
      values[column.name] = result.value;
    });
    assert.equal(
      (values.V as { big: unknown }).big,
      Number("12345678901234567890"),
      "JSON numbers are parsed (as doubles)",
    );
    assert.deepEqual({ ...values, V: { ...(values.V as object), big: "(rounded)" } }, EXPECTED_FIRST);
    assert.equal(acme[columns.findIndex((column) => column.name === "TS_TZ")], "2024-01-15 12:00:00.5 +02:00");
    assert.equal(
      acme[columns.findIndex((column) => column.name === "V")],
      '{"a":1,"big":12345678901234567890}',
      "VARIANT as compact JSON (TO_JSON), every digit kept",
    );
    assert.deepEqual(byId.get("nulls")?.slice(1), new Array(columns.length - 1).fill(null));
    const blank = byId.get("blank") as (string | null)[];
    assert.deepEqual(Object.fromEntries(columns.map((column, i) => [column.name, blank[i]])), {
      ID: "blank",
      MixedCase: null,
      N_INT: "42",
      N_DEC: "0.00",
      N_FLOAT: "-0.25",
      FLAG: "false",
      D: "1999-12-31",
      T: "00:00:00",
      TS_NTZ: "2000-01-01 00:00:00",
      TS_LTZ: null,
      TS_TZ: null,
      V: '"just text"',
      O: null,
      A: "[]",
      S_OBJ: null,
      BIN: "",
    });
    const read = standIn.queries.findLast((query) => query.sql.startsWith('SELECT "ID", "MixedCase"'));
    assert.match(read?.sql ?? "", /TO_VARCHAR\("TS_TZ", 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM'\) AS "TS_TZ"/);
    assert.match(read?.sql ?? "", /TO_JSON\("S_OBJ"::VARIANT\) AS "S_OBJ"/);
    assert.match(read?.sql ?? "", /TO_JSON\("V"\) AS "V"/);
  });

  test("mapping columns match upper-case names case-insensitively, quoted names exactly; a missing one lists the columns", async () => {
    const source = snowflakeSource(standIn);
    const columns = await source.describe({ from: "types" });
    await source.close();
    const mapping = (properties: Record<string, string>) =>
      mappingSchema.parse({ from: "types", group_key: "company", group_id: "id", properties });
    const compiled = compileMapping(mapping({ when: "ts_tz", mixed: '"MixedCase"' }), columns, {
      hierarchical: false,
      file: "m.yaml",
    });
    assert.deepEqual(compiled.readSpec.columns, ["ID", "TS_TZ", "MixedCase"]);
    assert.throws(
      () =>
        compileMapping(mapping({ mixed: '"MIXEDCASE"', x: "nope" }), columns, { hierarchical: false, file: "m.yaml" }),
      (error: ConfigError) => {
        assert.match(error.message, /column "nope" does not exist in types; available columns: ID, MixedCase, N_INT/);
        assert.match(error.message, /column "\\"MIXEDCASE\\"" does not exist/);
        return true;
      },
    );
  });
});

describe("reading", () => {
  test("≥ 100k rows stream from many chunks on their own URLs, in code-point order, in batches of the fetch size", async () => {
    const source = snowflakeSource(standIn);
    const chunksBefore = standIn.chunkRequests.length;
    const { rows, batches } = await readAll(
      source,
      { from: "big", columns: ["ID", "NAME", "N"], orderBy: ["ID"] },
      5000,
    );
    await source.close();
    assert.equal(rows.length, 120_000);
    assert.ok(batches.every((size) => size <= 5000) && batches.length === 24, String(batches));
    for (let i = 1; i < rows.length; i++) {
      assert.ok(compareCodePoints(rows[i - 1]?.[0] as string, rows[i]?.[0] as string) < 0, `row ${i}`);
    }
    const chunks = standIn.chunkRequests.slice(chunksBefore);
    assert.deepEqual(
      chunks.map((chunk) => chunk.index).sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, i) => i),
      "12 chunks after the inline rowset, each fetched once from its own URL",
    );
    assert.ok(chunks.every((chunk) => chunk.status === 200));
  });

  test("keys come in code-point order whatever the column's collation (an en-ci column sorts otherwise)", async () => {
    const ids = ["a", "B", "é", "_x", "10", "9", "Ä", "z", "😀", "É", "ﬀ", "b"];
    standIn.data.tables.set("DB.PUBLIC.IDS", {
      columns: [
        { name: "ID", type: "text", collation: "en-ci" },
        { name: "V", type: "fixed" },
      ],
      rows: ids.map((id, i) => [id, String(i)]),
    });
    const source = snowflakeSource(standIn);
    const { rows } = await readAll(source, { from: "ids", columns: ["ID"], orderBy: ["ID"] });
    await source.close();
    assert.deepEqual(
      rows.map((row) => row[0]),
      [...ids].sort(compareCodePoints),
    );
  });

  test("a mapping's query is read as a sub-select, ordered; `where` and `after` narrow the read", async () => {
    const query = "select id, name from big where n < 50";
    standIn.data.queries.set(query, {
      columns: [
        { name: "ID", type: "text" },
        { name: "NAME", type: "text" },
      ],
      rows: generated(50).map((row) => [row[0] ?? null, row[1] ?? null]),
    });
    standIn.data.conditions.set("NAME like 'name 1%'", (row) => String(row.NAME).startsWith("name 1"));
    const source = snowflakeSource(standIn);
    const all = await readAll(source, { query: `${query};`, columns: ["ID", "NAME"], orderBy: ["ID"] });
    assert.equal(all.rows.length, 50);
    assert.equal(all.rows[0]?.[0], "g000000");
    const narrowed = await readAll(source, {
      query,
      columns: ["ID", "NAME"],
      orderBy: ["ID"],
      where: "NAME like 'name 1%'",
      after: ["g000012"],
    });
    await source.close();
    assert.deepEqual(
      narrowed.rows.map((row) => row[0]),
      ["g000013", "g000014", "g000015", "g000016", "g000017", "g000018", "g000019"],
    );
  });

  test("a query still running is polled at its result URL until it finishes", async () => {
    standIn.runSlowly((sql) => sql.includes('FROM "PUBLIC"."MID" ORDER BY'), 3);
    const polls = standIn.resultPolls;
    try {
      const source = snowflakeSource(standIn);
      const { rows } = await readAll(source, { from: "public.mid", columns: ["ID"], orderBy: ["ID"] });
      await source.close();
      assert.equal(rows.length, 25_000);
      assert.equal(standIn.resultPolls, polls + 3);
    } finally {
      standIn.runSlowly(undefined);
    }
  });

  test("SQL compilation errors name what to fix; a writing query is refused before anything is sent", async () => {
    const source = snowflakeSource(standIn);
    await assert.rejects(source.describe({ from: "public.nope" }), (error: SourceError) => {
      assert.equal(error.code, "SOURCE_TABLE_MISSING");
      assert.match(error.message, /Object 'DB\.PUBLIC\.NOPE' does not exist or not authorized/);
      assert.match(error.action ?? "", /upper-cased/);
      return true;
    });
    await assert.rejects(
      readAll(source, { from: "types", columns: ["ID", "GONE"], orderBy: ["ID"] }),
      (error: SourceError) => {
        assert.equal(error.code, "SOURCE_COLUMN_MISSING");
        return true;
      },
    );
    await assert.rejects(source.describe({ query: "select id\nfrom big form" }), (error: SourceError) =>
      ["SOURCE_QUERY_INVALID", "SOURCE_TABLE_MISSING"].includes(error.code),
    );
    const sent = standIn.queries.length;
    await assert.rejects(source.describe({ query: "select 1; delete from big" }), (error: SourceError) => {
      assert.equal(error.code, "SOURCE_QUERY_WRITES");
      return true;
    });
    await assert.rejects(source.describe({ query: "delete from big" }), /single SELECT/);
    assert.equal(standIn.queries.length, sent, "nothing was sent");
    await source.close();
  });

  test("a read without a usable warehouse names the warehouse setting", async () => {
    const source = snowflakeSource(standIn, { warehouse: "missing_wh" });
    await assert.rejects(readAll(source, { from: "types", columns: ["ID"], orderBy: ["ID"] }), (error: SourceError) => {
      assert.equal(error.code, "SOURCE_WAREHOUSE");
      assert.match(error.action ?? "", /`warehouse` \(missing_wh\)/);
      return true;
    });
    await source.close();
  });
});

describe("failures mid-stream", { timeout: 60_000 }, () => {
  const spec = { from: "mid", columns: ["ID", "NAME", "N"], orderBy: ["ID"] };

  test("a chunk URL that answers 404: the rows before it arrive, then a SourceError; the session still closes", async () => {
    standIn.chunkFaults(({ index }) => (index === 1 ? { status: 404 } : undefined));
    try {
      const source = snowflakeSource(standIn);
      const closed = standIn.sessionsClosed;
      let received = 0;
      await assert.rejects(
        (async () => {
          for await (const batch of source.read(spec, { batchSize: 1000 })) received += batch.length;
        })(),
        (error: SourceError) => {
          assert.ok(error instanceof SourceError);
          assert.equal(error.code, "SOURCE_CONNECTION_LOST");
          assert.match(error.message, /HTTP 404/);
          return true;
        },
      );
      assert.equal(received, 11_000, "the inline rowset and the first chunk");
      await source.close();
      assert.equal(standIn.sessionsClosed, closed + 1);
    } finally {
      standIn.chunkFaults(undefined);
    }
  });

  test("a chunk that fails once (500) is retried by the driver and the read completes", async () => {
    standIn.chunkFaults(({ index, attempt }) => (index === 0 && attempt === 1 ? { status: 500 } : undefined));
    try {
      const source = snowflakeSource(standIn);
      const before = standIn.chunkRequests.length;
      const { rows } = await readAll(source, spec, 5000);
      await source.close();
      assert.equal(rows.length, 25_000);
      const statuses = standIn.chunkRequests.slice(before).filter((chunk) => chunk.index === 0);
      assert.deepEqual(
        statuses.map((chunk) => chunk.status),
        [500, 200],
      );
    } finally {
      standIn.chunkFaults(undefined);
    }
  });

  test("a chunk cut short (unparseable) fails the read cleanly: no crash, no silently missing rows", async () => {
    // Chunk 1 may be parsed while prefetched (the driver would throw from a nextTick: a crash) or when its turn
    // comes (the driver would skip it): both end in the same SourceError.
    for (const index of [1, 2]) {
      standIn.chunkFaults((chunk) => (chunk.index === index ? "truncated" : undefined));
      try {
        const source = snowflakeSource(standIn);
        let received = 0;
        await assert.rejects(
          (async () => {
            for await (const batch of source.read(spec, { batchSize: 1000 })) received += batch.length;
          })(),
          (error: SourceError) => {
            assert.equal(error.code, "SOURCE_RESULT_INCOMPLETE", error.message);
            assert.match(error.message, /arrived damaged .*could not be parsed/);
            return true;
          },
        );
        assert.ok(received <= 1000 + index * 10_000, `rows up to the damaged chunk at most (${received})`);
        await source.close();
      } finally {
        standIn.chunkFaults(undefined);
      }
    }
  });

  test("a chunk holding fewer rows than announced fails the read: rows are counted", async () => {
    standIn.chunkFaults(({ index }) => (index === 1 ? "short" : undefined));
    try {
      const source = snowflakeSource(standIn);
      await assert.rejects(readAll(source, spec), (error: SourceError) => {
        assert.equal(error.code, "SOURCE_RESULT_INCOMPLETE");
        assert.match(error.message, /20000 of 25000 rows arrived/);
        return true;
      });
      await source.close();
    } finally {
      standIn.chunkFaults(undefined);
    }
  });

  test("a result download that stalls fails after fetch_timeout instead of hanging", { timeout: 15_000 }, async () => {
    standIn.chunkFaults(({ index }) => (index === 1 ? "hang" : undefined));
    try {
      const source = snowflakeSource(standIn, { fetch_timeout: "2s" });
      const started = Date.now();
      let received = 0;
      await assert.rejects(
        (async () => {
          for await (const batch of source.read(spec, { batchSize: 1000 })) received += batch.length;
        })(),
        (error: SourceError) => {
          assert.equal(error.code, "SOURCE_FETCH_STALLED");
          assert.match(error.action ?? "", /fetch_timeout/);
          return true;
        },
      );
      assert.equal(received, 11_000);
      assert.ok(Date.now() - started < 10_000);
      // End the held download before logging out: closing the session resets its socket, and the driver would go
      // on retrying it in the background.
      standIn.chunkFaults(undefined);
      await source.close();
    } finally {
      standIn.chunkFaults(undefined);
    }
  });

  test("aborting a read cancels the running query on Snowflake", async () => {
    standIn.holdQueries((sql) => sql.includes('FROM "MID" ORDER BY'));
    try {
      const source = snowflakeSource(standIn);
      await source.describe({ from: "mid" });
      const controller = new AbortController();
      const aborts = standIn.aborts.length;
      const sent = standIn.queries.length;
      const reading = readAll(source, spec, 1000, { signal: controller.signal });
      while (
        !standIn.queries.slice(sent).some((query) => query.sql.startsWith('SELECT "ID", "NAME", "N" FROM "MID"'))
      ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const reason = new Error("stop");
      controller.abort(reason);
      await assert.rejects(reading, (error) => error === reason);
      assert.equal(standIn.aborts.length, aborts + 1, "an abort-request reached Snowflake");
      await source.close();
    } finally {
      standIn.holdQueries(undefined);
    }
  });

  test("a consumer that stops early releases the stream; close still logs out", async () => {
    const source = snowflakeSource(standIn);
    const closed = standIn.sessionsClosed;
    for await (const batch of source.read(spec, { batchSize: 100 })) {
      assert.equal(batch.length, 100);
      break;
    }
    await source.close();
    assert.equal(standIn.sessionsClosed, closed + 1);
    await assert.rejects(source.describe({ from: "mid" }), (error: SourceError) => error.code === "SOURCE_CLOSED");
  });
});

test("the stand-in's fixtures are self-consistent (guards the tests above)", () => {
  assert.ok(readFileSync(keys.encryptedFile, "utf8").includes("ENCRYPTED PRIVATE KEY"));
  assert.equal(TYPES_ROWS[0]?.length, TYPES_COLUMNS.length);
});
