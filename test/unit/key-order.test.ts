import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { compareCodePoints, compareKeys } from "../../src/state/key-order.js";

function byCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

test('compareCodePoints orders like UTF-8 bytes (PostgreSQL COLLATE "C")', () => {
  const ids = ["a", "B", "é", "_x", "10", "9", "Ä", "😀", "\uffff", "z", ""];
  const sorted = [...ids].sort(compareCodePoints);
  assert.deepEqual(sorted, [...ids].sort(byCodePoints));
  assert.deepEqual(sorted, ["", "10", "9", "B", "_x", "a", "z", "Ä", "é", "\uffff", "😀"]);
});

test("compareCodePoints agrees with UTF-8 byte order on arbitrary strings", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
      assert.equal(Math.sign(compareCodePoints(a, b)), Math.sign(byCodePoints(a, b)));
    }),
    { numRuns: 2000 },
  );
});

test("compareKeys orders by Company ID first", () => {
  assert.ok(compareKeys({ companyId: "a", groupId: "z" }, { companyId: "b", groupId: "a" }) < 0);
  assert.ok(compareKeys({ companyId: "a", groupId: "b" }, { companyId: "a", groupId: "a" }) > 0);
  assert.equal(compareKeys({ companyId: "a", groupId: "b" }, { companyId: "a", groupId: "b" }), 0);
});
