/** Operations a destination declares unsupported are skipped: never encoded or sent, never acknowledged, counted. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Delivery, type OperationResult } from "../../src/delivery/delivery.js";
import type { Destination, EncodedOperation } from "../../src/destination.js";
import type { GroupOperation } from "../../src/model.js";

/** The fake's encoded operation keeps the operation, so that `send` can report what it was given. */
type Encoded = EncodedOperation & { readonly operation: GroupOperation };

const ref = (groupId: string) => ({ groupKey: "company", groupId });

test("unsupported kinds are reported as skipped, once-logged, and the rest is delivered", async () => {
  const sent: string[] = [];
  const encoded: string[] = [];
  const destination: Destination<Encoded> = {
    name: "fake",
    limits: { maxBatchOperations: 10, maxBatchBytes: 10_000, maxOperationBytes: 1000, concurrency: 1 },
    unsupported: { unset: "cannot unset here", delete: "cannot delete here" },
    encode: (operation): Encoded => {
      encoded.push(operation.kind);
      const json = Buffer.from(JSON.stringify(operation.ref.groupId));
      return { operation, json, bytes: json.length };
    },
    send: async (batch) => {
      sent.push(...batch.map((item) => `${item.operation.kind}:${item.operation.ref.groupId}`));
      return { kind: "ok" };
    },
    close: async () => {},
  };
  const warnings: string[] = [];
  const delivery = new Delivery(destination, {
    maxRetries: 0,
    logger: { warn: (_obj, msg) => warnings.push(msg), debug: () => undefined },
  });
  const results = new Map<string, OperationResult>();
  const operations: GroupOperation[] = [
    { kind: "set", ref: ref("a"), properties: { x: 1 } },
    { kind: "unset", ref: ref("a"), names: ["y"] },
    { kind: "unset", ref: ref("b"), names: ["y"] },
    { kind: "delete", ref: ref("c") },
  ];
  for (const [i, operation] of operations.entries()) {
    await delivery.enqueue(operation, (result) => results.set(`${i}`, result));
  }
  await delivery.flush();
  assert.deepEqual(sent, ["set:a"], "skipped operations are never sent");
  assert.deepEqual(encoded, ["set"], "nor encoded");
  assert.deepEqual(results.get("0"), { ok: true });
  assert.deepEqual(results.get("1"), { ok: false, rejected: false, skipped: true, reason: "cannot unset here" });
  assert.deepEqual(results.get("3"), { ok: false, rejected: false, skipped: true, reason: "cannot delete here" });
  assert.equal(delivery.skipped.count, 3);
  assert.deepEqual(delivery.skipped.reasons, ["unset: cannot unset here", "delete: cannot delete here"]);
  assert.equal(delivery.stats.acknowledged, 1);
  assert.equal(delivery.stats.rejected, 0, "a skip is not a rejection");
  assert.equal(warnings.length, 2, "one warning per kind, not per group");
});
