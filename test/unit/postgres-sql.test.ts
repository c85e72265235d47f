import assert from "node:assert/strict";
import { test } from "node:test";
import { parseArrayText } from "../../connectors/postgres/array-text.js";
import { describeSql, lookupSql, quoteIdent, quoteRelation, readSql } from "../../connectors/postgres/sql.js";
import { SourceError } from "../../src/errors.js";

test("quoteIdent quotes exactly and doubles quotes", () => {
  assert.equal(quoteIdent("id"), '"id"');
  assert.equal(quoteIdent('a"b'), '"a""b"');
  assert.equal(quoteIdent('x"; DROP TABLE t; --'), '"x""; DROP TABLE t; --"');
  assert.throws(() => quoteIdent(""), SourceError);
});

test("quoteRelation folds plain parts to lower case and keeps quoted parts as written", () => {
  const cases: [string, string][] = [
    ["companies", '"companies"'],
    ["Analytics.Dim_Companies", '"analytics"."dim_companies"'],
    ['"Analytics"."Mixed.Case"', '"Analytics"."Mixed.Case"'],
    ['analytics."Say ""hi"""', '"analytics"."Say ""hi"""'],
    ["db.schema.t", '"db"."schema"."t"'],
    ["  spaced . t ", '"spaced"."t"'],
    ["t; drop table x", '"t; drop table x"'],
  ];
  for (const [from, want] of cases) assert.equal(quoteRelation(from), want, from);
  for (const bad of ["", "a..b", '"open', '"x"y', "a.b.c.d", 'a"b', '""']) {
    assert.throws(
      () => quoteRelation(bad),
      (error: SourceError) => error.code === "SOURCE_RELATION_INVALID",
      bad,
    );
  }
});

test("readSql selects the quoted columns and orders by their text in code-point order, NULLs last", () => {
  const { sql, queryAt } = readSql({ from: "a.b", columns: ["id", "Name"], orderBy: ["company", "id"] });
  assert.equal(
    sql,
    'SELECT "id", "Name" FROM "a"."b" ORDER BY ("company")::text COLLATE "C" NULLS LAST, ("id")::text COLLATE "C" NULLS LAST',
  );
  assert.equal(queryAt, -1);
});

test("a query is wrapped as a sub-select; positions map back into it", () => {
  const statement = readSql({ query: "select 1 as id -- note\n;  ", columns: ["id"], orderBy: ["id"] });
  assert.equal(
    statement.sql,
    'SELECT "id" FROM (\nselect 1 as id -- note\n) AS src ORDER BY ("id")::text COLLATE "C" NULLS LAST',
  );
  assert.equal(statement.query, "select 1 as id -- note");
  // PostgreSQL positions are 1-based characters: the query's first character is at queryAt + 1.
  assert.equal([...statement.sql][statement.queryAt], "s");
  const described = describeSql({ query: "select 'é' as x" });
  assert.equal(described.sql, "SELECT * FROM (\nselect 'é' as x\n) AS src LIMIT 0");
  assert.equal([...described.sql][described.queryAt], "s");
  assert.throws(() => readSql({ from: "t", query: "select 1", columns: ["id"], orderBy: [] }), SourceError);
  assert.throws(() => describeSql({}), SourceError);
});

test("parseArrayText reads PostgreSQL's array output", () => {
  const cases: [string, unknown][] = [
    ["{}", []],
    ["{1,2,3}", ["1", "2", "3"]],
    ['{NULL,null,"NULL",""}', [null, null, "NULL", ""]],
    ['{"a,b","c\\"d","e\\\\f","{g}"," h "}', ["a,b", 'c"d', "e\\f", "{g}", " h "]],
    [
      "{{1,2},{3,4}}",
      [
        ["1", "2"],
        ["3", "4"],
      ],
    ],
    ["{{{a}},{{NULL}}}", [[["a"]], [[null]]]],
    ["[0:1]={7,8}", ["7", "8"]],
    ["[1:1][-1:0]={{x,y}}", [["x", "y"]]],
    ["{ 1 , 2 }", ["1", "2"]],
    ["{a\\,b}", ["a,b"]],
    ["{\\NULL}", ["NULL"]],
    ["{€,😀}", ["€", "😀"]],
    // Plain elements are sliced; an escape anywhere takes the character-by-character path.
    ['{"a",b c ,"d\\"e",nULl,NULLS}', ["a", "b c", 'd"e', null, "NULLS"]],
    ["{a\\ ,\\ b}", ["a ", " b"]],
  ];
  for (const [text, want] of cases) assert.deepEqual(parseArrayText(text), want, text);
  assert.deepEqual(parseArrayText("{(1,1),(0,0);(2,2),(1,1)}", ";"), ["(1,1),(0,0)", "(2,2),(1,1)"]);
  for (const bad of ["", "1,2", "{1,2", "{1,,2}", '{"a}', "{1}x", '{a"b}', "[0:1]{1}"]) {
    assert.throws(() => parseArrayText(bad), /malformed array text/, bad);
  }
});

test("lookups compare text key columns as they are (an index can serve them), others by their output text", () => {
  const spec = { from: "s.t", columns: ["company", "id", "n"], orderBy: ["company", "id"] };
  const keys = [
    ["c1", "a"],
    ["c2", "b"],
  ];
  const plain = lookupSql(spec, keys, new Set(["company", "id"]));
  assert.match(plain.sql, /WHERE \("company", "id"\) IN \(SELECT \* FROM unnest\(\$1::text\[\], \$2::text\[\]\)\)/);
  assert.deepEqual(plain.values, [
    ["c1", "c2"],
    ["a", "b"],
  ]);
  const rendered = lookupSql({ ...spec, orderBy: ["id"] }, [["1"]]);
  assert.match(rendered.sql, /WHERE format\('%s', "id"\) = ANY\(\$1::text\[\]\)/);
});
