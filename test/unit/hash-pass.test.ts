/**
 * The hash pass compares keys and hashes as bytes when the source streams COPY text (`HashReader.keysText`), and as
 * cells otherwise. Both ways must reach the very same verdicts: random tables (unicode, escapes, NULL and blank
 * keys, duplicates, hierarchical keys) against random snapshots, the COPY text cut into random chunks.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import fc from "fast-check";
import { type HashPassResult, parsedHash, parseInt64, runHashPass } from "../../src/engine/hash-pass.js";
import { KeyFlag, KeyQueue, type KeyRecord } from "../../src/engine/key-queue.js";
import { compileMapping } from "../../src/mapping/mapper.js";
import type { HashReader, RawRow, SourceColumn } from "../../src/source.js";
import { compareKeys } from "../../src/state/key-order.js";
import { type SnapshotEntry, SnapshotWriter } from "../../src/state/snapshot-file.js";

const dir = mkdtempSync(join(tmpdir(), "gs-hash-pass-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("parseInt64 reads every signed 64-bit integer as its two's-complement halves", () => {
  const check = (value: bigint) => {
    const text = Buffer.from(value.toString());
    // The halves the snapshot stores for this hash: the 8 bytes of its two's complement, big-endian.
    const bytes = Buffer.alloc(8);
    bytes.writeBigInt64BE(value);
    assert.ok(parseInt64(text, 0, text.length), value.toString());
    assert.deepEqual(parsedHash(), [bytes.readUInt32BE(0), bytes.readUInt32BE(4)], value.toString());
  };
  const edges = [
    0n,
    -0n,
    1n,
    -1n,
    2n ** 32n,
    -(2n ** 32n),
    2n ** 32n + 1n,
    2n ** 32n - 1n,
    2n ** 63n - 1n,
    -(2n ** 63n),
  ];
  // Around the 15-digit split, where the parse changes method.
  for (const digits of [14, 15, 16, 17, 18, 19]) {
    const power = 10n ** BigInt(digits - 1);
    edges.push(power, power - 1n, -power, 10n * power - 1n > 2n ** 63n - 1n ? 2n ** 63n - 1n : 10n * power - 1n);
  }
  for (const value of edges) check(value);
  fc.assert(fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), check), { numRuns: 2000 });
  // Small magnitudes too (a uniform draw over 64 bits almost never gives one).
  fc.assert(fc.property(fc.bigInt({ min: -(10n ** 16n), max: 10n ** 16n }), check), { numRuns: 500 });
  for (const bad of ["", "-", "12a", "99999999999999999999", "+1", " 1"]) {
    const text = Buffer.from(bad);
    assert.equal(parseInt64(text, 0, text.length), false, bad);
  }
});

const hashText = (hash: string) => Buffer.from(hash, "latin1").readBigInt64BE(0).toString();

/** COPY text of one cell. */
function copyCell(cell: string | null): string {
  if (cell === null) return "\\N";
  return cell.replace(/[\\\t\n\r]/g, (c) => ({ "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c]!);
}

interface Case {
  readonly hierarchical: boolean;
  /** Source rows in the database's order: key texts, then the hash (16 hex digits' worth as 8 latin1 chars). */
  readonly rows: { key: (string | null)[]; hash: string }[];
  readonly snapshot: SnapshotEntry[];
}

const idText = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-e]{1,3}$/) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "a\tb", "a\\b", "a\nb", "ü", "😀", "\u00a0", "$company:x", "中文") },
);
const hash = fc.constantFrom("AAAAAAAA", "BBBBBBBB", "\u00ff\u0000\u0080xyz\u00012");

const caseArbitrary: fc.Arbitrary<Case> = fc
  .record({
    hierarchical: fc.boolean(),
    keys: fc.array(fc.tuple(fc.option(idText, { nil: null, freq: 8 }), idText, hash, fc.boolean(), hash), {
      maxLength: 40,
    }),
  })
  .map(({ hierarchical, keys }) => {
    const rows: Case["rows"] = [];
    const snapshot = new Map<string, SnapshotEntry>();
    for (const [company, id, rowHash, inSnapshot, snapshotHash] of keys) {
      const companyId = hierarchical ? company : "";
      rows.push({ key: hierarchical ? [companyId, id] : [id], hash: rowHash });
      // The snapshot holds only valid keys, some with the same hash, some with another.
      const valid = id.trim() !== "" && (!hierarchical || (companyId !== null && companyId.trim() !== ""));
      if (inSnapshot && valid && !/^\$company:/.test(id) && !/^\$company:/.test(companyId ?? "")) {
        const entry: SnapshotEntry = { companyId: companyId!, groupId: id, rowHash: snapshotHash, hashes: [null] };
        snapshot.set(JSON.stringify([companyId, id]), entry);
      }
    }
    // The database's order: code points, NULL keys last.
    const order = (row: { key: (string | null)[] }) => ({
      companyId: hierarchical ? (row.key[0] ?? "\u{10ffff}\u{10ffff}") : "",
      groupId: row.key.at(-1) ?? "",
    });
    rows.sort((a, b) => compareKeys(order(a), order(b)));
    return { hierarchical, rows, snapshot: [...snapshot.values()].sort(compareKeys) };
  });

const columns: SourceColumn[] = [
  { name: "company", dbType: "text", kind: "text" },
  { name: "id", dbType: "text", kind: "text" },
  { name: "p", dbType: "text", kind: "text" },
];

/**
 * The records with rejections set apart (sorted): a rejected row consumes no snapshot entry, so where its record
 * falls, and whether it splits a run of unchanged keys in two, changes nothing. Two runs only a rejection apart
 * are one.
 */
