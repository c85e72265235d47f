import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type Checkpoint, readCheckpoint, writeCheckpoint } from "../../src/state/checkpoint.js";
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

async function readAll(path: string): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  for await (const block of readSnapshot(path)) out.push(...block.map(plainEntry));
  return out;
}

/** A sync's state folder holding one snapshot of `entries` and the checkpoint naming it (what a finished run leaves). */
async function previousState(properties: Checkpoint["properties"], entries: SnapshotEntry[]) {
  const dir = mkdtempSync(join(tmpdir(), "gs-recover-"));
  const paths = syncStatePaths(dir, "s");
  mkdirSync(paths.dir);
  const writer = await SnapshotWriter.create(paths.snapshot("snapshot-a.bin"), {
    properties: properties.map((property) => property.name),
    hierarchical: false,
  });
  for (const entry of entries) await writer.add(entry);
  await writer.finish();
  const checkpoint: Checkpoint = {
    format: "groupsync-checkpoint",
    version: 1,
    identity,
    snapshot: {
      file: "snapshot-a.bin",
      groups: entries.length,
      bytes: statSync(paths.snapshot("snapshot-a.bin")).size,
    },
    properties,
    updated_at: "2026-01-01T00:00:00Z",
  };
  await writeCheckpoint(paths.checkpoint, checkpoint);
  return { paths, checkpoint };
}

test("a journal left by a killed run marks the touched properties unknown, adds groups it may have created, and is removed", async () => {
  const { paths, checkpoint } = await previousState(
    [
      { name: "a", definition: "a||text", retired: false, groups_set: 2 },
      { name: "b", definition: "b||text", retired: false, groups_set: 1 },
    ],
    [
      { companyId: "", groupId: "k1", rowHash: h("r1"), hashes: [h("a1"), h("b1")] },
      { companyId: "", groupId: "k3", rowHash: h("r3"), hashes: [h("a3"), null] },
    ],
  );

  // The crashed run's layout had a new property "c" and no longer "b".
  const journal = new Journal(paths.dir, "run2", { properties: ["a", "c"], hierarchical: false });
  await journal.record({ companyId: "", groupId: "k1" }, [1]);
  await journal.record({ companyId: "", groupId: "k2" }, [0, 1]);
  await journal.nextSection();
  await journal.record({ companyId: "", groupId: "k3" }, "all");
  await journal.durable();
  // Simulate the crash: the last section's file ends mid-block.
  const files = readdirSync(paths.dir).filter((name) => name.startsWith("journal-"));
  assert.equal(files.length, 2);
  appendFileSync(join(paths.dir, files[1]!), Buffer.from([1, 2, 3]));

  const result = await recoverJournals({ paths, checkpoint, identity, hierarchical: false, runId: "run3" });
  assert.equal(result.recovered, 3);
  assert.deepEqual(
    result.checkpoint!.properties.map((p) => [p.name, p.definition]),
    [
      ["a", "a||text"],
      ["b", "b||text"],
      ["c", "(recovered)"],
    ],
  );
  const entries = await readAll(paths.snapshot(result.checkpoint!.snapshot.file));
  assert.deepEqual(entries, [
    { companyId: "", groupId: "k1", rowHash: UNKNOWN_HASH, hashes: [h("a1"), h("b1"), UNKNOWN_HASH] },
    { companyId: "", groupId: "k2", rowHash: UNKNOWN_HASH, hashes: [UNKNOWN_HASH, null, UNKNOWN_HASH] },
    { companyId: "", groupId: "k3", rowHash: UNKNOWN_HASH, hashes: [UNKNOWN_HASH, null, UNKNOWN_HASH] },
  ]);
  assert.deepEqual(await readCheckpoint(paths.checkpoint), result.checkpoint);
  assert.ok(!existsSync(paths.snapshot("snapshot-a.bin")), "the old snapshot is replaced");
  assert.equal(readdirSync(paths.dir).filter((name) => name.startsWith("journal-")).length, 0, "journals removed");
  const again = await recoverJournals({
    paths,
    checkpoint: result.checkpoint,
    identity,
    hierarchical: false,
    runId: "run4",
  });
  assert.equal(again.recovered, 0);
});

test("items a killed run's $union may have added are recorded, so a later run can $remove them", async () => {
  const { paths, checkpoint } = await previousState(
    [
      { name: "name", definition: "name||text", retired: false, groups_set: 1 },
      { name: "tags", definition: "tags|list|array|union", retired: false, groups_set: 1 },
    ],
    [{ companyId: "", groupId: "k1", rowHash: h("r1"), hashes: [h("n1"), h("t1")], items: [null, '["a"]'] }],
  );
  const journal = new Journal(paths.dir, "run2", { properties: ["name", "tags"], hierarchical: false });
  await journal.record({ companyId: "", groupId: "k1" }, [1], [null, '["a","b",7]']);
  await journal.record({ companyId: "", groupId: "k2" }, [0, 1], [null, '["c"]']);
  await journal.durable();

  const result = await recoverJournals({ paths, checkpoint, identity, hierarchical: false, runId: "run3" });
  const entries = await readAll(paths.snapshot(result.checkpoint!.snapshot.file));
  assert.deepEqual(entries, [
    {
      companyId: "",
      groupId: "k1",
      rowHash: UNKNOWN_HASH,
      hashes: [h("n1"), UNKNOWN_HASH],
      items: [null, '["a","b",7]'],
    },
    {
      companyId: "",
      groupId: "k2",
      rowHash: UNKNOWN_HASH,
      hashes: [UNKNOWN_HASH, UNKNOWN_HASH],
      items: [null, '["c"]'],
    },
  ]);
});
