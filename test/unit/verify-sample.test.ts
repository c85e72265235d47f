import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type SnapshotEntry, SnapshotWriter } from "../../src/state/snapshot-file.js";
import { pickKeys, sampleSnapshot } from "../../src/verify/sample.js";

const dir = mkdtempSync(join(tmpdir(), "gs-verify-sample-"));

async function snapshot(name: string, count: number): Promise<string> {
  const path = join(dir, name);
  const writer = await SnapshotWriter.create(path, { properties: ["p"], hierarchical: false });
  for (let i = 0; i < count; i++) {
    const entry: SnapshotEntry = {
      companyId: "",
      groupId: `g${String(i).padStart(5, "0")}`,
      rowHash: "r".repeat(8),
      hashes: ["h".repeat(8)],
    };
    await writer.add(entry);
  }
  await writer.finish();
  return path;
}

test("reservoir sample: the requested size, in key order, every entry equally likely", async () => {
  const path = await snapshot("many.bin", 2000);
  let seed = 42;
  // A small deterministic generator (LCG), so the test cannot flake.
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n); // the high bits: an LCG's low bits repeat quickly
  };
  const hits = new Array(2000).fill(0);
  for (let round = 0; round < 200; round++) {
    const sample = await sampleSnapshot(path, 50, random);
    assert.equal(sample.entries.length, 50);
    assert.equal(sample.total, 2000);
    const ids = sample.entries.map((entry) => entry.groupId);
    assert.deepEqual(ids, [...ids].sort(), "key order");
    assert.equal(new Set(ids).size, 50, "no entry twice");
    for (const id of ids) hits[Number(id.slice(1))]++;
  }
  // 200 rounds × 50 of 2000: 5 expected hits per entry. The first and last quarters get about the same share.
  const quarter = (q: number) => hits.slice(q * 500, (q + 1) * 500).reduce((a: number, b: number) => a + b, 0);
  for (let q = 0; q < 4; q++) assert.ok(Math.abs(quarter(q) - 2500) < 300, `quarter ${q}: ${quarter(q)}`);
});

test("a sample larger than the state takes every entry; --keys picks exactly those, and names unknown ones", async () => {
  const path = await snapshot("few.bin", 3);
  assert.deepEqual(
    (await sampleSnapshot(path, 10)).entries.map((entry) => entry.groupId),
    ["g00000", "g00001", "g00002"],
  );
  const picked = await pickKeys(path, ["g00002", "nope", "g00000"]);
  assert.deepEqual(
    picked.entries.map((entry) => entry.groupId),
    ["g00000", "g00002"],
  );
  assert.deepEqual(picked.unknownKeys, ["nope"]);
});
