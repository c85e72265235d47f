/**
 * The PostgreSQL source against a real server: raw text and kinds of every supported type, code-point order, query
 * sources, refusals, error messages, cancellation, timeouts and streaming.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { postgresSourceSchema } from "../../connectors/postgres/config.js";
import { createPostgresSource } from "../../connectors/postgres/source.js";
import { SourceError } from "../../src/errors.js";
import { coerceValue } from "../../src/mapping/coerce.js";
import type { RawRow, ReadSpec, Source, SourceColumn } from "../../src/source.js";
import { compareCodePoints } from "../../src/state/key-order.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

let db: TestDatabase;
const sources: Source[] = [];

function source(extra: Record<string, unknown> = {}, url = db.url): Source {
  const created = createPostgresSource(postgresSourceSchema.parse({ type: "postgres", url, ...extra }));
  sources.push(created);
  return created;
}

async function readAll(from: Source, spec: ReadSpec, batchSize = 1000): Promise<RawRow[][]> {
  const chunks: RawRow[][] = [];
  for await (const chunk of from.read(spec, { batchSize })) chunks.push([...chunk]);
  return chunks;
}

/** A URL whose sessions carry their own application_name, so a test can find them in pg_stat_activity. */
function taggedUrl(tag: string): string {
  const url = new URL(db.url);
  url.searchParams.set("application_name", tag);
  return url.toString();
}

interface Session {
  readonly state: string;
  readonly query: string;
  readonly inTransaction: boolean;
}

/** The sessions of one application on the test database, as pg_stat_activity sees them. */
async function sessions(applicationName: string): Promise<Session[]> {
  const { rows } = await db.query(
    `SELECT state, query, xact_start IS NOT NULL AS "inTransaction" FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = $1 ORDER BY backend_start`,
    [applicationName],
  );
  return rows;
}

async function eventually(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function rejection(promise: Promise<unknown>): Promise<SourceError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SourceError, `expected a SourceError, got ${String(error)}`);
    assert.ok(error.action && error.action.length > 10, "a SourceError carries an action sentence");
    return error;
  }
  return assert.fail("expected a rejection");
}

function dbName(): string {
  return new URL(db.url).pathname.slice(1);
}

before(async () => {
  db = await createTestDatabase();
  // Session defaults that would render every type differently: the source must override each of them.
  await db.query(`ALTER DATABASE ${dbName()} SET TimeZone = 'Asia/Kolkata'`);
  await db.query(`ALTER DATABASE ${dbName()} SET DateStyle = 'SQL, DMY'`);
  await db.query(`ALTER DATABASE ${dbName()} SET IntervalStyle = 'postgres_verbose'`);
  await db.query(`ALTER DATABASE ${dbName()} SET extra_float_digits = 0`);
  await db.query(`ALTER DATABASE ${dbName()} SET bytea_output = 'escape'`);
});

after(async () => {
  for (const created of sources) await created.close();
  await db.dispose();
});

