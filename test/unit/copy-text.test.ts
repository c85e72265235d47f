/** PostgreSQL's COPY text format, as the hash pass reads it (checked against a server in hashed-read.test.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { copyRows, copyValue } from "../../src/copy-text.js";

async function* chunks(...parts: Buffer[]) {
  yield* parts;
}

async function all(source: AsyncIterable<unknown[]>) {
  const out: unknown[][] = [];
  for await (const batch of source) out.push(batch);
  return out;
}

test("values: NULL, escapes and plain text", () => {
  assert.equal(copyValue("\\N"), null);
  assert.equal(copyValue("N"), "N");
  assert.equal(copyValue(""), "");
  assert.equal(copyValue("a\\tb\\nc\\\\d\\re\\bf\\fg\\vh"), "a\tb\nc\\d\re\bf\fg\vh");
  assert.equal(copyValue("\\x41\\101\\N\\\\N"), "AAN\\N");
});

test("rows split across chunks anywhere, even inside a UTF-8 character, in batches", async () => {
  const text = Buffer.from("a\t1\n\\N\tü😀\nx\\ty\t\\\\N\n", "utf8");
  for (let cut = 0; cut <= text.length; cut++) {
    const batches = await all(copyRows(chunks(text.subarray(0, cut), text.subarray(cut)), 2));
    assert.deepEqual(batches, [
      [
        ["a", "1"],
        [null, "ü😀"],
      ],
      [["x\ty", "\\N"]],
    ]);
  }
});

test("output that ends in the middle of a row is an error, not a short read", async () => {
  await assert.rejects(all(copyRows(chunks(Buffer.from("a\t1\nb\t")), 10)), /middle of a row/);
});
