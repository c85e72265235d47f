/**
 * `groupsync backfill`: every group's full current properties are sent whatever the snapshot says, while `$unset`s
 * and mirror deletes are still computed against it; `--where` covers a subset; killed (SIGKILL) or failed, it
 * continues after the last key it finished, and the acknowledged work is never sent again.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type E2E, startE2E } from "../helpers/e2e.js";
import { createSimpleTable, SIMPLE_MAPPING, simpleProfiles } from "../helpers/simple-table.js";

const bin = fileURLToPath(new URL("../../bin/groupsync.js", import.meta.url));

/** The `$set` updates sent since request `from`, by Group ID. */
function setsSince(e2e: E2E, from: number): Map<string, number> {
  const sets = new Map<string, number>();
  for (const request of e2e.receiver.requests.slice(from)) {
    if (request.status !== 200) continue;
    for (const update of request.updates) {
      if (update.$set) sets.set(String(update.$group_id), (sets.get(String(update.$group_id)) ?? 0) + 1);
    }
  }
  return sets;
}

describe("backfill", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: SIMPLE_MAPPING, mode: "mirror", batchSize: 20 });
    await createSimpleTable(e2e, 60, 4);
  });
  after(() => e2e.dispose());

  test("re-sends every group to a wiped destination, still unsetting and deleting against the snapshot", async () => {
    assert.equal((await e2e.run()).groups_created, 60);
    e2e.receiver.reset(); // a new, empty project
    await e2e.db.query(`update t set name = null where id = 'g0001'; delete from t where id = 'g0002'`);
    const normal = await e2e.plan();
    assert.equal(normal.groups_updated, 1, "a normal run would only unset g0001's name");
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run({ backfill: {} });
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.deepEqual(summary.backfill, { finished: true });
    assert.equal(summary.groups_updated, 59);
    assert.equal(summary.properties_set, 58 * 2 + 1);
    assert.equal(summary.properties_unset, 1);
    assert.equal(summary.groups_deleted, 1);
    assert.equal(setsSince(e2e, from).size, 59);
    const unsets = e2e.receiver.requests.slice(from).flatMap((r) => r.updates.filter((u) => u.$unset));
    assert.deepEqual(
      unsets.map((u) => [u.$group_id, u.$unset]),
      [["g0001", ["name"]]],
    );
    assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
    assert.equal((await e2e.run()).unchanged, 59, "after a backfill the snapshot is exact: nothing to send");
  });

  test("--where backfills a subset and deletes nothing", async () => {
    await e2e.db.query(`delete from t where id = 'g0003'`);
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run({ backfill: { where: "n <= 10 -- the first ten" } });
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.rows_read, 8, "g0001…g0010 but the two deleted");
    const sent = [...setsSince(e2e, from).keys()].sort();
    assert.deepEqual(sent, ["g0001", "g0004", "g0005", "g0006", "g0007", "g0008", "g0009", "g0010"]);
    assert.equal(summary.delete_candidates, 0);
    assert.ok("g0003" in e2e.profiles(), "a subset says nothing about the rows outside it");
    assert.equal((await e2e.run()).groups_deleted, 1, "the next full run deletes it");
  });

  test("a backfill the destination stopped continues after the last key it finished", async () => {
    // Two batches go through, then the token is refused.
    e2e.receiver.fail({ delayMs: 0 }, { delayMs: 0 }, { status: 401 });
    const failed = await e2e.run({ backfill: {}, delivery: { maxRetries: 0 } });
    assert.equal(failed.status, "failed");
    const state = JSON.parse(readFileSync(join(e2e.dir, "state", "s", "backfill.json"), "utf8"));
    assert.ok(state.through?.groupId, JSON.stringify(state));
    const from = e2e.receiver.requests.length;
    const resumed = await e2e.run({ backfill: {} });
    assert.equal(resumed.status, "ok", JSON.stringify(resumed.error));
    assert.equal(resumed.backfill?.resumed_after, state.through.groupId);
    const sent = setsSince(e2e, from);
    assert.ok(![...sent.keys()].some((id) => id <= state.through.groupId), "nothing at or before the resume point");
    assert.ok(sent.has("g0060"));
    assert.ok(!existsSync(join(e2e.dir, "state", "s", "backfill.json")), "a finished backfill forgets its point");
    assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
  });

  test("--restart, or another --where, starts over", async () => {
    e2e.receiver.fail({ delayMs: 0 }, { status: 401 });
    assert.equal((await e2e.run({ backfill: {}, delivery: { maxRetries: 0 } })).status, "failed");
    e2e.receiver.clearFaults();
    const restarted = await e2e.run({ backfill: { restart: true } });
    assert.equal(restarted.backfill?.resumed_after, undefined);
    assert.equal(restarted.rows_read, 58);
    e2e.receiver.fail({ delayMs: 0 }, { status: 401 });
    assert.equal((await e2e.run({ backfill: {}, delivery: { maxRetries: 0 } })).status, "failed");
    e2e.receiver.clearFaults();
    const other = await e2e.run({ backfill: { where: "n > 0" } });
    assert.equal(other.backfill?.resumed_after, undefined);
    assert.ok(e2e.logs.some((line) => String(line.msg).includes("had another --where")));
  });
});

describe("backfill killed with SIGKILL", () => {
  test("continues where it stopped, and nothing it finished is sent again", async () => {
    const e2e = await startE2E({ mapping: SIMPLE_MAPPING, mode: "mirror", batchSize: 10 });
    try {
      await createSimpleTable(e2e, 400, 4);
      assert.equal((await e2e.run()).groups_created, 400);
      // Slow answers: the backfill takes several seconds, long enough to make its progress durable (every 2 s).
      e2e.receiver.fail(...Array.from({ length: 40 }, () => ({ delayMs: 250 })));
      const from = e2e.receiver.requests.length;
      const child = spawn(process.execPath, [bin, "backfill", "s", "--config", e2e.configFile], {
        env: { ...process.env, ...e2e.env, GROUPSYNC_LOG_LEVEL: "error" },
        stdio: "ignore",
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      const progress = join(e2e.dir, "state", "s", "progress.json");
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        if (existsSync(progress) && JSON.parse(readFileSync(progress, "utf8")).backfill?.through) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      child.kill("SIGKILL");
      await exited;
      e2e.receiver.clearFaults();
      const killedSent = setsSince(e2e, from);
      assert.ok(killedSent.size > 0 && killedSent.size < 400, `the kill landed mid-backfill (${killedSent.size} sent)`);

      const middle = e2e.receiver.requests.length;
      const resumed = await e2e.run({ backfill: {} });
      assert.equal(resumed.status, "ok", JSON.stringify(resumed.error));
      const after = resumed.backfill?.resumed_after;
      assert.ok(after, "the backfill resumed");
      assert.ok(resumed.rows_read < 400, `only the rest was read (${resumed.rows_read})`);
      const resentSets = setsSince(e2e, middle);
      for (const id of resentSets.keys()) assert.ok(id > after, `${id} was finished before the kill`);
      // Every group got its full properties from one of the two runs.
      const all = new Set([...killedSent.keys(), ...resentSets.keys()]);
      assert.equal(all.size, 400);
      assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
      const settled = await e2e.run();
      assert.equal(settled.unchanged, 400, "the killed run's acknowledged work was kept: nothing is re-sent");
    } finally {
      await e2e.dispose();
    }
  });
});