describe("every type: raw text, kinds and coerced values", () => {
  const expected: Record<string, { kind: string; dbType: string; raw: string; value: unknown }> = {
    i2: { kind: "integer", dbType: "int2", raw: "-12", value: -12 },
    i4: { kind: "integer", dbType: "int4", raw: "2147483647", value: 2147483647 },
    o: { kind: "integer", dbType: "oid", raw: "4000000000", value: 4000000000 },
    i8: { kind: "bigint", dbType: "int8", raw: "9007199254740993", value: "9007199254740993" },
    i8small: { kind: "bigint", dbType: "int8", raw: "-9007199254740991", value: -9007199254740991 },
    num: {
      kind: "decimal",
      dbType: "numeric",
      raw: "12345678901234567890.12",
      value: "12345678901234567890.12",
    },
    numsmall: { kind: "decimal", dbType: "numeric", raw: "120000.50", value: 120000.5 },
    f4: { kind: "float", dbType: "float4", raw: "1.1", value: 1.1 },
    f8: { kind: "float", dbType: "float8", raw: "1.0000000000000002", value: 1.0000000000000002 },
    b: { kind: "boolean", dbType: "bool", raw: "t", value: true },
    t: { kind: "text", dbType: "text", raw: 'héllo, "world" 😀', value: 'héllo, "world" 😀' },
    vc: { kind: "text", dbType: "varchar", raw: "abc", value: "abc" },
    bp: { kind: "text", dbType: "bpchar", raw: "ab ", value: "ab " },
    nm: { kind: "text", dbType: "name", raw: "name1", value: "name1" },
    u: {
      kind: "text",
      dbType: "uuid",
      raw: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
      value: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    },
    ci: { kind: "text", dbType: "citext", raw: "MiXeD", value: "MiXeD" },
    e: { kind: "text", dbType: "mood", raw: "happy", value: "happy" },
    tstz: {
      kind: "timestamptz",
      dbType: "timestamptz",
      raw: "2024-01-15 10:00:00.123456+00",
      value: "2024-01-15T10:00:00.123456Z",
    },
    ts: { kind: "timestamp", dbType: "timestamp", raw: "2024-01-15 10:00:00.5", value: "2024-01-15T10:00:00.5Z" },
    d: { kind: "date", dbType: "date", raw: "2024-01-15", value: "2024-01-15" },
    tm: { kind: "time", dbType: "time", raw: "10:00:00.25", value: "10:00:00.25" },
    tmtz: { kind: "time", dbType: "timetz", raw: "10:00:00+02", value: "10:00:00+02" },
    j: { kind: "json", dbType: "json", raw: '{"b": [1, 2],  "a": 1}', value: { b: [1, 2], a: 1 } },
    jb: { kind: "json", dbType: "jsonb", raw: '{"a": 1, "b": [1, 2.50]}', value: { a: 1, b: [1, 2.5] } },
    a_text: {
      kind: "array",
      dbType: "_text",
      raw: '{plain,NULL,"with \\"quotes\\"","a,b","","NULL","back\\\\slash","{x}"}',
      value: ["plain", null, 'with "quotes"', "a,b", "", "NULL", "back\\slash", "{x}"],
    },
    a_varchar: { kind: "array", dbType: "_varchar", raw: '{"x y",z}', value: ["x y", "z"] },
    a_int: { kind: "array", dbType: "_int4", raw: "{1,NULL,3}", value: [1, null, 3] },
    a_int2d: {
      kind: "array",
      dbType: "_int4",
      raw: "{{1,2},{3,4}}",
      value: [
        [1, 2],
        [3, 4],
      ],
    },
    a_int8: { kind: "array", dbType: "_int8", raw: "{9007199254740993,1}", value: ["9007199254740993", 1] },
    a_bool: { kind: "array", dbType: "_bool", raw: "{t,f,NULL}", value: [true, false, null] },
    a_float: { kind: "array", dbType: "_float8", raw: "{1.5,-0.25}", value: [1.5, -0.25] },
    a_num: {
      kind: "array",
      dbType: "_numeric",
      raw: "{1.5,12345678901234567890}",
      value: [1.5, "12345678901234567890"],
    },
    a_uuid: {
      kind: "array",
      dbType: "_uuid",
      raw: "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
      value: ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
    },
    a_tstz: {
      kind: "array",
      dbType: "_timestamptz",
      raw: '{"2024-01-15 10:00:00+00",NULL}',
      value: ["2024-01-15T10:00:00Z", null],
    },
    a_date: { kind: "array", dbType: "_date", raw: "{2024-01-15}", value: ["2024-01-15"] },
    a_jsonb: { kind: "array", dbType: "_jsonb", raw: '{"{\\"a\\": 1}",[1]}', value: [{ a: 1 }, [1]] },
    a_ci: { kind: "array", dbType: "_citext", raw: "{Aa,bB}", value: ["Aa", "bB"] },
    by: { kind: "binary", dbType: "bytea", raw: "\\x0102ff", value: "\\x0102ff" },
    iv: { kind: "other", dbType: "interval", raw: "P1DT2H", value: "P1DT2H" },
    ip: { kind: "other", dbType: "inet", raw: "192.168.0.1", value: "192.168.0.1" },
  };
  let columns: readonly SourceColumn[];
  let rows: RawRow[];

  before(async () => {
    await db.query(`
      CREATE EXTENSION citext;
      CREATE TYPE mood AS ENUM ('happy', 'sad');
      CREATE TABLE every_type (
        id text PRIMARY KEY, i2 int2, i4 int4, o oid, i8 int8, i8small int8, num numeric, numsmall numeric(10, 2),
        f4 float4, f8 float8, b bool, t text, vc varchar(10), bp char(3), nm name, u uuid, ci citext, e mood,
        tstz timestamptz, ts timestamp, d date, tm time, tmtz timetz, j json, jb jsonb,
        a_text text[], a_varchar varchar[], a_int int[], a_int2d int[], a_int8 int8[], a_bool bool[],
        a_float float8[], a_num numeric[], a_uuid uuid[], a_tstz timestamptz[], a_date date[], a_jsonb jsonb[],
        a_ci citext[], by bytea, iv interval, ip inet
      );
      INSERT INTO every_type VALUES (
        'full', -12, 2147483647, 4000000000, 9007199254740993, -9007199254740991, 12345678901234567890.12, 120000.5,
        1.1, 1.0000000000000002, true, 'héllo, "world" 😀', 'abc', 'ab', 'name1',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'MiXeD', 'happy',
        '2024-01-15 05:00:00.123456-05', '2024-01-15 10:00:00.5', '2024-01-15', '10:00:00.25', '10:00:00+02',
        '{"b": [1, 2],  "a": 1}', '{"b": [1, 2.50], "a": 1}',
        ARRAY['plain', NULL, 'with "quotes"', 'a,b', '', 'NULL', 'back\\slash', '{x}'], ARRAY['x y', 'z'],
        '{1,NULL,3}', '{{1,2},{3,4}}', '{9007199254740993,1}', '{t,f,NULL}', '{1.5,-0.25}',
        '{1.5,12345678901234567890}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
        ARRAY['2024-01-15 11:00:00+01'::timestamptz, NULL], '{2024-01-15}', ARRAY['{"a":1}'::jsonb, '[1]'],
        '{Aa,bB}', '\\x0102ff', '1 day 2 hours', '192.168.0.1'
      );
      INSERT INTO every_type (id) VALUES ('nulls');
    `);
    const from = source();
    columns = await from.describe({ from: "public.every_type" });
    const chunks = await readAll(from, {
      from: "every_type",
      columns: columns.map((column) => column.name),
      orderBy: ["id"],
    });
    rows = chunks.flat();
  });

  test("describe gives every column's name, type and kind; arrays get a decoder", () => {
    const got = Object.fromEntries(columns.map((column) => [column.name, `${column.kind}/${column.dbType}`]));
    const want = Object.fromEntries(
      Object.entries(expected).map(([name, { kind, dbType }]) => [name, `${kind}/${dbType}`]),
    );
    assert.deepEqual(got, { id: "text/text", ...want });
    for (const column of columns) assert.equal(column.decode !== undefined, column.kind === "array", column.name);
  });

  test("read returns the server's text, rendered in UTC/ISO whatever the database's own settings", () => {
    assert.equal(rows.length, 2);
    const full = rows[0]!;
    assert.equal(full[0], "full");
    for (const [i, column] of columns.entries()) {
      if (column.name === "id") continue;
      assert.equal(full[i], expected[column.name]?.raw, `raw text of ${column.name}`);
      assert.equal(typeof full[i], "string", column.name);
    }
  });

  test("a NULL is null in every column", () => {
    const nulls = rows[1]!;
    assert.equal(nulls[0], "nulls");
    assert.deepEqual(nulls.slice(1), new Array(columns.length - 1).fill(null));
  });

  test("coerceValue turns the raw text into the values sent", () => {
    const full = rows[0]!;
    for (const [i, column] of columns.entries()) {
      if (column.name === "id") continue;
      const result = coerceValue(full[i] as string, column);
      assert.deepEqual(result, { ok: true, value: expected[column.name]?.value }, column.name);
    }
  });

  test("declared types convert from the real cells", () => {
    const full = rows[0]!;
    const cell = (name: string) => {
      const index = columns.findIndex((column) => column.name === name);
      return [full[index] as string, columns[index]!] as const;
    };
    assert.deepEqual(coerceValue(...cell("num"), "number"), { ok: true, value: 12345678901234567000 });
    assert.deepEqual(coerceValue(...cell("jb"), "string"), { ok: true, value: '{"a":1,"b":[1,2.50]}' });
    assert.deepEqual(coerceValue(...cell("d"), "datetime"), { ok: true, value: "2024-01-15T00:00:00Z" });
    assert.deepEqual(coerceValue(...cell("a_int"), "string"), { ok: true, value: "[1,null,3]" });
    assert.deepEqual(coerceValue(...cell("jb"), "object"), { ok: true, value: { a: 1, b: [1, 2.5] } });
    assert.match((coerceValue(...cell("t"), "number") as { reason: string }).reason, /\(text\) as number/);
  });
});

