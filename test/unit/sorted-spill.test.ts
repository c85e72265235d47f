import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { SourceGroup } from "../../src/engine/read-groups.js";
import { SortedSpill, type StagedRow } from "../../src/engine/sorted-spill.js";
import { compareKeys } from "../../src/state/key-order.js";

async function collect(spill: SortedSpill): Promise<SourceGroup[]> {
  const out: SourceGroup[] = [];
  for await (const chunk of spill.groups()) out.push(...chunk);
  return out;
}

const row = (groupId: string, page: number, name: string, companyId = ""): StagedRow => ({
  key: { companyId, groupId },
  cells: [name],
  page,
});

for (const maxRows of [1000, 3]) {
  test(`rows staged in cursor order come back in key order, one group per key (${maxRows} rows in memory)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "gs-spill-"));
    const spill = new SortedSpill((n) => join(dir, `stage-${n}.tmp`), maxRows);
    const rows = [
      row("b", 0, "b0"),
      row("😀", 0, "emoji"), // above U+FFFF: after U+FFFD in code-point order
      row("\uFFFD", 0, "replacement"),
      row("a", 0, "a0"),
      row("dup", 0, "one"),
      row("dup", 0, "two"),
      row("b", 2, "b2 (moved ahead while paging)"),
      row("c", 1, "c1"),
      row("b", 1, "b1"),
      row("x", 0, "x", "acme"),
    ];
    for (const r of rows) await spill.add(r);
    const groups = await collect(spill);
    assert.deepEqual(
      groups.map((g) => [g.key.companyId, g.key.groupId, g.cells[0], g.copies]),
      [
        ["", "a", "a0", 1],
        ["", "b", "b2 (moved ahead while paging)", 1],
        ["", "c", "c1", 1],
        ["", "dup", "one", 2], // two rows with one Group ID in one page: rejected as a duplicate
        ["", "\uFFFD", "replacement", 1],
        ["", "😀", "emoji", 1],
        ["acme", "x", "x", 1],
      ],
    );
    for (let i = 1; i < groups.length; i++) assert.ok(compareKeys(groups[i - 1]!.key, groups[i]!.key) < 0);
    assert.equal(readdirSync(dir).length > 0, maxRows === 3, "spills to disk only beyond maxRows");
    await spill.dispose();
    assert.equal(readdirSync(dir).length, 0);
    assert.ok(existsSync(dir));
  });
}

test("the user a row names survives the spill", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gs-spill-"));
  const spill = new SortedSpill((n) => join(dir, `stage-${n}.tmp`), 1);
  await spill.add({ key: { companyId: "", groupId: "a", userId: "u1" }, cells: [null], page: 0 });
  await spill.add({ key: { companyId: "", groupId: "b" }, cells: ["x"], page: 0 });
  const groups = await collect(spill);
  assert.deepEqual(groups[0]?.key, { companyId: "", groupId: "a", userId: "u1" });
  assert.deepEqual(groups[0]?.cells, [null]);
  assert.deepEqual(groups[1]?.key, { companyId: "", groupId: "b" });
  await spill.dispose();
});
