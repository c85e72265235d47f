import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { findJournals, Journal } from "../../src/state/journal.js";
import { readSnapshot } from "../../src/state/snapshot-file.js";
import { slowSync, until } from "../helpers/slow-sync.js";

// Files under `dir` this process has open (Linux): other tests' descriptors do not count.
function openFiles(dir: string): number {
  let count = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

test("a journal closes each section's file: none is left for the garbage collector", async (t) => {
  if (!existsSync("/proc/self/fd")) return t.skip("needs /proc/self/fd to count open files");
  const dir = mkdtempSync(join(tmpdir(), "gs-journal-"));
  const journal = new Journal(dir, "run", {
    properties: ["a"],
    hierarchical: false,
  });
  await journal.record({ companyId: "", groupId: "k1" }, [0]);
  await journal.nextSection();
  await journal.record({ companyId: "", groupId: "k0" }, "all");
  await journal.durable();
  assert.equal(openFiles(dir), 1, "only the current section's file is open");
  await journal.remove();
  assert.equal(openFiles(dir), 0);
});

test("a record made while the journal fsyncs is appended at once, and durable() covers it without a queue of fsyncs", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gs-journal-"));
  const { control, release } = await slowSync(t, dir);
  const journal = new Journal(dir, "run", { properties: ["a", "b"], hierarchical: false });
  await journal.record({ companyId: "", groupId: "k000" }, [0]);
  // A batch is about to be sent: its durable() hangs in fsync.
  const first = journal.durable();
  await until(() => control.calls === 1, "the journal fsyncs");
  // The engine goes on with the next groups meanwhile: no record waits, and three more batches ask for durability.
  const later: Promise<void>[] = [];
  for (let i = 1; i <= 30; i++) {
    assert.equal(journal.record({ companyId: "", groupId: `k${String(i).padStart(3, "0")}` }, [1]), undefined);
    if (i % 10 === 0) later.push(journal.durable());
  }
  release();
  await first;
  await until(() => control.calls === 2, "one more fsync");
  release();
  await Promise.all(later);
  assert.equal(control.calls, 2, "three batches shared one fsync");
  await journal.abandon();
  const [file] = await findJournals(dir);
  const keys: string[] = [];
  for await (const block of readSnapshot(file!, { tolerateTruncation: true }))
    for (const entry of block) keys.push(entry.groupId);
  assert.deepEqual(
    keys,
    Array.from({ length: 31 }, (_, i) => `k${String(i).padStart(3, "0")}`),
  );
});
