import assert from "node:assert/strict";
import { test } from "node:test";
import { planLayout } from "../../src/diff/layout.js";
import { UNKNOWN_HASH } from "../../src/state/snapshot-file.js";

const prev = [
  { name: "plan", definition: "plan||text", retired: false, groups_set: 3 },
  { name: "arr", definition: "arr_usd|number|decimal", retired: false, groups_set: 2 },
  { name: "gone", definition: "gone||text", retired: false, groups_set: 1 },
  { name: "never", definition: "never||text", retired: false, groups_set: 0 },
];

test("planLayout: same mapping translates entries unchanged", () => {
  const layout = planLayout(
    prev.map(({ name, definition }) => ({ name, definition })),
    prev,
  );
  assert.equal(layout.current, 4);
  assert.deepEqual(layout.translate(["p", "a", null, null]), ["p", "a", null, null]);
});

test("planLayout: added, removed, changed and reordered properties", () => {
  const layout = planLayout(
    [
      { name: "arr", definition: "arr_usd|string|decimal" }, // type changed
      { name: "new", definition: "new||text" },
      { name: "plan", definition: "plan||text" },
    ],
    prev,
  );
  assert.deepEqual(
    layout.properties.map((p) => [p.name, p.retired]),
    [
      ["arr", false],
      ["new", false],
      ["plan", false],
      ["gone", true], // still set somewhere: kept until its $unset is acknowledged
    ],
  );
  assert.equal(layout.current, 3);
  assert.deepEqual(layout.translate(["p", "a", "g", null]), [UNKNOWN_HASH, null, "p", "g"]);
  assert.deepEqual(layout.translate(["p", null, null, null]), [null, null, "p", null]);
});
