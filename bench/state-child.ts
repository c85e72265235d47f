/**
 * One half of the state benchmark, run as its own process so its peak RSS is its own:
 *   tsx bench/state-child.ts write <file> <entries>   writes a snapshot with the real SnapshotWriter
 *   tsx bench/state-child.ts read <file>              reads it back with the real reader, verifying every block
 * Prints `{ "ms": …, "entries": … }` on stdout. Entries look like the table's: `acct_00000001`… Group IDs, 12
 * properties all set, hashes drawn from a fixed pool so that generating them costs next to nothing.
 */
import { performance } from "node:perf_hooks";
import { readSnapshot, SnapshotWriter } from "../src/state/snapshot-file.js";
import { STATE_PROPERTIES } from "./report.js";

function hashPool(size: number): string[] {
  let seed = 0x9e3779b9;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) & 0xff;
  };
  return Array.from({ length: size }, () => String.fromCharCode(...Array.from({ length: 8 }, next)));
}

async function write(path: string, count: number): Promise<number> {
  const pool = hashPool(4096);
  const properties = Array.from({ length: STATE_PROPERTIES }, (_, i) => `p${i}`);
  const started = performance.now();
  const writer = await SnapshotWriter.create(path, { properties, hierarchical: false });
  for (let i = 1; i <= count; i++) {
    const hashes = new Array<string | null>(STATE_PROPERTIES);
    for (let p = 0; p < STATE_PROPERTIES; p++) hashes[p] = pool[(i * 13 + p * 7) & 4095]!;
    await writer.add({
      companyId: "",
      groupId: `acct_${String(i).padStart(8, "0")}`,
      rowHash: pool[i & 4095]!,
      hashes,
    });
  }
  await writer.finish();
  return performance.now() - started;
}

async function read(path: string): Promise<{ ms: number; entries: number }> {
  const started = performance.now();
  let entries = 0;
  for await (const block of readSnapshot(path)) entries += block.length;
  return { ms: performance.now() - started, entries };
}

const [mode, path, count] = process.argv.slice(2);
if (mode === "write" && path && count) {
  const ms = await write(path, Number(count));
  process.stdout.write(`${JSON.stringify({ ms, entries: Number(count) })}\n`);
} else if (mode === "read" && path) {
  process.stdout.write(`${JSON.stringify(await read(path))}\n`);
} else {
  process.stderr.write("usage: tsx bench/state-child.ts write <file> <entries> | read <file>\n");
  process.exit(2);
}
