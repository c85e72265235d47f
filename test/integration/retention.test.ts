/**
 * What a run keeps in memory. The groups waiting to be written stay few however far apart the keys read are in the
 * snapshot. An operation (its properties, coerced values) is needed only
 * until it is encoded; what waits for the acknowledgement is its encoded bytes and what the outcome records. Kept
 * longer, every row of a backfill would survive scavenges and be promoted to the old generation (measured: 0.4 GB
 * more promoted per 1M rows, and more GC time on the main thread).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { loadConnectors } from "../../src/connectors.js";
import type { Connectors } from "../../src/engine/run-sync.js";
import { type E2E, startE2E } from "../helpers/e2e.js";
import { createSimpleTable, SIMPLE_MAPPING, simpleProfiles } from "../helpers/simple-table.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const connectors = await loadConnectors();

describe("operations in flight", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: SIMPLE_MAPPING, batchSize: 10 });
    await createSimpleTable(e2e, 40);
  });
  after(() => e2e.dispose());

  test("an operation can be collected while its request waits for the acknowledgement", async () => {
    const encoded: WeakRef<object>[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let firstSend!: () => void;
    const sending = new Promise<void>((resolve) => {
      firstSend = resolve;
    });
    let sends = 0;
    const holding: Connectors = {
      createSource: (sync) => connectors.createSource(sync),
      createDestination(sync) {
        const real = connectors.createDestination(sync);
        return {
          ...real,
          limits: { ...real.limits, concurrency: 1 },
          encode(operation) {
            encoded.push(new WeakRef(operation));
            return real.encode(operation);
          },
          async send(batch, options) {
            // The first request waits until the test has looked at the heap.
            if (sends++ === 0) {
              firstSend();
              await gate;
            }
            return real.send(batch, options);
          },
        };
      },
    };
    const run = e2e.run({ connectors: holding });
    await sending;
    // Let the merge go on until the one request in flight makes it wait (concurrency 1).
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    gc();
    gc();
    const firstBatch = encoded.slice(0, 10);
    assert.equal(firstBatch.length, 10, "the first request holds 10 operations");
    const alive = firstBatch.filter((ref) => ref.deref() !== undefined).length;
    release();
    const summary = await run;
    assert.equal(summary.status, "ok");
    assert.equal(summary.groups_created, 40);
    assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
    assert.equal(alive, 0, `${alive} of the 10 operations in the request in flight were still reachable`);
  });
});

describe("snapshot entries carried between the keys read", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: SIMPLE_MAPPING, batchSize: 500 });
    await createSimpleTable(e2e, 3000);
    assert.equal((await e2e.run()).groups_created, 3000);
  });
  after(() => e2e.dispose());

  /** The run's debug line with the most groups its window held at once. */
  const windowPeak = (from: number): number => {
    const lines = e2e.logs.slice(from).filter((line) => line.window_peak !== undefined);
    assert.equal(lines.length, 1, "one window_peak line per run");
    return Number(lines[0]!.window_peak);
  };

  for (const [where, gap] of [
    ["id = 'g03000'", "before the first key read"],
    ["id = 'g00001'", "after the last key read"],
  ] as const) {
    test(`a backfill --where ${where} carries the 2,999 entries ${gap} a stretch at a time`, async () => {
      const from = e2e.logs.length;
      const summary = await e2e.run({ backfill: { where }, maxWindow: 100 });
      assert.equal(summary.status, "ok", JSON.stringify(summary.error));
      assert.equal(summary.groups_updated, 1);
      const peak = windowPeak(from);
      assert.ok(peak <= 100 + 256, `the window held ${peak} groups at once (maxWindow 100)`);
      assert.equal((await e2e.run()).unchanged, 3000, "every carried entry was written");
    });
  }
});
