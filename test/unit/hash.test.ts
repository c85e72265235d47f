/** The property and row hashes against a straightforward reference (MD5 objects fed piece by piece). */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import fc from "fast-check";
import { propertyHash, rowHash } from "../../src/diff/hash.js";

function referenceRowHash(cells: readonly (string | null)[]): string {
  const md5 = createHash("md5");
  for (const cell of cells) {
    md5.update(cell === null ? "N" : `${Buffer.byteLength(cell, "utf8")}:`, "utf8");
    if (cell !== null) md5.update(cell, "utf8");
  }
  return md5.digest("binary").slice(0, 8);
}

test("propertyHash is the first 8 bytes of MD5 over the UTF-8 text", () => {
  // md5("abc") = 900150983cd24fb0d6963f7d28e17f72
  assert.equal(Buffer.from(propertyHash("abc"), "latin1").toString("hex"), "900150983cd24fb0");
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), (text) => {
      assert.equal(propertyHash(text), createHash("md5").update(text, "utf8").digest("binary").slice(0, 8));
    }),
  );
});

test("rowHash equals the length-prefixed MD5 the SQL push-down computes", () => {
  // md5('5:été' || 'N' || '0:') as PostgreSQL computes it.
  assert.equal(rowHash(["été", null, ""]), referenceRowHash(["été", null, ""]));
  assert.equal(
    Buffer.from(rowHash(["été", null, ""]), "latin1").toString("hex"),
    createHash("md5").update("5:étéN0:", "utf8").digest("hex").slice(0, 16),
  );
  fc.assert(
    fc.property(fc.array(fc.option(fc.string({ unit: "grapheme" }), { nil: null }), { maxLength: 12 }), (cells) => {
      assert.equal(rowHash(cells), referenceRowHash(cells));
    }),
  );
});

test("the JavaScript MD5 of propertyHash equals node:crypto's across block boundaries, surrogates and the native cut-over", () => {
  // Any UTF-16 code unit, lone surrogates included.
  const utf16 = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));
  const native = (text: string) => createHash("md5").update(text, "utf8").digest("binary").slice(0, 8);
  // Every length around the 55/56/64-byte padding edges and past the cut-over to node:crypto, in 1-, 2-, 3- and
  // 4-byte UTF-8 characters, and lone surrogates (encoded as U+FFFD by Buffer, node:crypto and md5.ts alike).
  for (const unit of ["a", "é", "€", "😀", "\ud800", "\udc00", "x\ud83d"]) {
    for (let length = 0; length <= 140; length++) {
      const text = unit.repeat(length);
      assert.equal(propertyHash(text), native(text), `${JSON.stringify(unit)} × ${length}`);
    }
  }
  fc.assert(
    fc.property(
      fc.oneof(fc.string({ unit: "binary" }), fc.string({ unit: utf16 }), fc.string({ unit: "binary-ascii" })),
      (text) => {
        assert.equal(propertyHash(text), native(text));
      },
    ),
    { numRuns: 5000 },
  );
});
