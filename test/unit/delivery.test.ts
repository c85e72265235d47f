/** Delivery against a scripted in-memory destination: the rules no real server can be made to exercise on cue. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { Delivery, type OperationResult } from "../../src/delivery/delivery.js";
import type { Destination, EncodedOperation, SendOutcome } from "../../src/destination.js";
import { DestinationError } from "../../src/errors.js";
import type { GroupOperation } from "../../src/model.js";

/** The fake's encoded operation keeps the operation, so that `send` can report what it was given. */
type Encoded = EncodedOperation & { readonly operation: GroupOperation };

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on("unhandledRejection", onUnhandled);
after(() => process.off("unhandledRejection", onUnhandled));

const op = (groupId: string): GroupOperation => ({ kind: "delete", ref: { groupKey: "k", groupId } });
const ops = (count: number) => Array.from({ length: count }, (_, i) => op(`g${i}`));

/** A destination whose `send` is a script; it records the group ids of every batch and the peak concurrency. */
function fake(script: (ids: string[], call: number) => Promise<SendOutcome> | SendOutcome, concurrency = 2) {
  const batches: string[][] = [];
  let inFlight = 0;
  const state = { peak: 0 };
  const destination: Destination<Encoded> = {
    name: "fake",
    limits: { maxBatchOperations: 4, maxBatchBytes: 10_000, maxOperationBytes: 1000, concurrency },
    encode: (operation): Encoded => {
      const json = Buffer.from(JSON.stringify(operation.ref.groupId));
      return { operation, json, bytes: json.length };
    },
    send: async (batch) => {
      const ids = batch.map((encoded) => encoded.operation.ref.groupId);
      batches.push(ids);
      inFlight++;
      state.peak = Math.max(state.peak, inFlight);
      try {
        return await script(ids, batches.length);
      } finally {
        inFlight--;
      }
    },
    close: async () => {},
  };
  return { destination, batches, state };
}

async function run(delivery: Delivery, operations: readonly GroupOperation[]) {
  const results = new Map<string, OperationResult[]>();
  let error: unknown;
  for (const operation of operations) {
    const list: OperationResult[] = [];
    results.set(operation.ref.groupId, list);
    try {
      await delivery.enqueue(operation, (result) => list.push(result));
    } catch (caught) {
      error ??= caught;
    }
  }
  try {
    await delivery.flush();
  } catch (caught) {
    error ??= caught;
  }
  return { results, error };
}

test("never more batches in flight than the destination's concurrency; enqueue waits meanwhile", async () => {
  const { destination, state, batches } = fake(async () => {
    await delay(10);
    return { kind: "ok" };
  }, 2);
  const delivery = new Delivery(destination, { maxRetries: 0 });
  const { results, error } = await run(delivery, ops(40));
  assert.equal(error, undefined);
  assert.equal(batches.length, 10);
  assert.equal(state.peak, 2);
  assert.ok([...results.values()].every((list) => list.length === 1 && list[0]!.ok));
});

test("per-record detail naming records outside the batch falls back to splitting", async () => {
  const { destination, batches } = fake((ids) =>
    ids.includes("g2")
      ? { kind: "rejected-records", status: 400, rejected: [{ index: 99, reason: "nonsense" }] }
      : { kind: "ok" },
  );
  const { results } = await run(new Delivery(destination, { maxRetries: 0 }), ops(4));
  assert.deepEqual(batches, [["g0", "g1", "g2", "g3"], ["g0", "g1"], ["g2", "g3"], ["g2"], ["g3"]]);
  assert.equal(results.get("g2")![0]!.ok, false);
  assert.ok(["g0", "g1", "g3"].every((id) => results.get(id)![0]!.ok));
});

test("rejected-records rejects those indexes with their reasons and re-sends the rest", async () => {
  const { destination, batches } = fake((ids) =>
    ids.includes("g1")
      ? { kind: "rejected-records", status: 400, rejected: [{ index: ids.indexOf("g1"), reason: "bad g1" }] }
      : { kind: "ok" },
  );
  const delivery = new Delivery(destination, { maxRetries: 0 });
  const { results } = await run(delivery, ops(4));
  assert.deepEqual(batches, [
    ["g0", "g1", "g2", "g3"],
    ["g0", "g2", "g3"],
  ]);
  assert.deepEqual(results.get("g1"), [{ ok: false, rejected: true, reason: "bad g1" }]);
  // Each operation encodes as `"gN"`, 4 bytes: [4,4,4,4] = 21 bytes, then [4,4,4] = 16.
  assert.deepEqual(delivery.stats, { requests: 2, retries: 0, operations: 4, acknowledged: 3, rejected: 1, bytes: 37 });
});

test("a fatal outcome while another batch is in flight: that batch's acknowledgement still counts", async () => {
  const { destination } = fake(async (ids) => {
    if (ids[0] === "g0") {
      await delay(30);
      return { kind: "ok" };
    }
    return { kind: "fatal", reason: "refused", action: "Fix it.", status: 401 };
  }, 2);
  const { results, error } = await run(new Delivery(destination, { maxRetries: 3 }), ops(12));
  assert.ok(error instanceof DestinationError);
  assert.equal(error.action, "Fix it.");
  assert.ok([...results.values()].every((list) => list.length === 1));
  assert.deepEqual(
    [...results].filter(([, list]) => list[0]!.ok).map(([id]) => id),
    ["g0", "g1", "g2", "g3"],
  );
});

test("a throwing onResult stops the run and surfaces from flush, never as an unhandled rejection", async () => {
  const { destination } = fake(() => ({ kind: "ok" }));
  const delivery = new Delivery(destination, { maxRetries: 0 });
  await delivery.enqueue(op("a"), () => {
    throw new Error("callback bug");
  });
  await assert.rejects(delivery.flush(), /callback bug/);
});

test("beforeSend runs before each batch's first request; if it fails the run stops with its error", async () => {
  const order: string[] = [];
  const { destination } = fake((ids) => {
    order.push(`send ${ids.length}`);
    return { kind: "ok" };
  });
  let calls = 0;
  const delivery = new Delivery(destination, {
    maxRetries: 0,
    beforeSend: async () => {
      calls++;
      order.push("durable");
      if (calls === 2) throw new Error("disk full");
    },
  });
  const { results, error } = await run(delivery, ops(8));
  assert.match(String(error), /disk full/);
  assert.deepEqual(order, ["durable", "send 4", "durable"]);
  assert.ok([...results.values()].every((list) => list.length === 1));
  assert.equal([...results.values()].filter((list) => list[0]!.ok).length, 4);
});

test("no unhandled promise rejection happened in this file", async () => {
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(unhandled, []);
});
