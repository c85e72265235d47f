/**
 * The Snowflake source's pure parts: identifier quoting, the read-only check, the SQL it runs, type mapping, text
 * fix-ups, config validation and error wording.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { snowflakeSourceSchema } from "../../connectors/snowflake/config.js";
import { loginError, queryError } from "../../connectors/snowflake/errors.js";
import { changesSql, lookupSql, normalizeCursor, rowHashSql } from "../../connectors/snowflake/pushdown-sql.js";
import {
  checkReadOnly,
  describeSql,
  quoteIdent,
  quoteRelation,
  readSql,
  renderSql,
  sessionSql,
} from "../../connectors/snowflake/sql.js";
import { kindOf, rendererOf, type SnowflakeColumnInfo, trimFraction } from "../../connectors/snowflake/types.js";
import { loadConfig } from "../../src/config/load.js";
import { type ConfigError, SourceError } from "../../src/errors.js";
import { Secret } from "../../src/secret.js";

const column = (type: string, scale: number | null = null): SnowflakeColumnInfo => ({
  name: "C",
  type,
  scale,
  precision: null,
  structured: false,
});

describe("identifiers", () => {
  test("quoteIdent quotes exactly and doubles quotes", () => {
    assert.equal(quoteIdent("ID"), '"ID"');
    assert.equal(quoteIdent('a"b'), '"a""b"');
    assert.throws(() => quoteIdent(""), SourceError);
  });

  test("quoteRelation upper-cases plain parts, as Snowflake resolves them, and keeps quoted parts as written", () => {
    const cases: [string, string][] = [
      ["companies", '"COMPANIES"'],
      ["analytics.dim_companies", '"ANALYTICS"."DIM_COMPANIES"'],
      ['"Analytics"."Mixed.Case"', '"Analytics"."Mixed.Case"'],
      ['db.schema."Say ""hi"""', '"DB"."SCHEMA"."Say ""hi"""'],
      ["  spaced . t$1 ", '"SPACED"."T$1"'],
    ];
    for (const [from, want] of cases) assert.equal(quoteRelation(from), want, from);
    for (const bad of ["", "a..b", '"open', "a.b.c.d", "t; drop table x", "my-table", "1abc", '""']) {
      assert.throws(
        () => quoteRelation(bad),
        (error: SourceError) => error.code === "SOURCE_RELATION_INVALID",
        bad,
      );
    }
  });
});

describe("read-only queries", () => {
  test("accepts one SELECT or WITH query, with comments, strings and a trailing semicolon", () => {
    const accepted: [string, string][] = [
      ["select id from t", "select id from t"],
      ["  WITH x AS (select 1 as id) select * from x;  ", "  WITH x AS (select 1 as id) select * from x"],
      ["-- leading comment\nselect ';' as s, 'it''s' as t, $$a;b$$ as u from t -- trailing;", ""],
      ['/* block; */ select "we;ird" from t ;; ', ""],
      ["(select 1) union all (select 2)", "(select 1) union all (select 2)"],
      ["// slash comment\nselect 'a\\';b' from t", ""],
    ];
    for (const [query, want] of accepted) {
      const result = checkReadOnly(query);
      if (want !== "") assert.equal(result, want, query);
      assert.ok(!result.endsWith(";"), query);
    }
  });

  test("refuses statements that are not one SELECT, and says why", () => {
    const refused = [
      "insert into t values (1)",
      "delete from t",
      "call proc()",
      "create table x as select 1",
      "select 1; delete from t",
      "select 1; -- and\nselect 2",
      "merge into t using s on true when matched then delete",
      "",
      "-- only a comment",
      "use role accountadmin",
    ];
    for (const query of refused) {
      assert.throws(
        () => checkReadOnly(query),
        (error: SourceError) => error.code === "SOURCE_QUERY_WRITES" && /single SELECT/.test(error.message),
        query,
      );
    }
  });
});

