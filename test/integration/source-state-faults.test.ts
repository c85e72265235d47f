/**
 * Faults outside the destination: the source connection dies mid-stream, and the state folder cannot be written
 * (a file where the folder should be; a real, tiny tmpfs that is full; the same tmpfs remounted read-only).
 * Each ends with a clear error, no deletes, state that still names what the destination acknowledged, and a next
 * run that brings the receiver to exactly the table.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import type { RunSummary } from "../../src/engine/summary.js";
import { type E2E, startE2E } from "../helpers/e2e.js";
import { createSimpleTable, SIMPLE_MAPPING, simpleProfiles } from "../helpers/simple-table.js";

const run = promisify(execFile);

const deletesIn = (e2e: E2E, from: number) =>
  e2e.receiver.requests.slice(from).flatMap((request) => request.updates.filter((update) => "$delete" in update));

describe("the source connection dies mid-stream", () => {
  test("pg_terminate_backend during the read: the run fails, mirror deletes nothing, the state records only what was acknowledged", async () => {
    const e2e = await startE2E({ mapping: SIMPLE_MAPPING, batchSize: 20, mode: "mirror" });
    try {
      await createSimpleTable(e2e, 2000);
      assert.equal((await e2e.run()).status, "ok");
      const checkpoint = join(e2e.dir, "state", "s", "checkpoint.json");
      const before = readFileSync(checkpoint, "utf8");
      // Every row changes and 100 leave: a complete run would update 1900 groups and delete 100.
      await e2e.db.query(`update t set n = n + 1; delete from t where n % 20 = 0`);
      // Slow answers (under the 2 s timeout) hold the read open, batch by batch, with nothing acknowledged yet.
      e2e.receiver.fail(...Array.from({ length: 50 }, () => ({ delayMs: 1500 })));
      const from = e2e.receiver.requests.length;
      // Small fetches, so the cursor is open (idle in transaction) while delivery holds the read back.
      const running = e2e.run({ readBatchSize: 50 });
      while (e2e.receiver.requests.length === from) await new Promise((resolve) => setTimeout(resolve, 5));
      let killed = 0;
      for (let attempt = 0; attempt < 200 && killed === 0; attempt++) {
        const { rows } = await e2e.db.query(
          `select pg_terminate_backend(pid) from pg_stat_activity
            where application_name = 'groupsync' and datname = current_database() and state <> 'idle'`,
        );
        killed = rows.length;
        if (killed === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.ok(killed > 0, "the run's session was found and terminated");
      const failed = await running;
      assert.equal(failed.status, "failed");
      assert.match(failed.error?.code ?? "", /^SOURCE_/, JSON.stringify(failed.error));
      assert.match(failed.error?.message ?? "", /connection|terminat/i);
      assert.equal(failed.groups_deleted, 0);
      assert.deepEqual(deletesIn(e2e, from), [], "no $delete was sent");
      // The batches already in flight were answered, and what they carried is recorded (the state records exactly
      // what the destination acknowledged); no group left the state.
      const after = JSON.parse(readFileSync(checkpoint, "utf8"));
      assert.equal(after.snapshot.groups, JSON.parse(before).snapshot.groups, "no group left the state");
      assert.deepEqual(after.properties, JSON.parse(before).properties);
      assert.ok(!existsSync(join(e2e.dir, "state", "s", "progress.json")), "no progress file is left behind");
      // The receiver may yet apply the batches that were in flight; the next run makes everything right.
      e2e.receiver.clearFaults();
      const rerun = await e2e.run();
      assert.equal(rerun.status, "ok", JSON.stringify(rerun.error));
      assert.equal(rerun.groups_deleted, 100);
      assert.equal(
        rerun.groups_updated,
        1900 - failed.groups_updated,
        "what the failed run had acknowledged is not re-sent",
      );
      assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
    } finally {
      await e2e.dispose();
    }
  });
});

describe("the state folder cannot be written", () => {
  test("a file where the state folder should be: a clear StateError naming it, nothing sent", async () => {
    const e2e = await startE2E({ mapping: SIMPLE_MAPPING, mode: "mirror" });
    try {
      await createSimpleTable(e2e, 30);
      writeFileSync(join(e2e.dir, "state"), "not a folder");
      const failed = await e2e.run();
      assert.equal(failed.status, "failed");
      assert.equal(failed.error?.code, "STATE_WRITE_FAILED");
      assert.match(failed.error?.message ?? "", /state\/s: a file stands where a folder should be/);
      assert.match(failed.error?.action ?? "", /writable/);
      assert.equal(e2e.receiver.requests.length, 0, "nothing is sent without somewhere to record it");
      rmSync(join(e2e.dir, "state"));
      assert.equal((await e2e.run()).status, "ok");
      assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
    } finally {
      await e2e.dispose();
    }
  });

  // A real filesystem that is full or read-only: a tmpfs mounted for the test. As root, chmod would not stop a
  // write, so a mount is the honest way; where mounting is not allowed, the test says so and is skipped.
  for (const fault of ["full", "read-only"] as const) {
    test(`a state folder on a ${fault} filesystem: a clear error, the old state intact, nothing lost`, async (t) => {
      const e2e = await startE2E({ mapping: SIMPLE_MAPPING, batchSize: 20, mode: "mirror" });
      const mountPoint = join(e2e.dir, "state");
      mkdirSync(mountPoint);
      try {
        await run("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mountPoint]);
      } catch (error) {
        await e2e.dispose();
        t.skip(`SKIPPED: cannot mount a tmpfs here (${(error as Error).message.split("\n")[0]})`);
        return;
      }
      try {
        await createSimpleTable(e2e, 300);
        assert.equal((await e2e.run()).status, "ok");
        const checkpoint = join(mountPoint, "s", "checkpoint.json");
        const before = readFileSync(checkpoint, "utf8");
        await e2e.db.query(`update t set n = n * 10 where n % 3 = 0; delete from t where n % 7 = 0`);
        const filler = join(mountPoint, "filler");
        const from = e2e.receiver.requests.length;
        let failed: RunSummary;
        if (fault === "full") {
          // The disk fills mid-run, once the lock is taken and the first batch is on its way: that batch goes out,
          // but the run cannot record it, nor journal the next one, so it stops.
          e2e.receiver.fail(...Array.from({ length: 10 }, () => ({ delayMs: 200 })));
          const running = e2e.run();
          while (e2e.receiver.requests.length === from) await new Promise((resolve) => setTimeout(resolve, 2));
          await run("dd", ["if=/dev/zero", `of=${filler}`, "bs=64k"]).catch(() => undefined); // stops at ENOSPC
          failed = await running;
          assert.ok(e2e.receiver.requests.length > from, "a batch went out before the disk filled");
        } else {
          // Remounting read-only under open files is refused (EBUSY), so the folder is read-only from the start.
          await run("mount", ["-o", "remount,ro", mountPoint]);
          failed = await e2e.run();
          assert.equal(e2e.receiver.requests.length, from, "nothing is sent without somewhere to record it");
        }
        assert.equal(failed.status, "failed");
        assert.equal(failed.error?.code, "STATE_WRITE_FAILED", JSON.stringify(failed.error));
        assert.match(
          failed.error?.message ?? "",
          fault === "full" ? /the disk is full/ : /not writable/,
          JSON.stringify(failed.error),
        );
        assert.match(failed.error?.action ?? "", /nothing was lost/);
        assert.equal(failed.groups_deleted, 0);
        assert.deepEqual(deletesIn(e2e, from), [], "no $delete was sent");
        assert.equal(readFileSync(checkpoint, "utf8"), before, "the last good checkpoint is intact");
        if (fault === "full") rmSync(filler);
        else await run("mount", ["-o", "remount,rw", mountPoint]);
        const rerun = await e2e.run();
        assert.equal(rerun.status, "ok", JSON.stringify(rerun.error));
        assert.ok(rerun.groups_deleted > 0 && rerun.groups_updated > 0, "what was not recorded is sent (again)");
        assert.deepEqual(e2e.profiles(), await simpleProfiles(e2e));
        const settled = await e2e.run();
        assert.equal(settled.requests, 0, "the state is whole again: nothing more to send");
      } finally {
        await run("umount", ["-l", mountPoint]).catch(() => undefined);
        await e2e.dispose();
      }
    });
  }
});
