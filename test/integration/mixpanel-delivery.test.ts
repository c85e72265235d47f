/**
 * Delivery + the real Mixpanel destination against the contract receiver, over loopback: batching, retries,
 * splitting, per-record rejects and stops, with short backoffs so the file runs in a few seconds.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { mixpanelDestinationSchema } from "../../connectors/mixpanel/config.js";
import {
  type MixpanelReceiver,
  type ReceiverOptions,
  startMixpanelReceiver,
} from "../../connectors/mixpanel/contract-receiver.js";
import { createMixpanelDestination } from "../../connectors/mixpanel/destination.js";
import { Delivery, type DeliveryOptions, type OperationResult } from "../../src/delivery/delivery.js";
import { DestinationError } from "../../src/errors.js";
import type { GroupOperation, JsonValue } from "../../src/model.js";

const TOKEN = "it-project-token-5544";
const FAST = { baseDelayMs: 5, maxDelayMs: 50, jitterMs: [0, 5] as const };

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on("unhandledRejection", onUnhandled);
after(() => process.off("unhandledRejection", onUnhandled));

const id = (i: number) => `g${String(i).padStart(3, "0")}`;
const set = (groupId: string, properties: Record<string, JsonValue>, companyId?: string): GroupOperation => ({
  kind: "set",
  ref: { groupKey: "company", groupId, ...(companyId ? { companyId } : {}) },
  properties,
});
const sets = (count: number) => Array.from({ length: count }, (_, i) => set(id(i), { name: `name ${i}`, n: i }));

interface Outcome {
  readonly results: (OperationResult | undefined)[];
  /** How many times each operation's onResult was called. */
  readonly calls: number[];
  readonly error: unknown;
  readonly delivery: Delivery;
  readonly elapsed: number;
  readonly logs: { level: string; obj: object; msg: string }[];
}

/** Enqueues every operation (even after a stop), flushes, and records what each callback got. */
async function deliver(
  receiver: MixpanelReceiver,
  operations: readonly GroupOperation[],
  options: { destination?: Record<string, unknown>; delivery?: Partial<DeliveryOptions> } = {},
): Promise<Outcome> {
  const config = mixpanelDestinationSchema.parse({
    type: "mixpanel",
    project_token: TOKEN,
    api_host: receiver.url,
    batch_size: 10,
    concurrency: 2,
    timeout: 2000,
    ...options.destination,
  });
  const destination = createMixpanelDestination(config);
  const logs: Outcome["logs"] = [];
  const logger = {
    warn: (obj: object, msg: string) => logs.push({ level: "warn", obj, msg }),
    debug: (obj: object, msg: string) => logs.push({ level: "debug", obj, msg }),
  };
  const delivery = new Delivery(destination, { maxRetries: 5, ...FAST, logger, ...options.delivery });
  const results: (OperationResult | undefined)[] = operations.map(() => undefined);
  const calls = operations.map(() => 0);
  let error: unknown;
  const started = performance.now();
  for (const [i, operation] of operations.entries()) {
    try {
      await delivery.enqueue(operation, (result) => {
        results[i] = result;
        calls[i]!++;
      });
    } catch (caught) {
      error ??= caught;
    }
  }
  try {
    await delivery.flush();
  } catch (caught) {
    error ??= caught;
  }
  const elapsed = performance.now() - started;
  await destination.close();
  return { results, calls, error, delivery, elapsed, logs };
}

async function withReceiver(options: Partial<ReceiverOptions>, body: (receiver: MixpanelReceiver) => Promise<void>) {
  const receiver = await startMixpanelReceiver({ token: TOKEN, ...options });
  try {
    await body(receiver);
  } finally {
    await receiver.close();
  }
}

function assertExactlyOnce(outcome: Outcome) {
  assert.deepEqual(
    outcome.calls.map((count, i) => [i, count]).filter(([, count]) => count !== 1),
    [],
    "every operation's onResult is called exactly once",
  );
}