describe("order", () => {
  const ids = ["a", "B", "é", "_x", "10", "9", "Ä", "😀", "～", "z"];

  before(async () => {
    // en-US, as the database default is where the en_US.UTF-8 locale exists; set on the columns so the test does not
    // depend on the machine's locales (without it the database may fall back to C.UTF-8, which is code-point order).
    await db.query('CREATE TABLE ids (id text COLLATE "en-US-x-icu", n int, company text COLLATE "en-US-x-icu")');
    for (const [i, id] of ids.entries()) {
      await db.query("INSERT INTO ids VALUES ($1, $2, $3)", [id, [1, 10, 2, 9][i % 4], i % 2 === 0 ? "c2" : "c1"]);
    }
    await db.query("INSERT INTO ids VALUES (NULL, NULL, NULL)");
  });

  test("Group IDs come in code-point order, NULLs last, unlike the database's default collation", async () => {
    const chunks = await readAll(source(), { from: "ids", columns: ["id"], orderBy: ["id"] }, 3);
    const got = chunks.flat().map((row) => row[0]);
    const want = [...ids].sort(compareCodePoints);
    assert.deepEqual(got, [...want, null]);
    // "～" (U+FF5E) before "😀" (U+1F600): code points, not UTF-16 units.
    assert.ok(got.indexOf("～") < got.indexOf("😀"));
    const { rows } = await db.query("SELECT id FROM ids WHERE id IS NOT NULL ORDER BY id");
    assert.notDeepEqual(
      rows.map((row) => row.id),
      want,
      "a plain ORDER BY follows en-US, so the code-point order above is the source's doing",
    );
  });

  test("integer keys order by their text, and several keys order left to right", async () => {
    const byNumber = (await readAll(source(), { from: "ids", columns: ["n"], orderBy: ["n"] })).flat();
    assert.deepEqual(
      byNumber.map((row) => row[0]),
      ["1", "1", "1", "10", "10", "10", "2", "2", "9", "9", null],
    );
    const byTwo = (
      await readAll(source(), { from: "ids", columns: ["id", "company"], orderBy: ["company", "id"] })
    ).flat();
    const want = ids
      .map((id, i) => [i % 2 === 0 ? "c2" : "c1", id] as const)
      .sort((x, y) => compareCodePoints(x[0], y[0]) || compareCodePoints(x[1], y[1]))
      .map(([company, id]) => [id, company]);
    assert.deepEqual(byTwo, [...want, [null, null]]);
  });
});

