import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Batcher,
  type BatchLimits,
  batchBytes,
  jsonArrayBody,
  oversizeReason,
  splitInHalves,
} from "../../src/delivery/batcher.js";

const limits = (maxBatchOperations: number, maxBatchBytes: number, maxOperationBytes = maxBatchBytes): BatchLimits => ({
  maxBatchOperations,
  maxBatchBytes,
  maxOperationBytes,
});

/** Adds items of these sizes, then takes the rest; returns the batches as lists of sizes, in order. */
function pack(batchLimits: BatchLimits, sizes: number[]): number[][] {
  const batcher = new Batcher<{ bytes: number }>(batchLimits);
  const batches: number[][] = [];
  for (const bytes of sizes) {
    for (const batch of batcher.add({ bytes })) batches.push(batch.map((item) => item.bytes));
  }
  const rest = batcher.take();
  if (rest) batches.push(rest.map((item) => item.bytes));
  return batches;
}

const cases: { name: string; limits: BatchLimits; sizes: number[]; batches: number[][] }[] = [
  { name: "nothing in, nothing out", limits: limits(3, 100), sizes: [], batches: [] },
  { name: "a partial batch is taken at the end", limits: limits(3, 100), sizes: [5, 5], batches: [[5, 5]] },
  {
    name: "the operation count closes a batch",
    limits: limits(3, 1000),
    sizes: [1, 1, 1, 1, 1, 1, 1],
    batches: [[1, 1, 1], [1, 1, 1], [1]],
  },
  { name: "one operation per batch", limits: limits(1, 1000), sizes: [4, 4], batches: [[4], [4]] },
  // [ + 10 + , + 10 + , + 10 + ] = 34 bytes: exactly at the limit, so three fit.
  {
    name: "brackets and commas count: exactly at the limit fits",
    limits: limits(10, 34),
    sizes: [10, 10, 10, 10],
    batches: [[10, 10, 10], [10]],
  },
  // One byte less and the third item no longer fits.
  {
    name: "one byte over the limit closes the batch",
    limits: limits(10, 33),
    sizes: [10, 10, 10, 10],
    batches: [
      [10, 10],
      [10, 10],
    ],
  },
  { name: "a single item filling the whole body", limits: limits(10, 12), sizes: [10, 10], batches: [[10], [10]] },
  {
    name: "a large item after small ones starts a new batch, then small ones join it",
    limits: limits(10, 50),
    sizes: [5, 5, 40, 1, 1],
    batches: [
      [5, 5],
      [40, 1, 1],
    ],
  },
  {
    name: "bytes and count together: whichever comes first",
    limits: limits(2, 25),
    sizes: [10, 10, 20, 3, 3, 3],
    batches: [[10, 10], [20], [3, 3], [3]],
  },
];

for (const c of cases) {
  test(`Batcher: ${c.name}`, () => {
    const batches = pack(c.limits, c.sizes);
    assert.deepEqual(batches, c.batches);
    for (const batch of batches) {
      assert.ok(batch.length <= c.limits.maxBatchOperations, "operation limit respected");
      assert.ok(batchBytes(batch.map((bytes) => ({ bytes }))) <= c.limits.maxBatchBytes, "byte limit respected");
    }
  });
}

test("Batcher: bytes tracks the body size of what is buffered", () => {
  const batcher = new Batcher<{ bytes: number }>(limits(10, 1000));
  assert.equal(batcher.bytes, 2);
  batcher.add({ bytes: 7 });
  assert.equal(batcher.bytes, 9);
  batcher.add({ bytes: 3 });
  assert.equal(batcher.bytes, 13);
  assert.equal(batcher.size, 2);
  batcher.take();
  assert.equal(batcher.bytes, 2);
  assert.equal(batcher.take(), undefined);
});

const bodyCases: { sizes: number[]; bytes: number }[] = [
  { sizes: [], bytes: 2 },
  { sizes: [5], bytes: 7 },
  { sizes: [5, 6], bytes: 14 },
  { sizes: [1, 1, 1], bytes: 7 },
];
for (const c of bodyCases) {
  test(`batchBytes([${c.sizes}]) = ${c.bytes}, the length of the JSON array`, () => {
    assert.equal(batchBytes(c.sizes.map((bytes) => ({ bytes }))), c.bytes);
    const body = `[${c.sizes.map((n) => "x".repeat(n)).join(",")}]`;
    assert.equal(Buffer.byteLength(body), c.bytes);
  });
}

const sizeCases: { name: string; bytes: number; limits: BatchLimits; reason: RegExp | undefined }[] = [
  {
    name: "at the operation limit is fine",
    bytes: 1_000_000,
    limits: limits(200, 1_992_294, 1_000_000),
    reason: undefined,
  },
  {
    name: "one byte over the operation limit is refused, naming size and limit",
    bytes: 1_000_001,
    limits: limits(200, 1_992_294, 1_000_000),
    reason: /1000001 bytes, over the limit of 1000000 bytes per operation/,
  },
  {
    name: "an operation that cannot fit in any body (brackets included) is refused",
    bytes: 99,
    limits: limits(10, 100, 1000),
    reason: /99 bytes and cannot fit in a request body of at most 100 bytes/,
  },
  {
    name: "an operation that fits exactly with its brackets is fine",
    bytes: 98,
    limits: limits(10, 100, 1000),
    reason: undefined,
  },
];
for (const c of sizeCases) {
  test(`oversizeReason: ${c.name}`, () => {
    const reason = oversizeReason(c.bytes, c.limits);
    if (c.reason === undefined) assert.equal(reason, undefined);
    else assert.match(reason ?? "", c.reason);
  });
}

const splitCases: { items: number[]; halves: [number[], number[]] }[] = [
  { items: [1, 2], halves: [[1], [2]] },
  { items: [1, 2, 3], halves: [[1, 2], [3]] },
  {
    items: [1, 2, 3, 4],
    halves: [
      [1, 2],
      [3, 4],
    ],
  },
];
for (const c of splitCases) {
  test(`splitInHalves([${c.items}])`, () => {
    assert.deepEqual(splitInHalves(c.items), c.halves);
  });
}

test("jsonArrayBody: the items' bytes as a JSON array between head and tail, sized by batchBytes", () => {
  const items = ['{"a":"é"}', '"✓"', "3"].map((text) => {
    const json = Buffer.from(text);
    return { json, bytes: json.length };
  });
  const bare = jsonArrayBody(items);
  assert.equal(bare.toString(), '[{"a":"é"},"✓",3]');
  assert.equal(bare.length, batchBytes(items));
  const wrapped = jsonArrayBody(items, '{"key":"ü","batch":', ',"sentAt":"now"}');
  assert.deepEqual(JSON.parse(wrapped.toString()), { key: "ü", batch: [{ a: "é" }, "✓", 3], sentAt: "now" });
  assert.equal(jsonArrayBody([], "{", "}").toString(), "{[]}");
});
