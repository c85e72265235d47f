import assert from "node:assert/strict";
import { test } from "node:test";
import { changesSql, countSql, keyCheckSql, readSql, watermarkSql } from "../../connectors/postgres/sql.js";
import { SourceError } from "../../src/errors.js";

const spec = { from: "t", columns: ["company", "id", "updated_at"], orderBy: ["company", "id"] };

test("readSql pushes --where and a resume key into the SQL, as parameters where they are values", () => {
  const statement = readSql({ ...spec, where: "plan = 'x' -- enterprise only\n;", after: ["acme", "a'1"] });
  assert.equal(
    statement.sql,
    `SELECT "company", "id", "updated_at" FROM "t" WHERE (\nplan = 'x' -- enterprise only\n) AND (("company")::text COLLATE "C", ("id")::text COLLATE "C") > ($1, $2) ORDER BY ("company")::text COLLATE "C" NULLS LAST, ("id")::text COLLATE "C" NULLS LAST`,
  );
  assert.deepEqual(statement.values, ["acme", "a'1"]);
  assert.equal(readSql(spec).values, undefined);
  assert.throws(() => readSql({ ...spec, after: ["only-one"] }), SourceError);
  assert.equal(countSql({ ...spec, after: ["a", "b"] }).sql.startsWith('SELECT count(*) FROM "t" WHERE ('), true);
});

test("changesSql: >= the watermark, <= the cap, after the keyset position, ordered by (cursor, key), LIMIT not OFFSET", () => {
  const statement = changesSql({
    ...spec,
    cursor: "updated_at",
    since: "2024-01-15 10:00:00.5+00",
    until: "2024-01-16 00:00:00+00",
    position: { cursor: "2024-01-15 11:00:00+00", key: ["acme", "a1"] },
    limit: 500,
  });
  assert.equal(
    statement.sql,
    `SELECT "company", "id", "updated_at" FROM "t" WHERE ("updated_at") IS NOT NULL AND "company" IS NOT NULL AND "id" IS NOT NULL AND ("updated_at") >= $1 AND ("updated_at") <= $2::timestamptz AND (("updated_at"), ("company")::text COLLATE "C", ("id")::text COLLATE "C") > ($3, $4, $5) ORDER BY ("updated_at"), ("company")::text COLLATE "C", ("id")::text COLLATE "C" LIMIT 500`,
  );
  assert.deepEqual(statement.values, [
    "2024-01-15 10:00:00.5+00",
    "2024-01-16 00:00:00+00",
    "2024-01-15 11:00:00+00",
    "acme",
    "a1",
  ]);
  assert.doesNotMatch(statement.sql, /OFFSET/);
  assert.throws(() => changesSql({ ...spec, cursor: "updated_at", limit: 0 }), SourceError);
});

test("watermarkSql and keyCheckSql", () => {
  const watermark = watermarkSql({ ...spec, cursor: "updated_at", until: "2024-01-16 00:00:00+00", where: "x > 1" });
  assert.match(
    watermark.sql,
    /^SELECT \(max\("updated_at"\)\)::text FROM "t" WHERE .* <= \$1::timestamptz AND \(\nx > 1\n\)$/,
  );
  const check = keyCheckSql({ query: "select 1 as id", columns: ["id"], orderBy: ["id"] });
  assert.match(check.sql, /GROUP BY \("id"\)::text\) AS k$/);
  assert.match(check.sql, /\(\nselect 1 as id\n\) AS src/);
});