describe("tables and queries", () => {
  before(async () => {
    await db.query(`
      CREATE SCHEMA "Analytics";
      CREATE TABLE "Analytics"."Mixed.Case" ("Group Id" text, "a""b" int);
      INSERT INTO "Analytics"."Mixed.Case" VALUES ('g1', 1), ('g0', 2);
      CREATE TABLE plain (id text PRIMARY KEY, name text);
      INSERT INTO plain VALUES ('x', 'ex'), ('y', 'why');
      CREATE TABLE counter (n int);
      INSERT INTO counter VALUES (0);
      CREATE SEQUENCE seq;
      CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS 'UPDATE counter SET n = n + 1 RETURNING n';
    `);
  });

  test("quoted identifiers, dots and quotes in names are read exactly", async () => {
    const from = source();
    const columns = await from.describe({ from: '"Analytics"."Mixed.Case"' });
    assert.deepEqual(
      columns.map((column) => column.name),
      ["Group Id", 'a"b'],
    );
    const rows = (
      await readAll(from, { from: '"Analytics"."Mixed.Case"', columns: ['a"b', "Group Id"], orderBy: ["Group Id"] })
    ).flat();
    assert.deepEqual(rows, [
      ["2", "g0"],
      ["1", "g1"],
    ]);
  });

  test("unquoted names fold to lower case, as in SQL", async () => {
    const columns = await source().describe({ from: "PUBLIC.Plain" });
    assert.deepEqual(
      columns.map((column) => column.name),
      ["id", "name"],
    );
  });

  test("a query source is described and read, a trailing semicolon and comment tolerated", async () => {
    const from = source();
    const query = "select id, upper(name) as name, 1::int8 as one from plain -- all of them\n;";
    const columns = await from.describe({ query });
    assert.deepEqual(
      columns.map((column) => `${column.name}:${column.kind}`),
      ["id:text", "name:text", "one:bigint"],
    );
    const rows = (await readAll(from, { query, columns: ["name", "id"], orderBy: ["id"] })).flat();
    assert.deepEqual(rows, [
      ["EX", "x"],
      ["WHY", "y"],
    ]);
  });

  test("a query that writes is refused and writes nothing", async () => {
    const from = source();
    const attempts = [
      "insert into plain values ('z', 'zed') returning id",
      "with gone as (delete from plain returning id) select id from gone",
      "select bump() as n",
      "select nextval('seq') as n",
    ];
    for (const query of attempts) {
      const error = await rejection(readAll(from, { query, columns: ["n"], orderBy: [] }));
      assert.equal(error.code, "SOURCE_QUERY_WRITES", `${query}: ${error.message}`);
      assert.match(error.message, /tries to write/);
      // describe runs the query with LIMIT 0, which never calls bump() or nextval(); statements are refused anyway.
      if (!query.startsWith("select")) {
        const described = await rejection(from.describe({ query }));
        assert.equal(described.code, "SOURCE_QUERY_WRITES", query);
      }
    }
    const { rows } = await db.query("SELECT (SELECT count(*) FROM plain) AS plain, (SELECT n FROM counter) AS n");
    assert.deepEqual(rows[0], { plain: "2", n: 0 });
  });

  test("a query cannot end the read-only transaction and run a second statement", async () => {
    const from = source();
    const query = "select 1 as n) AS src; COMMIT; DELETE FROM plain; SELECT * FROM (select 1 as n";
    await rejection(from.describe({ query }));
    await rejection(readAll(from, { query, columns: ["n"], orderBy: [] }));
    const { rows } = await db.query("SELECT count(*)::int AS n FROM plain");
    assert.equal(rows[0].n, 2);
  });

  test("a missing table names the table", async () => {
    const from = source();
    const error = await rejection(from.describe({ from: "analytics_missing.companies" }));
    assert.equal(error.code, "SOURCE_TABLE_MISSING");
    assert.match(error.message, /"analytics_missing"\."companies" does not exist/);
    assert.match(error.message, /SQLSTATE 42P01/);
    const read = await rejection(readAll(from, { from: "no_such_table", columns: ["id"], orderBy: ["id"] }));
    assert.match(read.message, /table "no_such_table" does not exist/);
  });

  test("a syntax error gives PostgreSQL's message and the position inside the user's query", async () => {
    const query = "select id,\n  from plain";
    const error = await rejection(source().describe({ query }));
    assert.equal(error.code, "SOURCE_QUERY_INVALID");
    assert.match(error.message, /syntax error at or near "from"/);
    assert.match(
      error.message,
      new RegExp(`at character ${query.indexOf("from") + 1} of the query, near "from plain"`),
    );
    assert.match(error.message, /SQLSTATE 42601/);
  });

  test("a missing column in a read is a SourceError naming it", async () => {
    const error = await rejection(readAll(source(), { from: "plain", columns: ["nope"], orderBy: ["nope"] }));
    assert.equal(error.code, "SOURCE_COLUMN_MISSING");
    assert.match(error.message, /column "nope" does not exist/);
  });
});