function assertAllOk(outcome: Outcome) {
  assert.equal(outcome.error, undefined);
  assertExactlyOnce(outcome);
  assert.deepEqual(
    outcome.results.flatMap((result, i) => (result?.ok ? [] : [[i, result]])),
    [],
    "every operation acknowledged",
  );
}

function expectedProfiles(count: number, skip: readonly number[] = []) {
  const profiles = new Map<string, Record<string, unknown>>();
  for (let i = 0; i < count; i++) if (!skip.includes(i)) profiles.set(`company||${id(i)}`, { name: `name ${i}`, n: i });
  return profiles;
}

test("every operation is acknowledged, batches respect the limits and the profiles match", async () => {
  await withReceiver({}, async (receiver) => {
    const created = await deliver(receiver, sets(95), { destination: { concurrency: 3 } });
    assertAllOk(created);
    assert.deepEqual(receiver.profiles(), expectedProfiles(95));
    assert.equal(receiver.requests.length, 10, "95 operations in batches of 10");
    assert.ok(receiver.requests.every((request) => request.status === 200 && request.updates.length <= 10));
    const stats = created.delivery.stats;
    assert.deepEqual(
      { ...stats },
      {
        requests: 10,
        retries: 0,
        operations: 95,
        acknowledged: 95,
        rejected: 0,
        bytes: receiver.requests.reduce((sum, request) => sum + request.bytes, 0),
      },
    );
    assert.deepEqual(receiver.requests[0]!.updates[0], {
      $token: TOKEN,
      $group_key: "company",
      $group_id: "g000",
      $set: { name: "name 0", n: 0 },
    });

    const changed = await deliver(receiver, [
      { kind: "unset", ref: { groupKey: "company", groupId: id(1) }, names: ["n"] },
      { kind: "delete", ref: { groupKey: "company", groupId: id(2) } },
      set(id(3), { name: "renamed" }),
    ]);
    assertAllOk(changed);
    const profiles = receiver.profiles();
    assert.deepEqual(profiles.get("company||g001"), { name: "name 1" });
    assert.equal(profiles.has("company||g002"), false);
    assert.deepEqual(profiles.get("company||g003"), { name: "renamed", n: 3 });
    const updates = receiver.requests.at(-1)!.updates;
    assert.deepEqual(updates[0]!.$unset, ["n"]);
    assert.equal(updates[1]!.$delete, "");
  });
});

test("hierarchical: every update carries the bare $company_id; one without it is rejected, the rest applied", async () => {
  await withReceiver({ hierarchical: true }, async (receiver) => {
    const ops: GroupOperation[] = [
      {
        kind: "set",
        ref: { groupKey: "$company_id", groupId: "acme", companyId: "acme" },
        properties: { plan: "pro" },
      },
      {
        kind: "set",
        ref: { groupKey: "$user_id", groupId: "alice", companyId: "acme" },
        properties: { role: "admin" },
      },
      {
        kind: "set",
        ref: { groupKey: "$user_id", groupId: "alice", companyId: "globex" },
        properties: { role: "viewer" },
      },
      { kind: "set", ref: { groupKey: "$user_id", groupId: "bob" }, properties: { role: "none" } },
    ];
    const outcome = await deliver(receiver, ops, { destination: { hierarchical: true } });
    assertExactlyOnce(outcome);
    assert.deepEqual(outcome.results.slice(0, 3), [{ ok: true }, { ok: true }, { ok: true }]);
    assert.equal(outcome.results[3]?.ok, false);
    assert.match((outcome.results[3] as { reason: string }).reason, /\$company_id is required/);
    assert.deepEqual(
      receiver.profiles(),
      new Map([
        ["$company_id|acme|acme", { plan: "pro" }],
        ["$user_id|acme|alice", { role: "admin" }],
        ["$user_id|globex|alice", { role: "viewer" }],
      ]),
    );
    assert.equal(receiver.requests[0]!.updates[1]!.$company_id, "acme");
  });
});

