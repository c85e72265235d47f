import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { planLayout } from "../../src/diff/layout.js";
import { type Checkpoint, writeCheckpoint } from "../../src/state/checkpoint.js";
import { Journal } from "../../src/state/journal.js";
import { recoverJournals } from "../../src/state/recover.js";
import {
  plainEntry,
  readSnapshot,
  type SnapshotEntry,
  SnapshotWriter,
  UNKNOWN_HASH,
} from "../../src/state/snapshot-file.js";
import { syncStatePaths } from "../../src/state/state-dir.js";

const identity = { sync: "s", group_key: "company", hierarchical: false, destination: "mixpanel:x" };
const h = (s: string) => s.padEnd(8, "_");
const key = (groupId: string) => ({ companyId: "", groupId });

async function readAll(path: string): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  for await (const block of readSnapshot(path)) out.push(...block.map(plainEntry));
  return out;
}

test("a killed run's acknowledged prefix is kept up to its last durable key; the journal covers the rest", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gs-prefix-"));
  const paths = syncStatePaths(dir, "s");
  mkdirSync(paths.dir);
  const previous = await SnapshotWriter.create(paths.snapshot("snapshot-a.bin"), {
    properties: ["a"],
    hierarchical: false,
  });
  for (const id of ["k1", "k2", "k3", "k5"]) {
    await previous.add({ ...key(id), rowHash: h(`r${id}`), hashes: [h(`a-${id}`)] });
  }
  await previous.finish();
  const checkpoint: Checkpoint = {
    format: "groupsync-checkpoint",
    version: 1,
    identity,
    snapshot: { file: "snapshot-a.bin", groups: 4, bytes: statSync(paths.snapshot("snapshot-a.bin")).size },
    properties: [{ name: "a", definition: "a||text", retired: false, groups_set: 4 }],
    updated_at: "2026-01-01T00:00:00Z",
  };
  await writeCheckpoint(paths.checkpoint, checkpoint);

  // The killed run added property "b"; it settled k1 (sent a and b) and k2 (unchanged), skipped k3 (left the source,
  // a mirror delete candidate), and had k4 (new) and k5 in flight. Its prefix was made durable after k2.
  const layout = planLayout(
    [
      { name: "a", definition: "a||text" },
      { name: "b", definition: "b||text" },
    ],
    checkpoint.properties,
  );
  const header = { properties: ["a", "b"], hierarchical: false };
  const prefixPath = paths.snapshot("snapshot-run2.bin.tmp");
  const prefix = await SnapshotWriter.create(prefixPath, header);
  await prefix.add({ ...key("k1"), rowHash: h("new1"), hashes: [h("a1'"), h("b1")] });
  await prefix.add({ ...key("k2"), rowHash: h("rk2"), hashes: [h("a-k2"), null] });
  await prefix.durable();
  // Written after the last progress commit: not trusted.
  await prefix.add({ ...key("k4"), rowHash: h("new4"), hashes: [h("a4"), h("b4")] });
  await prefix.durable();
  appendFileSync(prefixPath, Buffer.from([9, 9])); // killed mid-write
  const journal = new Journal(paths.dir, "run2", header);
  await journal.record(key("k1"), [0, 1]);
  await journal.record(key("k4"), [0, 1]);
  await journal.record(key("k5"), [1]);
  await journal.durable();

  const result = await recoverJournals({
    paths,
    checkpoint,
    identity,
    hierarchical: false,
    runId: "run3",
    prefix: { path: prefixPath, through: key("k2"), properties: layout.properties, translate: layout.translate },
  });
  assert.equal(result.kept, 2);
  assert.equal(result.recovered, 2, "k4 and k5; k1's journal entry is settled by the prefix");
  assert.deepEqual(
    result.checkpoint!.properties.map((p) => [p.name, p.definition, p.groups_set]),
    [
      ["a", "a||text", 5],
      ["b", "b||text", 3],
    ],
  );
  assert.deepEqual(await readAll(paths.snapshot(result.checkpoint!.snapshot.file)), [
    { ...key("k1"), rowHash: h("new1"), hashes: [h("a1'"), h("b1")] },
    { ...key("k2"), rowHash: h("rk2"), hashes: [h("a-k2"), null] },
    { ...key("k3"), rowHash: h("rk3"), hashes: [h("a-k3"), null] },
    { ...key("k4"), rowHash: UNKNOWN_HASH, hashes: [UNKNOWN_HASH, UNKNOWN_HASH] },
    { ...key("k5"), rowHash: UNKNOWN_HASH, hashes: [h("a-k5"), UNKNOWN_HASH] },
  ]);
  assert.ok(!existsSync(prefixPath), "the prefix is folded in and removed");
  assert.ok(!existsSync(paths.snapshot("snapshot-a.bin")));
});
