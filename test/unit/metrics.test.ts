import assert from "node:assert/strict";
import { test } from "node:test";
import { describeProgress } from "../../src/cli/progress-bar.js";
import { emptySummary, type RunSummary } from "../../src/engine/summary.js";
import { newSyncStats, renderMetrics } from "../../src/scheduler/metrics.js";

function run(status: RunSummary["status"], finished: string): RunSummary {
  return { ...emptySummary("s", "run", new Date(finished)), status, finished_at: finished, duration_ms: 1500 };
}

test("failures in a row are counted from the history, newest first, so they survive a restart", () => {
  const history = [
    run("failed", "2024-01-03T00:00:00Z"),
    run("failed", "2024-01-02T00:00:00Z"),
    run("ok", "2024-01-01T00:00:00Z"),
  ];
  assert.equal(newSyncStats("s", "* * * * *", "UTC", history).consecutiveFailures, 2);
  assert.equal(newSyncStats("s", "* * * * *", "UTC", history.slice(0, 2)).consecutiveFailures, 2);
  assert.equal(newSyncStats("s", "* * * * *", "UTC", []).consecutiveFailures, 0);
});

test("the exposition: HELP and TYPE once per family, escaped labels, one sample per sync and status", () => {
  const stats = newSyncStats('we"ird\\name', "* * * * *", "UTC", [
    {
      ...run("rejected", "2024-01-01T00:00:10Z"),
      rows_read: 7,
      groups_created: 2,
      groups_updated: 3,
      groups_deleted: 1,
      rejected: 4,
    },
  ]);
  stats.runs.ok = 5;
  const never = newSyncStats("never", "* * * * *", "UTC", []);
  const text = renderMetrics([stats, never], true);
  const label = 'sync="we\\"ird\\\\name"';
  for (const line of [
    "groupsync_up 1",
    `groupsync_last_run_status{${label},status="rejected"} 1`,
    `groupsync_last_run_status{${label},status="ok"} 0`,
    `groupsync_last_run_timestamp_seconds{${label}} 1704067210`,
    `groupsync_last_run_duration_seconds{${label}} 1.5`,
    `groupsync_last_run_rows_read{${label}} 7`,
    `groupsync_last_run_rows_sent{${label}} 6`,
    `groupsync_last_run_rejected{${label}} 4`,
    `groupsync_runs_total{${label},status="ok"} 5`,
    'groupsync_consecutive_failures{sync="never"} 0',
    'groupsync_running{sync="never"} 0',
  ]) {
    assert.ok(text.split("\n").includes(line), `${line}\n---\n${text}`);
  }
  assert.doesNotMatch(text, /groupsync_last_run_rows_read\{sync="never"\}/, "no last run, no sample");
  assert.equal(text.match(/^# TYPE groupsync_runs_total counter$/gm)?.length, 1);
  assert.ok(text.endsWith("\n"));
  assert.match(renderMetrics([], false), /^groupsync_up 0$/m);
});

test("progress: rate and ETA from rows read and elapsed time", () => {
  assert.deepEqual(describeProgress({ rowsRead: 500, total: 2000, groupsSent: 0, elapsedMs: 5000 }), {
    rate: 100,
    fraction: 0.25,
    eta: 15,
  });
  const unknown = describeProgress({ rowsRead: 10, groupsSent: 0, elapsedMs: 0 });
  assert.equal(unknown.fraction, undefined);
  assert.equal(unknown.eta, undefined);
});
