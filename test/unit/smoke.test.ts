import assert from "node:assert/strict";
import { test } from "node:test";
import { createTestDatabase } from "../helpers/postgres.js";

test("the suite's PostgreSQL server answers in UTF-8", async () => {
  const db = await createTestDatabase();
  try {
    const { rows } = await db.query("select current_setting('server_encoding') as e");
    assert.equal(rows[0].e, "UTF8");
  } finally {
    await db.dispose();
  }
});
