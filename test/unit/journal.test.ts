import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Journal } from "../../src/state/journal.js";

// Open file descriptors of this process (Linux).
const openFiles = () => readdirSync("/proc/self/fd").length;

test("a journal closes each section's file: none is left for the garbage collector", async (t) => {
  if (!existsSync("/proc/self/fd")) return t.skip("needs /proc/self/fd to count open files");
  const before = openFiles();
  const journal = new Journal(mkdtempSync(join(tmpdir(), "gs-journal-")), "run", {
    properties: ["a"],
    hierarchical: false,
  });
  await journal.record({ companyId: "", groupId: "k1" }, [0]);
  await journal.nextSection();
  await journal.record({ companyId: "", groupId: "k0" }, "all");
  await journal.durable();
  assert.equal(openFiles(), before + 1, "only the current section's file is open");
  await journal.remove();
  assert.equal(openFiles(), before);
});