test("a 429 storm: Retry-After is waited out exactly, then the backoff takes over, nothing lost", async () => {
  await withReceiver({}, async (receiver) => {
    receiver.fail({ status: 429, retryAfter: 1 }, { status: 429 }, { status: 429 });
    const outcome = await deliver(receiver, sets(20), { destination: { concurrency: 1 } });
    assertAllOk(outcome);
    // Backoff here is at most 55 ms a retry: only the 1 s Retry-After explains a wait this long.
    assert.ok(outcome.elapsed >= 1000, `waited ${Math.round(outcome.elapsed)} ms`);
    assert.ok(outcome.elapsed < 3000, `waited ${Math.round(outcome.elapsed)} ms`);
    assert.equal(outcome.delivery.stats.retries, 3);
    assert.equal(outcome.delivery.stats.requests, 5);
    assert.deepEqual(
      receiver.requests.map((request) => request.status),
      [429, 429, 429, 200, 200],
    );
    assert.deepEqual(
      outcome.logs.filter((log) => log.level === "warn").map((log) => (log.obj as { delayMs: number }).delayMs)[0],
      1000,
    );
    assert.deepEqual(receiver.profiles(), expectedProfiles(20));
  });
});

test("a Retry-After longer than maxRetryAfterMs is capped", async () => {
  await withReceiver({}, async (receiver) => {
    receiver.fail({ status: 429, retryAfter: 30 });
    const outcome = await deliver(receiver, sets(5), { delivery: { maxRetryAfterMs: 20 } });
    assertAllOk(outcome);
    assert.ok(outcome.elapsed < 1000, `waited ${Math.round(outcome.elapsed)} ms`);
    assert.equal(outcome.delivery.stats.retries, 1);
  });
});

test("500, 502 and 503 are retried until the destination recovers", async () => {
  await withReceiver({}, async (receiver) => {
    receiver.fail({ status: 500 }, { status: 502 }, { status: 503 });
    const outcome = await deliver(receiver, sets(30));
    assertAllOk(outcome);
    assert.equal(outcome.delivery.stats.retries, 3);
    assert.equal(outcome.delivery.stats.requests, 6);
    assert.deepEqual(receiver.profiles(), expectedProfiles(30));
  });
});

test("a dropped connection is retried", async () => {
  await withReceiver({}, async (receiver) => {
    receiver.fail({ drop: true });
    const outcome = await deliver(receiver, sets(10));
    assertAllOk(outcome);
    assert.equal(outcome.delivery.stats.retries, 1);
    assert.deepEqual(
      receiver.requests.map((request) => request.status),
      [0, 200],
    );
    assert.match(String((outcome.logs[0]!.obj as { reason?: string }).reason), /network error/);
    assert.deepEqual(receiver.profiles(), expectedProfiles(10));
  });
});

test("a response slower than the timeout counts as failed and is retried", async () => {
  await withReceiver({}, async (receiver) => {
    // undici checks these timeouts on a coarse clock (about 0.5–1 s), hence a slow answer of 1.5 s.
    receiver.fail({ delayMs: 1500 });
    const outcome = await deliver(receiver, sets(10), { destination: { timeout: 150 } });
    assertAllOk(outcome);
    assert.equal(outcome.delivery.stats.retries, 1);
    assert.ok(outcome.elapsed >= 150 && outcome.elapsed < 1500, `took ${Math.round(outcome.elapsed)} ms`);
    assert.match(String((outcome.logs[0]!.obj as { reason?: string }).reason), /within 150 ms/);
    assert.deepEqual(receiver.profiles(), expectedProfiles(10));
  });
});

