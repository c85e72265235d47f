import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Journal } from "../../src/state/journal.js";

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