describe("statements", () => {
  test("describe compiles a LIMIT 0 select of the table or of the query as a sub-select", () => {
    assert.equal(describeSql({ from: "s.t" }).sql, 'SELECT * FROM "S"."T" LIMIT 0');
    const statement = describeSql({ query: "select 1 as id -- note\n;" });
    assert.equal(statement.sql, "SELECT * FROM (\nselect 1 as id\n) AS src LIMIT 0", "trailing comments and ; dropped");
    assert.equal(statement.queryLine, 2);
  });

  test("the read orders by the keys' text in UTF-8 byte order, NULLs last, and renders temporal types as text", () => {
    const types = new Map([
      ["TS", { type: "timestamp_ntz", structured: false }],
      ["TZ", { type: "timestamp_tz", structured: false }],
      ["D", { type: "date", structured: false }],
      ["T", { type: "time", structured: false }],
      ["O", { type: "object", structured: true }],
      ["ID", { type: "text", structured: false }],
    ]);
    const { sql, binds } = readSql(
      { from: "t", columns: ["ID", "TS", "TZ", "D", "T", "O"], orderBy: ["COMPANY", "ID"] },
      types,
    );
    assert.equal(
      sql,
      [
        'SELECT "ID", TO_VARCHAR("TS", \'YYYY-MM-DD HH24:MI:SS.FF9\') AS "TS",',
        'TO_VARCHAR("TZ", \'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM\') AS "TZ", TO_VARCHAR("D", \'YYYY-MM-DD\') AS "D",',
        'TO_VARCHAR("T", \'HH24:MI:SS.FF9\') AS "T", TO_JSON("O"::VARIANT) AS "O" FROM "T"',
        "ORDER BY COLLATE(TO_VARCHAR(\"COMPANY\"), 'utf8') ASC NULLS LAST, COLLATE(TO_VARCHAR(\"ID\"), 'utf8') ASC NULLS LAST",
      ].join(" "),
    );
    assert.equal(binds, undefined);
  });

  test("`where` and `after` narrow the read: the key tuple is compared term by term, values as binds", () => {
    const { sql, binds } = readSql({
      query: "select * from t",
      columns: ["A", "B"],
      orderBy: ["A", "B"],
      where: "plan = 'x';",
      after: ["acme", "o'brien"],
    });
    const a = "COLLATE(TO_VARCHAR(\"A\"), 'utf8')";
    const b = "COLLATE(TO_VARCHAR(\"B\"), 'utf8')";
    assert.equal(
      sql,
      `SELECT "A", "B" FROM (\nselect * from t\n) AS src WHERE (\nplan = 'x'\n) AND ((${a} > ?) OR (${a} = ? AND ${b} > ?)) ORDER BY ${a} ASC NULLS LAST, ${b} ASC NULLS LAST`,
    );
    assert.deepEqual(binds, ["acme", "acme", "o'brien"]);
    assert.throws(
      () => readSql({ from: "t", columns: ["A"], orderBy: ["A"], where: "true; drop table t" }),
      (error: SourceError) => error.code === "SOURCE_QUERY_WRITES",
    );
    assert.throws(() => readSql({ from: "t", columns: ["A"], orderBy: ["A"], after: [] }), SourceError);
  });

  test("the session renders in UTC with fixed formats, one statement at a time, with the statement timeout", () => {
    const sql = sessionSql(90_500);
    assert.match(sql, /^ALTER SESSION SET TIMEZONE = 'UTC', /);
    assert.match(sql, /TIMESTAMP_NTZ_OUTPUT_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF9'/);
    assert.match(sql, /BINARY_OUTPUT_FORMAT = 'HEX'/);
    assert.match(sql, /STATEMENT_TIMEOUT_IN_SECONDS = 91/);
    assert.match(sql, /MULTI_STATEMENT_COUNT = 1$/);
  });
});

describe("types and text", () => {
  test("Snowflake types map to the engine's value kinds", () => {
    const cases: [SnowflakeColumnInfo, string][] = [
      [column("fixed", 0), "bigint"],
      [column("fixed", 2), "decimal"],
      [column("real"), "float"],
      [column("text"), "text"],
      [column("boolean"), "boolean"],
      [column("date"), "date"],
      [column("time", 9), "time"],
      [column("timestamp_ntz", 9), "timestamp"],
      [column("timestamp_ltz", 9), "timestamptz"],
      [column("timestamp_tz", 9), "timestamptz"],
      [column("variant"), "json"],
      [column("object"), "json"],
      [column("array"), "json"],
      [column("binary"), "binary"],
      [column("geography"), "other"],
    ];
    for (const [info, kind] of cases) assert.equal(kindOf(info), kind, info.type);
  });

  test("fraction digits lose their trailing zeros; booleans read as true/false", () => {
    assert.equal(trimFraction("2024-01-15 10:00:00.000000000"), "2024-01-15 10:00:00");
    assert.equal(trimFraction("2024-01-15 10:00:00.120000000 +02:00"), "2024-01-15 10:00:00.12 +02:00");
    assert.equal(trimFraction("2024-01-15 10:00:00.000000001 -05:30"), "2024-01-15 10:00:00.000000001 -05:30");
    assert.equal(trimFraction("10:00:00.500000000"), "10:00:00.5");
    assert.equal(trimFraction("2024-01-15"), "2024-01-15");
    assert.equal(rendererOf(column("boolean"))?.("TRUE"), "true");
    assert.equal(rendererOf(column("text")), undefined);
  });
});

describe("config", () => {
  const base = {
    type: "snowflake",
    account: "myorg-myacct",
    username: "GROUPSYNC",
    warehouse: "REPORTING_WH",
    database: "ANALYTICS",
  };

  test("password, key file, key PEM or OAuth token: exactly one", () => {
    const parsed = snowflakeSourceSchema.parse({ ...base, password: "pw-1234" });
    assert.ok(parsed.password instanceof Secret);
    assert.equal(parsed.statement_timeout, 3_600_000);
    assert.equal(parsed.fetch_timeout, 300_000);
    assert.equal(parsed.fetch_size, 5000);
    assert.ok(
      snowflakeSourceSchema.safeParse({ ...base, private_key_file: "k.p8", private_key_passphrase: "x" }).success,
    );
    assert.ok(snowflakeSourceSchema.safeParse({ ...base, oauth_token: "tok-1234" }).success);
    const none = snowflakeSourceSchema.safeParse(base);
    assert.match(none.error?.issues[0]?.message ?? "", /one way to log in/);
    const two = snowflakeSourceSchema.safeParse({ ...base, password: "pw-1234", oauth_token: "tok-1234" });
    assert.deepEqual(two.error?.issues[0]?.path, ["oauth_token"]);
    const passphrase = snowflakeSourceSchema.safeParse({ ...base, password: "pw-1234", private_key_passphrase: "x" });
    assert.deepEqual(passphrase.error?.issues[0]?.path, ["private_key_passphrase"]);
  });

  test("through the config loader: the issue sits at the key, the secret is not shown", async () => {
    const dir = mkdtempSync(join(tmpdir(), "groupsync-sf-config-"));
    writeFileSync(join(dir, "m.yaml"), "from: t\ngroup_key: company\ngroup_id: id\n");
    writeFileSync(
      join(dir, "c.yaml"),
      [
        "version: 1",
        "sources:",
        "  snow:",
        "    type: snowflake",
        "    account: myorg-myacct",
        "    username: GROUPSYNC",
        "    password: ${SF_PASSWORD}",
        "    oauth_token: tok-visible-in-no-message",
        "    warehouse: WH",
        "    database: DB",
        "destinations:",
        "  mp: { type: mixpanel, project_token: tok-1234 }",
        "syncs:",
        "  s: { source: snow, destination: mp, mapping: m.yaml }",
        "",
      ].join("\n"),
    );
    await assert.rejects(
      loadConfig(join(dir, "c.yaml"), { env: { SF_PASSWORD: "pw-from-env-991" } }),
      (error: ConfigError) => {
        assert.match(
          error.message,
          /c\.yaml:8:18 sources\.snow\.oauth_token: give only one way to log in; found password and oauth_token/,
        );
        assert.ok(!error.message.includes("pw-from-env-991") && !error.message.includes("tok-visible"), error.message);
        return true;
      },
    );
  });

  test("account identifiers and access URLs are checked", () => {
    assert.ok(
      !snowflakeSourceSchema.safeParse({ ...base, password: "pw", account: "x.snowflakecomputing.com" }).success,
    );
    assert.ok(!snowflakeSourceSchema.safeParse({ ...base, password: "pw", account: "https://x" }).success);
    assert.ok(snowflakeSourceSchema.safeParse({ ...base, password: "pw", account: "xy12345.eu-west-1" }).success);
    const http = (url: string) => snowflakeSourceSchema.safeParse({ ...base, password: "pw", access_url: url }).success;
    assert.ok(http("http://127.0.0.1:8080"));
    assert.ok(http("https://proxy.internal"));
    assert.ok(!http("http://proxy.internal"), "plain http only to loopback: the password would travel in clear");
  });
});

describe("errors", () => {
  const config = snowflakeSourceSchema.parse({
    type: "snowflake",
    account: "myorg-myacct",
    username: "GROUPSYNC",
    warehouse: "WH",
    database: "DB",
    password: "pw-never-shown-42",
  });

  test("a refused login names the settings to check and never the password", () => {
    const error = loginError(
      { name: "OperationFailedError", code: "390100", message: "Incorrect username or password was specified." },
      config,
    );
    assert.equal(error.code, "SOURCE_AUTH");
    assert.match(error.action ?? "", /username and password/);
    assert.match(error.message, /myorg-myacct/);
    const echoed = loginError({ name: "X", code: "1", message: "bad pw-never-shown-42" }, config);
    assert.ok(!echoed.message.includes("pw-never-shown-42"), echoed.message);
    const unreachable = loginError(
      { name: "NetworkError", code: 401001, message: "Network error.", cause: { code: "ENOTFOUND" } },
      config,
    );
    assert.equal(unreachable.code, "SOURCE_UNREACHABLE");
    assert.match(unreachable.action ?? "", /account/);
  });

  test("query errors say what to check; compilation lines point into the user's query", () => {
    const missing = queryError(
      {
        code: "002003",
        sqlState: "42S02",
        message: "SQL compilation error:\nObject 'X' does not exist or not authorized.",
      },
      { what: 'table "X"', queryLine: 0, config },
    );
    assert.equal(missing.code, "SOURCE_TABLE_MISSING");
    assert.match(missing.action ?? "", /upper-cased/);
    const invalid = queryError(
      {
        code: "001003",
        sqlState: "42000",
        message: "SQL compilation error:\nsyntax error line 3 at position 4 unexpected 'FORM'.",
      },
      { what: "the query", queryLine: 2, userQuery: "select a\nfrom t form", config },
    );
    assert.equal(invalid.code, "SOURCE_QUERY_INVALID");
    assert.match(invalid.message, /syntax error at line 2, position 4 of the query/);
    const located = queryError(
      { code: "000904", message: "SQL compilation error: error line 3 at position 5\ninvalid identifier 'NAMEE'" },
      { what: "the query", queryLine: 2, userQuery: "select id,\n  namee from t", config },
    );
    assert.match(located.message, /error at line 2, position 5 of the query/);
    const timeout = queryError(
      { code: "000630", message: "Statement reached its statement or warehouse timeout of 3,600 second(s)" },
      { what: 'table "X"', queryLine: 0, config },
    );
    assert.equal(timeout.code, "SOURCE_TIMEOUT");
    assert.match(timeout.action ?? "", /statement_timeout/);
  });
});

describe("push-down statements", () => {
  const text = { type: "text", structured: false };
  test("the SQL rendering of a value keeps NULL as NULL (IFF's else branch would turn a NULL boolean into 'false')", () => {
    assert.equal(
      renderSql('"B"', { type: "boolean", structured: false }),
      `IFF("B" IS NULL, NULL, IFF("B", 'true', 'false'))`,
    );
    assert.equal(renderSql('"V"', { type: "variant", structured: false }), 'TO_JSON("V")');
    assert.equal(
      renderSql('"T"', { type: "timestamp_tz", structured: false }),
      `RTRIM(RTRIM(TO_VARCHAR("T", 'YYYY-MM-DD HH24:MI:SS.FF9'), '0'), '.') || TO_VARCHAR("T", ' TZH:TZM')`,
    );
  });

  test("the row hash length-prefixes every cell and marks NULL with N, over each hash column in order", () => {
    assert.equal(
      rowHashSql(["A", "A"], new Map([["A", text]])),
      `LEFT(MD5(IFF("A" IS NULL, 'N', OCTET_LENGTH("A") || ':' || "A") || IFF("A" IS NULL, 'N', OCTET_LENGTH("A") || ':' || "A")), 16)`,
    );
    assert.equal(rowHashSql([], new Map()), "LEFT(MD5(''), 16)");
  });

  test("a lookup passes every key in one JSON bind; a cursor position is padded back to the format it is parsed with", () => {
    const lookup = lookupSql(
      { from: "t", columns: ["ID"], orderBy: ["ID"] },
      [["a"], ['b"c']],
      new Map([["ID", text]]),
    );
    assert.deepEqual(lookup.binds, ['[["a"],["b\\"c"]]']);
    assert.equal(
      normalizeCursor("2024-01-15 10:00:00 +02:00", { type: "timestamp_tz", structured: false }),
      "2024-01-15 10:00:00.000000000 +02:00",
    );
    assert.equal(normalizeCursor("10:00:00.25", { type: "time", structured: false }), "10:00:00.250000000");
    assert.equal(normalizeCursor("2024-01-15", { type: "date", structured: false }), "2024-01-15");
    const page = changesSql(
      { from: "t", columns: ["ID", "U"], orderBy: ["ID"], cursor: "U", since: "2024-01-01 00:00:00.5", limit: 10 },
      new Map([["U", { type: "timestamp_ntz", structured: false }]]),
    );
    assert.deepEqual(page.binds, ["2024-01-01 00:00:00.500000000"]);
    assert.match(page.sql, /"U" >= TO_TIMESTAMP_NTZ\(\?, 'YYYY-MM-DD HH24:MI:SS.FF9'\)/);
    assert.match(page.sql, / ORDER BY "U" ASC, COLLATE\(TO_VARCHAR\("ID"\), 'utf8'\) ASC LIMIT 10$/);
  });
});
