/**
 * The scheduler behind `groupsync start`, in process: real node-cron at one tick a second, then hand-driven ticks
 * (a fake clock) for overlap, concurrency, failure streaks and shutdown; `/healthz` and `/metrics` over HTTP.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import type { Logger } from "pino";
import { loadConnectors } from "../../src/connectors.js";
import { readRunHistory } from "../../src/engine/run-history.js";
import { createLogger } from "../../src/log.js";
import { startHealthServer } from "../../src/scheduler/health-server.js";
import { Scheduler, type SchedulerOptions } from "../../src/scheduler/scheduler.js";
import { type E2E, startE2E } from "../helpers/e2e.js";

const connectors = await loadConnectors();

const MAPPING = "from: t\ngroup_key: company\ngroup_id: id\nproperties:\n  name: name\n";

function config(e2e: E2E, schedule: string): void {
  writeFileSync(
    e2e.configFile,
    `version: 1
state_dir: state
sources:
  db: { type: postgres, url: "\${TEST_DATABASE_URL}" }
destinations:
  mp: { type: mixpanel, project_token: "\${TEST_MP_TOKEN}", api_host: "\${TEST_MP_HOST}", batch_size: 10, timeout: 2s }
syncs:
  a: { source: db, destination: mp, mapping: mapping.yaml, schedule: "${schedule}", timezone: Europe/Berlin }
  b: { source: db, destination: mp, mapping: mapping-b.yaml, schedule: "${schedule}" }
  manual: { source: db, destination: mp, mapping: mapping.yaml }
`,
  );
  writeFileSync(join(e2e.dir, "mapping-b.yaml"), MAPPING.replace("company", "team"));
}

async function until(condition: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("scheduler", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: MAPPING });
    await e2e.db.query(
      `create table t (id text, name text); insert into t select 'g' || i, 'n' || i from generate_series(1, 200) i`,
    );
  });
  after(() => e2e.dispose());

  /** A scheduler whose ticks the test fires by hand. */
  async function manual(extra: Partial<SchedulerOptions> = {}) {
    const ticks = new Map<string, () => void>();
    const scheduler = new Scheduler({
      config: await e2e.load(),
      connectors,
      logger: silent(),
      runOptions: { readBatchSize: 10, delivery: { baseDelayMs: 1, maxDelayMs: 2, jitterMs: [0, 1], maxRetries: 0 } },
      schedule: (_expression, tick, options) => {
        ticks.set(String(options.name).replace("groupsync:", ""), tick);
        return { stop: () => undefined };
      },
      ...extra,
    });
    await scheduler.start();
    return { scheduler, ticks };
  }

  test("runs each scheduled sync on its one-second cron, records its history, and serves /healthz and /metrics", async () => {
    config(e2e, "* * * * * *");
    const scheduler = new Scheduler({ config: await e2e.load(), connectors, logger: silent() });
    const scheduled = await scheduler.start();
    assert.deepEqual(scheduled, ["a", "b"], "a sync without a schedule is not run");
    const server = await startHealthServer(scheduler, 0, "127.0.0.1");
    try {
      await until(() => scheduler.stats.every((s) => s.runs.ok >= 2), "two runs of each sync");
      const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { status: string }).status, "ok");
      const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      assert.match(metrics, /^# TYPE groupsync_last_run_status gauge$/m);
      assert.match(metrics, /^groupsync_last_run_status\{sync="a",status="ok"\} 1$/m);
      assert.match(metrics, /^groupsync_last_run_status\{sync="a",status="failed"\} 0$/m);
      assert.match(metrics, /^groupsync_last_run_rows_read\{sync="b"\} 200$/m);
      assert.match(metrics, /^groupsync_last_run_duration_seconds\{sync="a"\} [\d.]+$/m);
      assert.match(metrics, /^groupsync_last_run_rows_sent\{sync="a"\} 0$/m, "later runs send nothing");
      assert.match(metrics, /^groupsync_runs_total\{sync="b",status="ok"\} [2-9]$/m);
      assert.match(metrics, /^groupsync_consecutive_failures\{sync="a"\} 0$/m);
    } finally {
      assert.equal(await scheduler.shutdown(), true);
      await server.close();
    }
    const history = await readRunHistory(join(e2e.dir, "state", "a", "runs.json"));
    assert.ok(history.length >= 2);
    assert.equal(history.at(-1)?.groups_created, 200);
    assert.ok(!existsSync(join(e2e.dir, "state", "manual")));
  });

  test("a tick that finds its sync still running is skipped and logged; other syncs run up to the limit", async () => {
    const lines: string[] = [];
    const { scheduler, ticks } = await manual({ concurrency: 1, logger: capture(lines) });
    await e2e.db.query(`update t set name = name || '+'`);
    e2e.receiver.fail(...Array.from({ length: 3 }, () => ({ delayMs: 300 })));
    ticks.get("a")!();
    ticks.get("b")!(); // waits for the only slot
    await until(() => scheduler.stats[0]!.running, "a running");
    ticks.get("a")!();
    assert.equal(scheduler.stats[0]!.skippedTicks, 1);
    assert.ok(lines.some((line) => line.includes("sync a is still running: this tick is skipped")));
    let both = false;
    await until(() => {
      both ||= scheduler.stats.every((s) => s.running);
      return scheduler.stats.every((s) => s.runs.ok === 1);
    }, "both runs");
    assert.equal(both, false, "never two syncs at once with concurrency 1");
    assert.match(scheduler.metrics(), /^groupsync_skipped_ticks_total\{sync="a"\} 1$/m);
    await scheduler.shutdown();
  });

  test("a failed run is retried at the next tick; after N failures in a row the log says so loudly", async () => {
    const lines: string[] = [];
    const { scheduler, ticks } = await manual({ alertAfter: 2, logger: capture(lines) });
    await e2e.db.query(`update t set name = name || '!'`);
    const stats = () => scheduler.stats[0]!;
    for (let i = 1; i <= 3; i++) {
      e2e.receiver.fail({ status: 401 });
      ticks.get("a")!();
      await until(() => stats().runs.failed === i && !stats().running, `failure ${i}`);
    }
    assert.equal(stats().consecutiveFailures, 3);
    const alerts = lines.map((line) => JSON.parse(line)).filter((line) => line.alert === true);
    assert.equal(alerts.length, 2, "from the second failure in a row on");
    assert.equal(alerts[0].level, 50);
    assert.match(alerts[1].msg, /^ALERT: sync a has failed 3 runs in a row/);
    assert.match(scheduler.metrics(), /^groupsync_consecutive_failures\{sync="a"\} 3$/m);
    ticks.get("a")!();
    await until(() => stats().runs.ok === 1, "the retry");
    assert.equal(stats().consecutiveFailures, 0);
    assert.ok(lines.some((line) => line.includes("sync a recovered after 3 failed runs")));
    await scheduler.shutdown();
  });

  test("shutdown mid-run: the batches in flight finish, the state is written, and the next run completes", async () => {
    const { scheduler, ticks } = await manual();
    await e2e.db.query(`update t set name = name || '#'`);
    e2e.receiver.fail(...Array.from({ length: 6 }, () => ({ delayMs: 400 })));
    const from = e2e.receiver.requests.length;
    ticks.get("a")!();
    await until(() => e2e.receiver.requests.length > from, "a request in flight");
    const started = Date.now();
    assert.equal(await scheduler.shutdown(), true);
    assert.ok(Date.now() - started < 5000, "bounded");
    const state = join(e2e.dir, "state", "a");
    const files = readdirSync(state);
    assert.ok(!files.includes("lock") && !files.includes("progress.json"), files.join(", "));
    assert.ok(!files.some((name) => name.startsWith("journal-") || name.endsWith(".tmp")), files.join(", "));
    const [last] = await readRunHistory(join(state, "runs.json"));
    assert.equal(last?.error?.code, "STOPPED");
    assert.ok(last!.groups_updated > 0 && last!.groups_updated < 200, `partial: ${last?.groups_updated}`);
    assert.equal(last!.unsent, 0, "every batch read was delivered before stopping");
    ticks.get("a")!(); // stopped: ignored
    assert.equal(scheduler.stats[0]!.running, false);
    e2e.receiver.clearFaults();
    const rerun = await e2e.run();
    assert.equal(rerun.status, "ok");
    assert.equal(rerun.groups_updated, 200 - last!.groups_updated, "only what the stopped run did not finish");
    const { rows } = await e2e.db.query("select id, name from t");
    assert.deepEqual(e2e.profiles("company"), Object.fromEntries(rows.map((row) => [row.id, { name: row.name }])));
  });
});

function silent(): Logger {
  return createLogger({ level: "silent", pretty: false });
}

/** A logger whose JSON lines land in `lines`. */
function capture(lines: string[]): Logger {
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(
        ...String(chunk)
          .split("\n")
          .filter((line) => line.trim() !== ""),
      );
      done();
    },
  });
  return createLogger({ level: "info", pretty: false, destination });
}
