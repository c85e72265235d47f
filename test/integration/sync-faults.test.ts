/**
 * End-to-end under faults: the destination throttles, fails, refuses a record, refuses the token, or the process
 * is killed mid-run. Whatever happens, the profiles end up exactly equal to the table, and state only advances
 * for what the destination acknowledged.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type E2E, startE2E, TOKEN } from "../helpers/e2e.js";
import { createSimpleTable, SIMPLE_MAPPING, simpleProfiles } from "../helpers/simple-table.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

describe("throttling and outages", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: SIMPLE_MAPPING, batchSize: 20 });
    await createSimpleTable(e2e, 100);
  });
  after(() => e2e.dispose());

  test("a 429 storm with Retry-After is waited out and nothing is lost", async () => {
    e2e.receiver.fail({ status: 429, retryAfter: 1 }, { status: 429, retryAfter: 1 }, { status: 429 }, { status: 429 });
    const started = Date.now();
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.ok(summary.retries >= 4, `retries counted: ${summary.retries}`);
    assert.ok(Date.now() - started >= 1000, "Retry-After was honoured");
    assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
  });

  test("500s then recovery", async () => {
    await e2e.db.query(`update t set n = n + 1000`);
    e2e.receiver.fail({ status: 500 }, { status: 502 }, { status: 503 }, { drop: true });
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.groups_updated, 100);
    assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
  });

  test("an outage longer than the retries fails the run; acknowledged groups are kept, the rest re-sent next run", async () => {
    await e2e.db.query(`update t set n = n + 1000`);
    const faults = Array.from({ length: 200 }, () => ({ status: 503 as const }));
    // Let the first batches through, then fail everything.
    e2e.receiver.fail({ delayMs: 0 }, { delayMs: 0 }, ...faults);
    const failed = await e2e.run({ delivery: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2, jitterMs: [0, 1] } });
    assert.equal(failed.status, "failed");
    assert.ok(failed.groups_updated > 0 && failed.groups_updated < 100, `partial progress: ${failed.groups_updated}`);
    e2e.receiver.reset();
    // The receiver lost its memory: put back what it held, so the next run is judged on what it re-sends.
    const from = e2e.receiver.requests.length;
    const rerun = await e2e.run();
    assert.equal(rerun.status, "ok");
    assert.equal(rerun.groups_updated, 100 - failed.groups_updated, "only the unacknowledged groups are re-sent");
    assert.ok(e2e.receiver.requests.length > from);
  });
});

describe("a bad record in a batch", () => {
  for (const perRecordErrors of [true, false]) {
    test(`is isolated and rejected with its key, the rest applied (per-record errors: ${perRecordErrors})`, async () => {
      const e2e = await startE2E({ mapping: SIMPLE_MAPPING, batchSize: 50, perRecordErrors });
      try {
        await createSimpleTable(e2e, 120);
        await e2e.db.query(`update t set name = 'poison' where id = 'g00042'`);
        e2e.receiver.rejectWhen((update) =>
          (update.$set as Record<string, unknown> | undefined)?.name === "poison" ? "value refused" : undefined,
        );
        const summary = await e2e.run();
        assert.equal(summary.status, "rejected");
        assert.equal(summary.rejected, 1);
        assert.equal(summary.groups_created, 119);
        const profiles = e2e.profiles();
        assert.equal(Object.keys(profiles).length, 119);
        assert.ok(!("g00042" in profiles));
        const rejects = readFileSync(join(e2e.dir, "state", "s", "rejects.jsonl"), "utf8");
        assert.match(rejects, /"key":"g00042"/);
        // Unchanged, but never acknowledged: retried next run.
        const again = await e2e.run();
        assert.equal(again.rejected, 1);
        await e2e.db.query(`update t set name = 'fixed' where id = 'g00042'`);
        const fixed = await e2e.run();
        assert.equal(fixed.status, "ok");
        // A refused operation may have been applied for all we know, so the group is kept as "unknown" and counts
        // as updated when it finally goes through.
        assert.equal(fixed.groups_created + fixed.groups_updated, 1);
        assert.equal(fixed.properties_set, 2);
        assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
        assert.ok(!existsSync(join(e2e.dir, "state", "s", "rejects.jsonl")), "a clean run clears the rejects file");
      } finally {
        await e2e.dispose();
      }
    });
  }
});

describe("bad rows in the source", () => {
  test("null, empty and duplicate Group IDs are rejected with their keys; the rest of the run goes on", async () => {
    const e2e = await startE2E({ mapping: SIMPLE_MAPPING });
    try {
      await e2e.db.query(`create table t (id text, name text, n int)`);
      await e2e.db.query(
        `insert into t values ('a', 'A', 1), (null, 'no id', 2), ('', 'empty', 3), ('  ', 'blank', 4), ('dup', 'one', 5), ('dup', 'two', 6), ('z', 'Z', 7)`,
      );
      const summary = await e2e.run();
      assert.equal(summary.status, "rejected");
      assert.equal(summary.rejected, 5);
      assert.deepEqual(e2e.profiles(), { a: { name: "A", n: 1 }, z: { name: "Z", n: 7 } });
      const reasons = readFileSync(join(e2e.dir, "state", "s", "rejects.jsonl"), "utf8");
      assert.match(reasons, /"key":"dup".*seen 2 times/);
      assert.match(reasons, /is null/);
      assert.match(reasons, /empty or only whitespace/);
    } finally {
      await e2e.dispose();
    }
  });
});

describe("a refused token", () => {
  test("401 stops the run with a message about the token, never the token itself", async () => {
    const e2e = await startE2E({ mapping: SIMPLE_MAPPING });
    try {
      await createSimpleTable(e2e, 10);
      e2e.receiver.fail({ status: 401 });
      const summary = await e2e.run();
      assert.equal(summary.status, "failed");
      assert.match(summary.error?.message ?? "", /token/i);
      assert.doesNotMatch(JSON.stringify(summary), new RegExp(TOKEN));
      assert.doesNotMatch(JSON.stringify(e2e.logs), new RegExp(TOKEN));
      const next = await e2e.run();
      assert.equal(next.status, "ok");
      assert.equal(next.groups_created + next.groups_updated, 10, "nothing was recorded as sent by the failed run");
      assert.equal(next.properties_set, 20);
      assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
    } finally {
      await e2e.dispose();
    }
  });
});

describe("killed mid-run", () => {
  test("kill -9 during delivery, data changing between runs: a clean rerun leaves profiles exactly equal to the table", async () => {
    const e2e = await startE2E({ mapping: SIMPLE_MAPPING, batchSize: 25, mode: "mirror" });
    try {
      await createSimpleTable(e2e, 1500);
      for (let round = 0; round < 4; round++) {
        // Slow responses so the kill lands mid-delivery.
        e2e.receiver.fail(...Array.from({ length: 400 }, () => ({ delayMs: 20 })));
        const child = spawn(
          process.execPath,
          [join(root, "bin/groupsync.js"), "run", "s", "--config", e2e.configFile],
          {
            env: { ...process.env, ...e2e.env, GROUPSYNC_LOG_LEVEL: "error" },
            stdio: "ignore",
          },
        );
        const target = e2e.receiver.requests.length + 4 + round * 5;
        const deadline = Date.now() + 30_000;
        while (e2e.receiver.requests.length < target && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 5));
        child.kill("SIGKILL");
        await new Promise((resolve) => child.once("exit", resolve));
        e2e.receiver.clearFaults();
        // The table changes between runs: updates, nulls, deletes of rows a killed run may have created, new rows.
        await e2e.db.query(
          `update t set n = n + 1 where random() < 0.2;
           update t set name = null where random() < 0.05;
           delete from t where random() < 0.03;
           insert into t select 'r${round}-' || i, 'new', i from generate_series(1, 20) i`,
        );
      }
      const summary = await e2e.run({ force: true });
      assert.notEqual(summary.status, "failed", JSON.stringify(summary.error));
      assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
      const settled = await e2e.run();
      assert.equal(
        settled.unchanged,
        Object.keys(await simpleProfiles(e2e)).length,
        "after recovery, nothing is re-sent",
      );
    } finally {
      await e2e.dispose();
    }
  });
});