test("413: the batch is split in halves; a single operation still too large is rejected", async () => {
  await withReceiver({}, async (receiver) => {
    receiver.fail({ status: 413 });
    const outcome = await deliver(receiver, sets(8));
    assertAllOk(outcome);
    assert.deepEqual(
      receiver.requests.map((request) => [request.status, request.updates.length]),
      [
        [413, 8],
        [200, 4],
        [200, 4],
      ],
    );
    assert.equal(outcome.delivery.stats.retries, 0, "a split is not a retry");
  });
  await withReceiver({ maxBodyBytes: 400 }, async (receiver) => {
    const ops = sets(3);
    ops.splice(1, 0, set("huge", { blob: "x".repeat(500) }));
    const outcome = await deliver(receiver, ops);
    assertExactlyOnce(outcome);
    // The receiver does not parse a body over its limit; the last 413 is the huge operation alone (~580 bytes).
    const refused = receiver.requests.filter((request) => request.status === 413).at(-1)!;
    assert.ok(refused.bytes > 400 && refused.bytes < 700, `${refused.bytes}`);
    assert.deepEqual(outcome.results[1], {
      ok: false,
      rejected: true,
      reason: `mixpanel refused a request of ${refused.bytes} bytes as too large (HTTP 413)`,
    });
    assert.deepEqual(
      outcome.results.filter((result) => result?.ok),
      [{ ok: true }, { ok: true }, { ok: true }],
    );
    assert.deepEqual(receiver.profiles(), expectedProfiles(3));
    assert.equal(outcome.delivery.stats.rejected, 1);
  });
});

for (const perRecordErrors of [true, false]) {
  test(`one bad record in a batch is isolated and rejected, the rest applied (per-record errors: ${perRecordErrors})`, async () => {
    await withReceiver({ perRecordErrors }, async (receiver) => {
      receiver.rejectWhen((update) =>
        (update.$set as Record<string, unknown> | undefined)?.name === "poison" ? "value refused" : undefined,
      );
      const ops = sets(20);
      ops[7] = set(id(7), { name: "poison" });
      const outcome = await deliver(receiver, ops, { destination: { batch_size: 20 } });
      assertExactlyOnce(outcome);
      assert.equal(outcome.error, undefined, "a rejected record does not stop the run");
      assert.equal(outcome.results[7]?.ok, false);
      assert.match((outcome.results[7] as { reason: string }).reason, /value refused/);
      assert.ok(outcome.results.every((result, i) => i === 7 || result?.ok));
      assert.deepEqual(receiver.profiles(), expectedProfiles(20, [7]));
      assert.equal(outcome.delivery.stats.rejected, 1);
      assert.equal(outcome.delivery.stats.acknowledged, 19);
      if (perRecordErrors) {
        // The strict answer names the record: one re-send of the other 19, no bisection.
        assert.deepEqual(
          receiver.requests.map((request) => [request.status, request.updates.length]),
          [
            [400, 20],
            [200, 19],
          ],
        );
      } else {
        // All or nothing: bisection down to the bad record, about 2·log2(20) requests.
        assert.equal(receiver.requests[0]!.status, 400);
        assert.ok(receiver.requests.length >= 6 && receiver.requests.length <= 11, `${receiver.requests.length}`);
      }
    });
  });
}

test("401 stops the run with a DestinationError that says to check the token, never showing it", async () => {
  await withReceiver({}, async (receiver) => {
    const wrong = "wrong-token-998877";
    const outcome = await deliver(receiver, sets(40), {
      destination: { project_token: wrong, concurrency: 2, batch_size: 10 },
    });
    assert.ok(outcome.error instanceof DestinationError, String(outcome.error));
    assert.match(outcome.error.message, /Invalid token.*check project_token/);
    assert.match(outcome.error.action ?? "", /project_token/);
    assert.ok(!outcome.error.message.includes(wrong) && !(outcome.error.action ?? "").includes(wrong));
    assert.ok(!JSON.stringify(outcome.logs).includes(wrong));
    assertExactlyOnce(outcome);
    assert.ok(outcome.results.every((result) => result?.ok === false));
    assert.ok(receiver.requests.length <= 2, "a refused token is never retried");
    assert.equal(outcome.delivery.stats.retries, 0);
    assert.equal(receiver.profiles().size, 0);
    // After the stop, a new operation fails at once and flush keeps throwing.
    let got: OperationResult | undefined;
    await assert.rejects(
      async () =>
        outcome.delivery.enqueue(set("late", { a: 1 }), (result) => {
          got = result;
        }),
      DestinationError,
    );
    assert.equal(got?.ok, false);
    await assert.rejects(outcome.delivery.flush(), /check project_token/);
  });
});

