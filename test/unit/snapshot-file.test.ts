import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StateError } from "../../src/errors.js";
import { readSnapshot, type SnapshotEntry, SnapshotWriter } from "../../src/state/snapshot-file.js";

const dir = mkdtempSync(join(tmpdir(), "gs-snap-"));
const h = (s: string) => s.padEnd(8, "_").slice(0, 8);

async function write(path: string, entries: SnapshotEntry[], hierarchical: boolean, properties = ["a", "b", "c"]) {
  const writer = await SnapshotWriter.create(path, { properties, hierarchical });
  for (const entry of entries) await writer.add(entry);
  await writer.finish();
}

async function readAll(path: string): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  for await (const block of readSnapshot(path)) out.push(...block);
  return out;
}

test("snapshot round-trips many entries across blocks, with unicode keys and binary hashes", async () => {
  const path = join(dir, "many.bin");
  const entries: SnapshotEntry[] = [];
  for (let i = 0; i < 20_000; i++) {
    entries.push({
      companyId: `c${i % 7}é`,
      groupId: `g-${i}-😀`,
      rowHash: String.fromCharCode(i % 256, 0, 255, 1, 2, 3, 4, 5),
      hashes: [h(`a${i}`), i % 3 === 0 ? null : "\u00ff\u0000abcdef", null],
    });
  }
  await write(path, entries, true);
  assert.deepEqual(await readAll(path), entries);
});

test("snapshot without hierarchy drops the Company ID", async () => {
  const path = join(dir, "flat.bin");
  await write(path, [{ companyId: "", groupId: "acme", rowHash: h("r"), hashes: [null, null, h("c")] }], false);
  assert.deepEqual(await readAll(path), [
    { companyId: "", groupId: "acme", rowHash: h("r"), hashes: [null, null, h("c")] },
  ]);
});

test("a flipped byte is detected as corruption", async () => {
  const path = join(dir, "flip.bin");
  await write(path, [{ companyId: "", groupId: "acme", rowHash: h("r"), hashes: [h("a"), null, null] }], false);
  const bytes = readFileSync(path);
  bytes[bytes.length - 20]! ^= 0xff;
  writeFileSync(path, bytes);
  await assert.rejects(readAll(path), (error: unknown) => error instanceof StateError && /corrupt/.test(error.message));
});

test("a truncated file is detected, even at a block boundary", async () => {
  const path = join(dir, "trunc.bin");
  await write(path, [{ companyId: "", groupId: "acme", rowHash: h("r"), hashes: [h("a"), null, null] }], false);
  truncateSync(path, readFileSync(path).length - 12); // drop exactly the footer
  await assert.rejects(
    readAll(path),
    (error: unknown) => error instanceof StateError && /truncated/.test(error.message),
  );
});

test("a foreign file is refused", async () => {
  const path = join(dir, "foreign.bin");
  writeFileSync(path, '{"not": "a snapshot"}');
  await assert.rejects(
    readAll(path),
    (error: unknown) => error instanceof StateError && /not a groupsync snapshot/.test(error.message),
  );
});
