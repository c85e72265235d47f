import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StateError } from "../../src/errors.js";
import { plainEntry, readSnapshot, type SnapshotEntry, SnapshotWriter } from "../../src/state/snapshot-file.js";
import { slowSync, turns, until } from "../helpers/slow-sync.js";

const dir = mkdtempSync(join(tmpdir(), "gs-snap-"));
const h = (s: string) => s.padEnd(8, "_").slice(0, 8);

async function write(path: string, entries: SnapshotEntry[], hierarchical: boolean, properties = ["a", "b", "c"]) {
  const writer = await SnapshotWriter.create(path, { properties, hierarchical });
  for (const entry of entries) await writer.add(entry);
  await writer.finish();
}

async function readAll(path: string): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  for await (const block of readSnapshot(path)) out.push(...block.map(plainEntry));
  return out;
}

test("snapshot round-trips many entries across blocks, with unicode keys and binary hashes", async () => {
  const path = join(dir, "many.bin");
  const entries: SnapshotEntry[] = [];
  for (let i = 0; i < 20_000; i++) {
    entries.push({
      companyId: `c${i % 7}é`,
      groupId: i % 2 === 0 ? `g-${i}` : `g-${i}-😀`, // ASCII and not: the writer has a path for each
      rowHash: String.fromCharCode(i % 256, 0, 255, 1, 2, 3, 4, 5),
      hashes: [h(`a${i}`), i % 3 === 0 ? null : "\u00ff\u0000abcdef", null],
    });
  }
  await write(path, entries, true);
  assert.deepEqual(await readAll(path), entries);
});