function normalise(records: KeyRecord[]) {
  const verdicts: KeyRecord[] = [];
  const rejects: string[] = [];
  let joinable = false;
  for (const record of records) {
    if (record.flag === KeyFlag.Rejected) {
      rejects.push(JSON.stringify(record));
      joinable = verdicts.at(-1)?.flag === KeyFlag.Unchanged;
      continue;
    }
    const last = verdicts.at(-1);
    if (joinable && last && record.flag === KeyFlag.Unchanged) {
      verdicts[verdicts.length - 1] = { ...last, copies: last.copies + record.copies };
    } else {
      verdicts.push(record);
    }
    joinable = false;
  }
  return { verdicts, rejects: rejects.sort() };
}

let runs = 0;
async function pass(c: Case, text: Buffer[] | undefined): Promise<{ result: HashPassResult; records: KeyRecord[] }> {
  const run = runs++;
  const mapping = compileMapping(
    {
      from: "t",
      group_key: "company",
      group_id: "id",
      ...(c.hierarchical ? { company_id: "company" } : {}),
      properties: { p: "p" },
    } as never,
    columns,
    { hierarchical: c.hierarchical, file: "mapping.yaml" },
  );
  const previousPath = join(dir, `snapshot-${run}.bin`);
  const writer = await SnapshotWriter.create(previousPath, { properties: ["p"], hierarchical: c.hierarchical });
  for (const entry of c.snapshot) await writer.add(entry);
  await writer.finish();
  const reader: HashReader = {
    hashInRows: true,
    async *keys() {
      yield c.rows.map((row): RawRow => [...row.key, hashText(row.hash)]);
    },
    ...(text
      ? {
          keysText: () =>
            (async function* () {
              yield* text;
            })(),
        }
      : {}),
    lookup: async () => [],
  };
  // Unbounded here: the pass runs to its end before the records are read.
  const log = new KeyQueue({ limit: Number.MAX_SAFE_INTEGER });
  try {
    const result = await runHashPass({
      reader,
      mapping,
      spec: { ...mapping.readSpec, hashColumns: ["p"] },
      readOptions: { batchSize: 7 },
      previousPath,
      log,
    });
    log.finish();
    const records: KeyRecord[] = [];
    const read = log.reader(true);
    for (let record = await read.next(); record; record = await read.next()) records.push(record);
    return { result, records };
  } catch (error) {
    return { result: { error: String(error) } as never, records: [] };
  } finally {
    log.dispose();
    rmSync(previousPath, { force: true });
  }
}

test("COPY text and cells reach the same verdicts, however the text is cut into chunks", async () => {
  await fc.assert(
    fc.asyncProperty(caseArbitrary, fc.array(fc.nat(), { maxLength: 6 }), async (c, cuts) => {
      const text = Buffer.from(
        c.rows.map((row) => `${[...row.key.map(copyCell), hashText(row.hash)].join("\t")}\n`).join(""),
        "utf8",
      );
      const at = [...new Set(cuts.map((cut) => (text.length === 0 ? 0 : cut % text.length)))].sort((a, b) => a - b);
      const chunks = [0, ...at, text.length]
        .slice(1)
        .map((end, i, ends) => text.subarray(i === 0 ? 0 : ends[i - 1], end));
      const slow = await pass(c, undefined);
      const fast = await pass(c, chunks);
      assert.deepEqual(fast.result, slow.result);
      assert.deepEqual(normalise(fast.records), normalise(slow.records));
    }),
    { numRuns: 300 },
  );
});

test("an unchanged table is one run of unchanged keys; a change, a new key, a missing entry each show", async () => {
  const entries = ["a", "b", "c", "d"].map(
    (id): SnapshotEntry => ({ companyId: "", groupId: id, rowHash: "AAAAAAAA", hashes: [null] }),
  );
  const rows = entries.map((entry) => ({ key: [entry.groupId], hash: "AAAAAAAA" }));
  const text = (r: Case["rows"]) => [
    Buffer.from(r.map((row) => `${row.key.join("\t")}\t${hashText(row.hash)}\n`).join("")),
  ];
  const same = await pass({ hierarchical: false, rows, snapshot: entries }, text(rows));
  assert.deepEqual(same.result, { rows: 4, groups: 4, changed: 0, rejected: 0, missing: 0 });
  assert.deepEqual(same.records, [{ flag: 0, copies: 4, a: "a", b: "" }]);

  const changed = [
    { key: ["a"], hash: "AAAAAAAA" },
    { key: ["b"], hash: "BBBBBBBB" },
    { key: ["bb"], hash: "AAAAAAAA" },
    { key: ["d"], hash: "AAAAAAAA" },
  ];
  const some = await pass({ hierarchical: false, rows: changed, snapshot: entries }, text(changed));
  assert.deepEqual(some.result, { rows: 4, groups: 4, changed: 2, rejected: 0, missing: 1 });
  // Entries after the last row's key are each counted (it counted one of them, however many there were).
  const first = rows.slice(0, 1);
  const shrunk = await pass({ hierarchical: false, rows: first, snapshot: entries }, text(first));
  assert.deepEqual(shrunk.result, { rows: 1, groups: 1, changed: 0, rejected: 0, missing: 3 });
  assert.deepEqual(
    some.records.map((record) => [record.flag, record.copies, record.a]),
    [
      [0, 1, "a"],
      [1, 1, "b"],
      [1, 1, "bb"],
      [0, 1, "d"],
    ],
  );
});
