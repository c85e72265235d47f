/**
 * A run killed with SIGKILL after it made its progress durable: the next run keeps the acknowledged prefix (nothing
 * in it is sent again) and still corrects every group the killed run had in flight, even when the table changed
 * back in between.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { type E2E, startE2E } from "../helpers/e2e.js";

const bin = fileURLToPath(new URL("../../bin/groupsync.js", import.meta.url));
const MAPPING = "from: t\ngroup_key: company\ngroup_id: id\nproperties:\n  n: n\n";

async function expected(e2e: E2E) {
  const { rows } = await e2e.db.query("select id, n from t");
  return Object.fromEntries(rows.map((row) => [row.id, { n: row.n }]));
}

test("kill -9 after a progress commit: the prefix is kept, the groups in flight are corrected", async () => {
  const e2e = await startE2E({ mapping: MAPPING, batchSize: 10 });
  try {
    await e2e.db.query(
      `create table t (id text, n int); insert into t select 'g' || lpad(i::text, 4, '0'), i from generate_series(1, 400) i`,
    );
    assert.equal((await e2e.run()).groups_created, 400);
    await e2e.db.query(`update t set n = n + 1000`);
    e2e.receiver.fail(...Array.from({ length: 40 }, () => ({ delayMs: 400 })));
    const child = spawn(process.execPath, [bin, "run", "s", "--config", e2e.configFile], {
      env: { ...process.env, ...e2e.env, GROUPSYNC_LOG_LEVEL: "error" },
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const progress = join(e2e.dir, "state", "s", "progress.json");
    const deadline = Date.now() + 30_000;
    while (!existsSync(progress) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const through = JSON.parse(readFileSync(progress, "utf8")).through.groupId as string;
    const requests = e2e.receiver.requests.length;
    while (e2e.receiver.requests.length < requests + 4 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    child.kill("SIGKILL"); // with requests in flight, which the receiver still applies
    await exited;
    assert.ok(e2e.receiver.requests.length < 80, "the kill landed mid-run");
    e2e.receiver.clearFaults();
    await new Promise((resolve) => setTimeout(resolve, 300)); // the receiver finishes the requests in flight

    // Back to the values the old snapshot holds: only the recovered state can tell what the receiver now holds.
    await e2e.db.query(`update t set n = n - 1000`);
    const from = e2e.receiver.requests.length;
    const rerun = await e2e.run();
    assert.equal(rerun.status, "ok", JSON.stringify(rerun.error));
    assert.deepEqual(e2e.profiles(), await expected(e2e));
    const resent = new Set(
      e2e.receiver.requests.slice(from).flatMap((request) => request.updates.map((update) => String(update.$group_id))),
    );
    assert.ok(
      [...resent].some((id) => id <= through),
      "the prefix's groups are corrected back",
    );
    assert.equal((await e2e.run()).unchanged, 400);
  } finally {
    await e2e.dispose();
  }
});