test("snapshot round-trips any number of properties, whatever subset is set (bitmaps of whole and partial bytes)", async () => {
  for (const count of [1, 7, 8, 9, 12, 16, 17, 31]) {
    const path = join(dir, `props-${count}.bin`);
    const properties = Array.from({ length: count }, (_, i) => `p${i}`);
    const entries: SnapshotEntry[] = [];
    for (let i = 0; i < 600; i++) {
      // Every pattern of the low bits, plus runs of all-set and none-set.
      const pattern = i < 200 ? i * 2654435761 : i < 400 ? -1 : 0;
      entries.push({
        companyId: "",
        groupId: `g-${String(i).padStart(4, "0")}`,
        rowHash: h(`r${i}`),
        hashes: properties.map((_, p) => ((pattern >>> (p % 32)) & 1 ? h(`${i}.${p}`) : null)),
      });
    }
    await write(path, entries, false, properties);
    assert.deepEqual(await readAll(path), entries, `${count} properties`);
  }
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

test("format 2 records the item lists of union properties, in the entry's layout", async () => {
  const path = join(dir, "items.bin");
  const entries: SnapshotEntry[] = [
    {
      companyId: "",
      groupId: "a",
      rowHash: h("r"),
      hashes: [h("1"), h("2"), null],
      items: [null, '["x","ü",3]', null],
    },
    { companyId: "", groupId: "b", rowHash: h("r"), hashes: [null, null, null] },
    { companyId: "", groupId: "c", rowHash: h("r"), hashes: [null, h("2"), h("3")], items: [null, "[1]", '["z"]'] },
  ];
  await write(path, entries, false);
  assert.deepEqual(await readAll(path), entries);
  assert.equal(
    JSON.parse(
      readFileSync(path)
        .subarray(12, 12 + readFileSync(path).readUInt32LE(8))
        .toString(),
    ).format,
    3,
  );
});

test("format 2 files (MD5 block checksums) are still read, and a bad MD5 is still caught", async () => {
  const path = join(dir, "format2.bin");
  const entries: SnapshotEntry[] = Array.from({ length: 3000 }, (_, i) => ({
    companyId: "",
    groupId: `g${String(i).padStart(5, "0")}`,
    rowHash: h(String(i)),
    hashes: [h("a"), null, i % 2 === 0 ? h("c") : null],
  }));
  await write(path, entries, false);
  // The same file as format 2 wrote it: the header says 2, and each block carries the MD5 of its payload.
  const bytes = readFileSync(path);
  const headerLength = bytes.readUInt32LE(8);
  const header = bytes.subarray(12, 12 + headerLength);
  header.write(header.toString().replace('"format":3', '"format":2'));
  const { createHash } = await import("node:crypto");
  let blocks = 0;
  for (let o = 12 + headerLength; bytes.readUInt32LE(o) !== 0xffffffff; ) {
    const length = bytes.readUInt32LE(o);
    createHash("md5")
      .update(bytes.subarray(o + 24, o + 24 + length))
      .digest()
      .copy(bytes, o + 8);
    o += 24 + length;
    blocks++;
  }
  assert.ok(blocks > 1, "several blocks");
  writeFileSync(path, bytes);
  assert.deepEqual(await readAll(path), entries);
  bytes[bytes.length - 100]! ^= 1;
  writeFileSync(path, bytes);
  await assert.rejects(
    readAll(path),
    (error: unknown) => error instanceof StateError && /checksum/.test(String(error)),
  );
});

test("format 1 files (before item lists) are still read", async () => {
  // Hand-made, as groupsync 0.1 wrote it: magic, header, one block of two flat records, footer.
  const records = Buffer.concat([
    Buffer.from([1]),
    Buffer.from("a"),
    Buffer.from(h("r"), "latin1"),
    Buffer.from([0b011]),
    Buffer.from(h("1") + h("2"), "latin1"),
    Buffer.from([1]),
    Buffer.from("b"),
    Buffer.from(h("s"), "latin1"),
    Buffer.from([0]),
  ]);
  const header = Buffer.from(JSON.stringify({ format: 1, properties: ["p", "q"], hierarchical: false }));
  const head = Buffer.alloc(8);
  head.writeUInt32LE(records.length, 0);
  head.writeUInt32LE(2, 4);
  const { createHash } = await import("node:crypto");
  const footer = Buffer.alloc(12);
  footer.writeUInt32LE(0xffffffff, 0);
  footer.writeBigUInt64LE(2n, 4);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length);
  const path = join(dir, "format1.bin");
  writeFileSync(
    path,
    Buffer.concat([
      Buffer.from("GSSNAP1\n", "latin1"),
      length,
      header,
      head,
      createHash("md5").update(records).digest(),
      records,
      footer,
    ]),
  );
  assert.deepEqual(await readAll(path), [
    { companyId: "", groupId: "a", rowHash: h("r"), hashes: [h("1"), h("2")] },
    { companyId: "", groupId: "b", rowHash: h("s"), hashes: [null, null] },
  ]);
});

const entry = (i: number): SnapshotEntry => ({
  companyId: "",
  groupId: `g-${String(i).padStart(6, "0")}`,
  rowHash: h(`r${i}`),
  hashes: [h(`a${i}`), null, h(`c${i}`)],
});
test("durable(): entries added while an fsync is under way do not wait for it, and callers meanwhile share the next fsync", async (t) => {
  const { control, release } = await slowSync(t, dir);
  const path = join(dir, "group-commit.bin");
  const writer = await SnapshotWriter.create(path, { properties: ["a", "b", "c"], hierarchical: false });
  const entries: SnapshotEntry[] = [];
  const add = (i: number) => {
    entries.push(entry(i));
    return writer.add(entries.at(-1)!);
  };
  for (let i = 0; i < 10; i++) assert.equal(add(i), undefined);
  let firstDone = false;
  const first = writer.durable().then(() => {
    firstDone = true;
  });
  await until(() => control.calls === 1, "the first durable() is fsyncing");
  // The fsync hangs: adding goes on without a promise, and five more durable() calls queue behind it.
  const later: Promise<void>[] = [];
  for (let i = 10; i < 15; i++) {
    assert.equal(add(i), undefined, "an entry is added at once while the fsync is under way");
    later.push(writer.durable());
  }
  await turns();
  assert.equal(firstDone, false);
  release();
  await first;
  await until(() => control.calls === 2, "the five later calls share one fsync");
  await turns();
  assert.equal(control.calls, 2);
  release();
  await Promise.all(later);
  assert.equal(control.calls, 2);
  // Every entry, in order, whatever was being written when it was added.
  const finishing = writer.finish();
  await until(() => control.calls === 3, "finish() fsyncs");
  release();
  await finishing;
  assert.deepEqual(await readAll(path), entries);
});

test("durable(): a failed fsync fails every caller waiting for it and every later call, with the file named", async (t) => {
  const { control, release } = await slowSync(t, dir);
  const path = join(dir, "sync-fails.bin");
  const writer = await SnapshotWriter.create(path, { properties: ["a", "b", "c"], hierarchical: false });
  writer.add(entry(1));
  const waiting = [writer.durable(), writer.durable()];
  await until(() => control.calls === 1, "the fsync started");
  control.fail = true;
  release();
  for (const result of await Promise.allSettled(waiting)) {
    assert.equal(result.status, "rejected");
    assert.ok(result.reason instanceof StateError, String(result.reason));
    assert.match(result.reason.message, /sync-fails\.bin/);
  }
  writer.add(entry(2));
  await assert.rejects(writer.durable(), StateError);
  await writer.abandon();
});

test("full blocks reuse a few frame buffers once they are written, and every entry reads back", async (t) => {
  // Each new Buffer counts as external memory, and V8 runs a full collection for every few tens of MB of it.
  const large: number[] = [];
  const allocUnsafe = Buffer.allocUnsafe;
  t.mock.method(Buffer, "allocUnsafe", (size: number) => {
    if (size >= 64 * 1024) large.push(size);
    return allocUnsafe(size);
  });
  const path = join(dir, "frames.bin");
  const writer = await SnapshotWriter.create(path, { properties: ["a", "b", "c"], hierarchical: false });
  const entries: SnapshotEntry[] = [];
  const pending: Promise<void>[] = [];
  for (let i = 0; i < 150_000; i++) {
    entries.push(entry(i));
    const wait = writer.add(entries.at(-1)!);
    // Blocks sealed while others are written (durable() seals small ones too), with waits now and then.
    if (i % 10_007 === 0) pending.push(writer.durable());
    if (wait && i % 3 === 0) await wait;
  }
  await Promise.all(pending);
  await writer.finish();
  const blocks = Math.ceil(statSync(path).size / (64 * 1024));
  assert.ok(blocks > 50, `${blocks} blocks`);
  // The writer's own block buffer, and at most a handful of frames in flight or spare.
  assert.ok(large.length <= 8, `${large.length} buffers of 64 KiB or more for ${blocks} blocks`);
  assert.deepEqual(await readAll(path), entries);
});

/** A writer of 12-property entries, for tests that write tens of MB, and a way to add the next entry. */
async function bigWriter(name: string) {
  const path = join(dir, name);
  const properties = Array.from({ length: 12 }, (_, p) => `p${p}`);
  const writer = await SnapshotWriter.create(path, { properties, hierarchical: false });
  const entries: SnapshotEntry[] = [];
  const add = async () => {
    const i = entries.length;
    assert.ok(i < 2_000_000, "runaway test");
    entries.push({
      companyId: "",
      groupId: `g-${String(i).padStart(8, "0")}`,
      rowHash: h(`r${i}`),
      hashes: properties.map((_, p) => h(`${i}.${p}`)),
    });
    const wait = writer.add(entries.at(-1)!);
    if (wait) await wait;
  };
  return { path, writer, entries, add };
}

test("a large snapshot is fsynced in the background as it is written, and writing never waits for that fsync", async (t) => {
  const { control, release } = await slowSync(t, dir);
  const { path, writer, entries, add } = await bigWriter("background.bin");
  while (control.calls === 0) await add();
  const started = statSync(path).size;
  assert.ok(started >= 16 * 1024 * 1024, `the background fsync started after ${started} bytes`);
  // That fsync hangs; 4 MiB more are written meanwhile, and no second fsync starts.
  while (statSync(path).size < started + 4 * 1024 * 1024) await add();
  assert.equal(control.calls, 1);
  release();
  const finishing = writer.finish();
  await until(() => control.calls === 2, "finish() fsyncs");
  release();
  await finishing;
  assert.deepEqual(await readAll(path), entries);
});

test("a background fsync that fails fails the writer, with the file named", async (t) => {
  const { control, release } = await slowSync(t, dir);
  const { writer, add } = await bigWriter("background-fails.bin");
  while (control.calls === 0) await add();
  control.fail = true;
  release();
  await assert.rejects(
    async () => {
      for (;;) await add();
    },
    (error: unknown) => error instanceof StateError && /background-fails\.bin/.test(error.message),
  );
  await assert.rejects(writer.finish(), StateError);
  await writer.abandon();
});
