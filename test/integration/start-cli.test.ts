/**
 * `groupsync start` as a user runs it: a child process on a one-second schedule serving /healthz and /metrics,
 * stopped with SIGTERM in the middle of a run: it exits 0 promptly, leaves a consistent state, and the next run
 * completes. Then `status --history` shows the runs.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type E2E, startE2E } from "../helpers/e2e.js";

const bin = fileURLToPath(new URL("../../bin/groupsync.js", import.meta.url));
const MAPPING = "from: t\ngroup_key: company\ngroup_id: id\nproperties:\n  name: name\n";

async function until(condition: () => boolean, what: string, ms = 20_000, poll?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await (poll ? poll() : new Promise((resolve) => setTimeout(resolve, 10)));
    if (poll) await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("groupsync start", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: MAPPING, batchSize: 10, syncExtra: '    schedule: "* * * * * *"' });
    await e2e.db.query(
      `create table t (id text, name text); insert into t select 'g' || i, 'n' || i from generate_series(1, 300) i`,
    );
  });
  after(() => e2e.dispose());

  test("SIGTERM mid-run: in-flight batches finish, the state is written, exit 0; the rerun completes", async () => {
    const child = spawn(
      process.execPath,
      [bin, "start", "--port", "0", "--host", "127.0.0.1", "--config", e2e.configFile],
      {
        env: { ...process.env, ...e2e.env, GROUPSYNC_LOG_LEVEL: "info" },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const logs: Record<string, unknown>[] = [];
    let buffer = "";
    child.stderr.on("data", (chunk) => {
      buffer += String(chunk);
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) logs.push(JSON.parse(line));
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await until(() => logs.some((line) => typeof line.port === "number"), "the server");
      const port = logs.find((line) => typeof line.port === "number")!.port as number;
      let metrics = "";
      await until(
        () => /^groupsync_last_run_status\{sync="s",status="ok"\} 1$/m.test(metrics),
        "a first run",
        20_000,
        async () => {
          metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        },
      );
      assert.match(metrics, /^groupsync_last_run_rows_read\{sync="s"\} 300$/m);
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);

      // The next ticks find changes and a slow destination: SIGTERM lands mid-run.
      await e2e.db.query(`update t set name = name || '+'`);
      e2e.receiver.fail(...Array.from({ length: 30 }, () => ({ delayMs: 300 })));
      const from = e2e.receiver.requests.length;
      await until(() => e2e.receiver.requests.length > from + 2, "a run in flight");
      const stopped = Date.now();
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
      assert.ok(Date.now() - stopped < 10_000, `exited in ${Date.now() - stopped} ms`);
      assert.ok(logs.some((line) => String(line.msg).startsWith("SIGTERM: stopping")));
    } finally {
      child.kill("SIGKILL");
    }
    e2e.receiver.clearFaults();
    const state = join(e2e.dir, "state", "s");
    const files = readdirSync(state);
    assert.ok(!files.includes("lock") && !files.includes("progress.json"), files.join(", "));
    assert.ok(!files.some((name) => name.startsWith("journal-") || name.endsWith(".tmp")), files.join(", "));
    const rerun = await e2e.run();
    assert.equal(rerun.status, "ok");
    assert.ok(rerun.groups_updated > 0 && rerun.groups_updated < 300, `the rest: ${rerun.groups_updated}`);
    const { rows } = await e2e.db.query("select id, name from t");
    assert.deepEqual(e2e.profiles(), Object.fromEntries(rows.map((row) => [row.id, { name: row.name }])));
    assert.ok(existsSync(join(state, "runs.json")));
  });

  test("status --history lists the last runs, the stopped one included", async () => {
    const output = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [bin, "status", "--history", "3", "--config", e2e.configFile],
        { env: { ...process.env, ...e2e.env, GROUPSYNC_LOG_LEVEL: "warn" } },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    );
    assert.match(output, /^s: last run \S+ OK /m);
    assert.match(output, /^ {2}schedule: \* \* \* \* \* \* \(UTC\)$/m);
    assert.match(output, /^ {2}last 3 runs, newest first:$/m);
    assert.match(output, /^ {4}\S+ {2}FAILED .*the run was stopped before it read everything/m);
  });
});