test("retries exhausted: the run stops with a DestinationError and every operation gets ok:false", async () => {
  await withReceiver({}, async (receiver) => {
    receiver.fail(...Array.from({ length: 10 }, () => ({ status: 503 as const })));
    const outcome = await deliver(receiver, sets(30), {
      destination: { concurrency: 1 },
      delivery: { maxRetries: 2 },
    });
    assert.ok(outcome.error instanceof DestinationError, String(outcome.error));
    assert.match(outcome.error.message, /a batch of 10 operations failed 3 attempts; last: HTTP 503/);
    assertExactlyOnce(outcome);
    assert.ok(outcome.results.every((result) => result?.ok === false));
    assert.equal(receiver.requests.length, 3);
    assert.deepEqual(
      { retries: outcome.delivery.stats.retries, acknowledged: outcome.delivery.stats.acknowledged },
      {
        retries: 2,
        acknowledged: 0,
      },
    );
  });
});

test("retries exhausted with batches in flight: what was acknowledged is reported as such, the rest fails", async () => {
  await withReceiver({}, async (receiver) => {
    // The first request succeeds, everything after it fails.
    receiver.fail({ delayMs: 0 }, ...Array.from({ length: 50 }, () => ({ status: 503 as const })));
    const outcome = await deliver(receiver, sets(60), { destination: { concurrency: 3 }, delivery: { maxRetries: 1 } });
    assert.ok(outcome.error instanceof DestinationError);
    assertExactlyOnce(outcome);
    const acknowledged = outcome.results.filter((result) => result?.ok).length;
    assert.equal(acknowledged, 10);
    assert.equal(outcome.delivery.stats.acknowledged, 10);
    assert.equal(receiver.profiles().size, 10);
  });
});

test("an operation over 1 MB is rejected at once with its size, the others are sent", async () => {
  await withReceiver({}, async (receiver) => {
    const ops = sets(4);
    ops.splice(2, 0, set("big", { blob: "y".repeat(1_000_100) }));
    const outcome = await deliver(receiver, ops);
    assertExactlyOnce(outcome);
    assert.equal(outcome.results[2]?.ok, false);
    assert.match(
      (outcome.results[2] as { reason: string }).reason,
      /^the encoded operation is 10001\d\d bytes, over the limit of 1000000 bytes per operation$/,
    );
    assert.ok(!receiver.requests.some((request) => request.updates.some((update) => update.$group_id === "big")));
    assert.deepEqual(receiver.profiles(), expectedProfiles(4));
    assert.deepEqual(
      { rejected: outcome.delivery.stats.rejected, acknowledged: outcome.delivery.stats.acknowledged },
      {
        rejected: 1,
        acknowledged: 4,
      },
    );
  });
});

test("aborting the signal stops the run promptly, requests in flight included", async () => {
  await withReceiver({}, async (receiver) => {
    receiver.fail({ delayMs: 5000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const outcome = await deliver(receiver, sets(10), {
      destination: { timeout: 10_000 },
      delivery: { signal: controller.signal },
    });
    assert.ok(outcome.error instanceof DestinationError);
    assert.equal(outcome.error.code, "DELIVERY_CANCELLED");
    assert.ok(outcome.elapsed < 2000, `took ${Math.round(outcome.elapsed)} ms`);
    assertExactlyOnce(outcome);
    assert.ok(outcome.results.every((result) => result?.ok === false));
  });
});

test("no unhandled promise rejection happened in this file", async () => {
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(unhandled, []);
});
