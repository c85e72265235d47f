import assert from "node:assert/strict";
import { test } from "node:test";
import { diffGroup, type PropertyRule } from "../../src/diff/diff-group.js";

// Hashes are opaque strings here; "a1" stands for the hash of some value.
const cases: {
  name: string;
  held: (string | null)[] | undefined;
  current: (string | null)[];
  set: number[];
  unset: number[];
}[] = [
  {
    name: "new group sets its non-null properties only",
    held: undefined,
    current: ["a", null, "c"],
    set: [0, 2],
    unset: [],
  },
  {
    name: "new group with every property null sends nothing",
    held: undefined,
    current: [null, null],
    set: [],
    unset: [],
  },
  { name: "unchanged group sends nothing", held: ["a", null, "c"], current: ["a", null, "c"], set: [], unset: [] },
  {
    name: "a changed property is set, the rest left alone",
    held: ["a", "b", "c"],
    current: ["a", "B", "c"],
    set: [1],
    unset: [],
  },
  { name: "a property that became null is unset", held: ["a", "b"], current: ["a", null], set: [], unset: [1] },
  { name: "null that stays null is not unset", held: ["a", null], current: ["a", null], set: [], unset: [] },
  {
    name: "a property added to the mapping (held shorter) sends just it",
    held: ["a"],
    current: ["a", "n"],
    set: [1],
    unset: [],
  },
  { name: "a retired property still set is unset", held: ["a", "old"], current: ["a"], set: [], unset: [1] },
  { name: "a retired property already unset is left alone", held: ["a", null], current: ["a"], set: [], unset: [] },
  { name: "set and unset together", held: ["a", "b", "c"], current: ["x", null, "c"], set: [0], unset: [1] },
];

for (const c of cases) {
  test(`diffGroup: ${c.name}`, () => {
    const diff = diffGroup(c.held, c.current);
    assert.deepEqual(diff.set, c.set);
    assert.deepEqual(diff.unset, c.unset);
  });
}

test("a backfill (setAll) sets every non-null property, unchanged ones too, and still unsets", () => {
  assert.deepEqual(diffGroup(["a", "b", null, "d"], ["a", null, "c", "d"], { setAll: true }), {
    setOnce: [],
    union: [],
    forget: [],
    set: [0, 2, 3],
    unset: [1],
  });
  assert.deepEqual(
    diffGroup(["a", "x"], ["a"], { setAll: true }),
    {
      setOnce: [],
      union: [],
      forget: [],
      set: [0],
      unset: [1],
    },
    "retired property",
  );
  assert.deepEqual(diffGroup(undefined, [null, null], { setAll: true }), {
    setOnce: [],
    union: [],
    forget: [],
    set: [],
    unset: [],
  });
});

test("per-property rules: set_once, nulls keep, union, and retired properties that must not be unset", () => {
  const once = { op: "set_once", nulls: "unset", keepRemoved: false } as const;
  const keep = { op: "set", nulls: "keep", keepRemoved: false } as const;
  const union = { op: "union", nulls: "unset", keepRemoved: false } as const;
  const unionKeep = { op: "union", nulls: "unset", keepRemoved: true } as const;
  const rules: PropertyRule[] = [once, keep, union];
  const diff = (held: (string | null)[] | undefined, current: (string | null)[], more = rules, setAll = false) => {
    const { set, setOnce, unset, union, forget } = diffGroup(held, current, { rules: more, setAll });
    return { set, setOnce, unset, union, forget };
  };
  const none = { set: [], setOnce: [], unset: [], union: [], forget: [] };
  assert.deepEqual(diff(undefined, ["a", "b", "c"]), { ...none, set: [1], setOnce: [0], union: [2] }, "new group");
  assert.deepEqual(diff(["a", "b", "c"], ["A", "b", "c"]), none, "set_once is never overwritten");
  assert.deepEqual(diff(["a", "b", "c"], [null, "b", "c"]), none, "set_once is never unset");
  assert.deepEqual(diff([null, "b", "c"], ["a", "b", "c"]), { ...none, setOnce: [0] }, "set_once once it has a value");
  assert.deepEqual(diff(["a", "b", "c"], ["a", null, "c"]), none, "nulls: keep never unsets");
  assert.deepEqual(diff(["a", "b", "c"], ["a", "B", "C"]), { ...none, set: [1], union: [2] }, "changed list");
  assert.deepEqual(diff(["a", "b", "c"], ["a", "b", null]), { ...none, union: [2] }, "null list: remove the items");
  assert.deepEqual(diff(["a", "b", "c"], ["a", "b", "c"], rules, true), {
    ...none,
    setOnce: [0],
    set: [1],
    union: [2],
  });
  const retired = [keep, once, keep, union, unionKeep];
  assert.deepEqual(
    diff(["k", "o", "x", "u", "v"], ["k"], retired),
    { ...none, forget: [1, 2, 4], union: [3] },
    "retired: set_once and nulls keep are forgotten, union items removed",
  );
});
