/** The row text of PostgreSQL's `record_out`, which the hash push-down hashes (checked against a server in hashed-read). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { recordHash, recordText } from "../../src/diff/record-hash.js";

test("cells are quoted exactly when record_out quotes them", () => {
  assert.equal(recordText([]), "()");
  assert.equal(recordText([null]), "()");
  assert.equal(recordText([""]), '("")');
  assert.equal(recordText([null, null]), "(,)");
  assert.equal(recordText(["a b", 'x"y', "b\\c", "plain", "(p)", "a,b"]), '("a b","x""y","b\\\\c",plain,"(p)","a,b")');
  assert.equal(recordText(["tab\there", "nl\nx", "nbsp\u00a0x", "ü中😀"]), '("tab\there","nl\nx",nbsp\u00a0x,ü中😀)');
});

test("NULL, the empty string and their neighbours hash differently", () => {
  const hashes = [[null, "a"], ["", "a"], [",a"], ["a", null], [null, null], [null]].map((cells) => recordHash(cells));
  assert.equal(new Set(hashes).size, hashes.length);
  assert.equal(recordHash(["x"]).length, 8);
});
