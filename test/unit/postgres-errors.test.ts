/** How PostgreSQL read failures are named: a socket error is a lost connection, whatever its code looks like. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { queryError, sqlState } from "../../connectors/postgres/errors.js";

const context = { what: 'table "t"', queryAt: -1, statementTimeout: 0 };

test("a socket error whose code looks like a SQLSTATE (EPIPE) is a lost connection, not a SQL error", () => {
  const epipe = Object.assign(new Error("write EPIPE"), { code: "EPIPE", errno: -32, syscall: "write" });
  assert.equal(sqlState(epipe), undefined);
  const error = queryError(epipe, context);
  assert.equal(error.code, "SOURCE_CONNECTION_LOST");
  assert.match(error.message, /lost the connection to PostgreSQL while reading table "t"/);
});

test("a server error keeps its SQLSTATE; admin shutdown (57P01) is a lost connection", () => {
  const terminated = Object.assign(new Error("terminating connection due to administrator command"), {
    code: "57P01",
    severity: "FATAL",
  });
  assert.equal(sqlState(terminated), "57P01");
  assert.equal(queryError(terminated, context).code, "SOURCE_CONNECTION_LOST");
});