describe("connections", () => {
  test("check() passes on a UTF8 database; sessions are named groupsync", async () => {
    const before = (await sessions("groupsync")).length;
    const from = source();
    await from.check();
    assert.equal((await sessions("groupsync")).length, before + 1);
    await from.close();
    await eventually(async () => (await sessions("groupsync")).length === before, "close() ends the connection");
  });

  test("check() refuses a database whose encoding is not UTF8", async () => {
    const adminUrl = new URL(db.url);
    adminUrl.pathname = "/postgres";
    const name = `${dbName()}_ascii`;
    const admin = new pg.Client({ connectionString: adminUrl.toString() });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'`);
      const url = new URL(db.url);
      url.pathname = `/${name}`;
      const from = source({}, url.toString());
      const error = await rejection(from.check());
      assert.equal(error.code, "SOURCE_ENCODING");
      assert.match(error.message, /SQL_ASCII, not UTF8/);
      await from.close();
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  test("a wrong password says to check the credentials and shows neither the password nor the URL", async () => {
    const url = new URL(db.url);
    url.password = "wrong-s3cret-pw";
    const error = await rejection(source({}, url.toString()).check());
    assert.equal(error.code, "SOURCE_AUTH");
    assert.match(error.action ?? "", /user name and password/);
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${url.port}`));
    for (const secret of ["wrong-s3cret-pw", url.toString(), "postgres://"]) {
      assert.ok(!error.message.includes(secret), `message leaks ${secret}: ${error.message}`);
      assert.ok(!(error.action ?? "").includes(secret));
    }
  });

  test("an unreachable port says to check host and port", async () => {
    const url = new URL(db.url);
    url.port = "1";
    const error = await rejection(source({}, url.toString()).check());
    assert.equal(error.code, "SOURCE_UNREACHABLE");
    assert.match(error.action ?? "", /host and port/);
    assert.ok(!error.message.includes(url.password));
  });

  test("a missing database says to check the database name", async () => {
    const url = new URL(db.url);
    url.pathname = "/no_such_db";
    const error = await rejection(source({}, url.toString()).check());
    assert.equal(error.code, "SOURCE_DATABASE");
    assert.match(error.message, /database no_such_db/);
  });

  test("TLS: the block decides over the URL's sslmode; failures point at the TLS settings", async () => {
    const error = await rejection(source({ tls: { mode: "require" } }).check());
    assert.equal(error.code, "SOURCE_TLS");
    assert.match(error.action ?? "", /tls\.mode/);
    const missing = await rejection(source({ tls: { mode: "verify-full", ca_file: "/nonexistent/ca.pem" } }).check());
    assert.equal(missing.code, "SOURCE_TLS_FILE");
    assert.match(missing.message, /tls\.ca_file "\/nonexistent\/ca\.pem"/);
    // Without a block the URL decides; with one, the URL's sslmode is ignored.
    const urlRequire = new URL(db.url);
    urlRequire.searchParams.set("sslmode", "require");
    await rejection(source({}, urlRequire.toString()).check());
    await source({ tls: { mode: "disable" } }, urlRequire.toString()).check();
    const urlDisable = new URL(db.url);
    urlDisable.searchParams.set("sslmode", "disable");
    await source({}, urlDisable.toString()).check();
  });

  test("close() is idempotent, and a closed source refuses new work", async () => {
    const from = source();
    await from.check();
    await from.close();
    await from.close();
    const error = await rejection(from.check());
    assert.equal(error.code, "SOURCE_CLOSED");
  });
});

describe("streaming, early exit, abort and timeouts", () => {
  before(async () => {
    await db.query(`
      CREATE TABLE big AS SELECT lpad(g::text, 6, '0') AS id, g AS n FROM generate_series(1, 25000) g;
    `);
  });

  test("25k rows stream in chunks of batchSize, in order", async () => {
    const chunks = await readAll(source(), { from: "big", columns: ["id", "n"], orderBy: ["id"] }, 1000);
    assert.equal(chunks.length, 25);
    assert.ok(chunks.every((chunk) => chunk.length === 1000));
    const ids = chunks.flat().map((row) => row[0]);
    assert.equal(ids.length, 25000);
    assert.equal(ids[0], "000001");
    assert.equal(ids[24999], "025000");
    const uneven = await readAll(source(), { from: "big", columns: ["id"], orderBy: ["id"] }, 3000);
    assert.deepEqual(
      uneven.map((chunk) => chunk.length),
      [3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 1000],
    );
  });

  test("breaking out of the loop closes the cursor, ends the transaction and releases the connection", async () => {
    const from = source({}, taggedUrl("gs_break"));
    let seen = 0;
    for await (const chunk of from.read({ from: "big", columns: ["id"], orderBy: ["id"] }, { batchSize: 100 })) {
      seen += chunk.length;
      const during = await sessions("gs_break");
      assert.equal(during.length, 1);
      assert.equal(during[0]?.inTransaction, true, "the read runs in a transaction");
      assert.match(during[0]?.query ?? "", /ORDER BY \("id"\)::text COLLATE "C" NULLS LAST/);
      break;
    }
    assert.equal(seen, 100);
    assert.deepEqual(
      (await sessions("gs_break")).map(({ state, inTransaction }) => ({ state, inTransaction })),
      [{ state: "idle", inTransaction: false }],
      "the connection is back in the pool, outside any transaction",
    );
    // The released connection is reused, not leaked.
    for (let i = 0; i < 5; i++) {
      for await (const _ of from.read({ from: "big", columns: ["id"], orderBy: ["id"] }, { batchSize: 10 })) break;
    }
    assert.equal((await sessions("gs_break")).length, 1);
    await from.close();
    await eventually(async () => (await sessions("gs_break")).length === 0, "close() ends every connection");
  });

  test("an abort during a long fetch cancels the query and frees the connection", async () => {
    const from = source({}, taggedUrl("gs_abort"));
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 300);
    const reading = (async () => {
      for await (const _ of from.read(
        { query: "select 'a' as id from pg_sleep(30)", columns: ["id"], orderBy: ["id"] },
        { batchSize: 10, signal: controller.signal },
      )) {
        // no rows before the abort
      }
    })();
    await assert.rejects(reading, (error: Error) => error.name === "AbortError");
    assert.ok(Date.now() - started < 10_000, "the abort does not wait for the query");
    await eventually(
      async () => (await sessions("gs_abort")).every((session) => !session.query.includes("pg_sleep")),
      "no query left running on the server",
    );
  });

  test("an abort between chunks stops the read at the next step", async () => {
    const from = source({}, taggedUrl("gs_abort_between"));
    const controller = new AbortController();
    let chunks = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of from.read(
          { from: "big", columns: ["id"], orderBy: ["id"] },
          { batchSize: 100, signal: controller.signal },
        )) {
          chunks++;
          controller.abort();
        }
      })(),
      (error: Error) => error.name === "AbortError",
    );
    assert.equal(chunks, 1);
    assert.deepEqual(
      (await sessions("gs_abort_between")).map(({ state, inTransaction }) => ({ state, inTransaction })),
      [{ state: "idle", inTransaction: false }],
    );
  });

  test("statement_timeout cancels a slow read with a clear SourceError", async () => {
    const from = source({ statement_timeout: "1s" });
    const started = Date.now();
    const error = await rejection(
      readAll(from, { query: "select 'a' as id from pg_sleep(5)", columns: ["id"], orderBy: ["id"] }),
    );
    assert.equal(error.code, "SOURCE_TIMEOUT");
    assert.match(error.message, /statement_timeout \(1000 ms\)/);
    assert.match(error.action ?? "", /statement_timeout/);
    assert.ok(Date.now() - started < 4000);
    // The connection is usable again after the failed read.
    const rows = (
      await readAll(from, { query: "select id from big where n <= 20", columns: ["id"], orderBy: ["id"] }, 5)
    ).flat();
    assert.equal(rows.length, 20);
  });

  test("close() does not hang on a read its consumer abandoned", async () => {
    const from = source({}, taggedUrl("gs_abandoned"));
    const iterator = from
      .read({ from: "big", columns: ["id"], orderBy: ["id"] }, { batchSize: 10 })
      [Symbol.asyncIterator]();
    await iterator.next();
    await from.close();
    await eventually(
      async () => (await sessions("gs_abandoned")).length === 0,
      "the abandoned read's connection is gone",
    );
    await iterator.return?.();
  });
});
