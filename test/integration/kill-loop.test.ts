/**
 * Kill -9 in a loop: the real CLI (`groupsync run`, a child process) against a real PostgreSQL and the Mixpanel
 * contract receiver, in mirror mode, killed with SIGKILL at a random point of each run while the table keeps
 * changing (updates, inserts, deletes, NULLs), then one clean run. The receiver must then hold exactly the table.
 *
 * The kill points rotate through three phases, each observed from outside rather than guessed from a clock:
 * - reading: the groupsync session shows up in pg_stat_activity (its read transaction is open);
 * - mid-batch: the receiver holds an unanswered request (answers are slowed down so one is in flight);
 * - writing state: inotify reports a write to the state folder (progress, snapshot, checkpoint, run history).
 * Every random choice comes from one seeded generator: the seed is printed, and GROUPSYNC_TEST_SEED replays it.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { type FSWatcher, mkdirSync, watch } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type E2E, startE2E } from "../helpers/e2e.js";

const bin = fileURLToPath(new URL("../../bin/groupsync.js", import.meta.url));
const MAPPING = "from: t\ngroup_key: company\ngroup_id: id\nproperties:\n  name: name\n  n: n\n  flag: flag\n";
const ROUNDS = 21;
const PHASES = ["reading", "mid-batch", "writing state"] as const;
type Phase = (typeof PHASES)[number];

/** mulberry32: a small, well-mixed 32-bit generator; enough to make every choice reproducible from the seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function expected(e2e: E2E) {
  const { rows } = await e2e.db.query("select id, name, n, flag from t");
  const out: Record<string, Record<string, unknown>> = {};
  for (const row of rows) {
    const profile: Record<string, unknown> = {};
    for (const column of ["name", "n", "flag"]) if (row[column] !== null) profile[column] = row[column];
    out[row.id] = profile;
  }
  return out;
}

/** Resolves when `until()` holds (polled every few ms), or false once the child has exited. */
async function waitFor(child: ChildProcess, until: () => Promise<boolean> | boolean): Promise<boolean> {
  while (child.exitCode === null && child.signalCode === null) {
    if (await until()) return true;
    await delay(2);
  }
  return false;
}

test("kill -9 at random points of 20+ mirror runs while the table changes: a clean run then equals the table", async (t) => {
  const seed = Number(process.env.GROUPSYNC_TEST_SEED ?? Date.now() % 2 ** 31);
  t.diagnostic(`seed ${seed} (replay with GROUPSYNC_TEST_SEED=${seed})`);
  console.log(`kill-loop seed: ${seed}`);
  const random = seeded(seed);
  const e2e = await startE2E({ mapping: MAPPING, batchSize: 20, mode: "mirror", syncExtra: "    max_delete_share: 1" });
  const stateDir = join(e2e.dir, "state", "s");
  mkdirSync(stateDir, { recursive: true });
  const landed: Record<Phase, number> = { reading: 0, "mid-batch": 0, "writing state": 0 };
  try {
    await e2e.db.query(`create table t (id text, name text, n int, flag boolean)`);
    await e2e.db.query(
      `insert into t select 'g' || lpad(i::text, 4, '0'), 'name ' || i, i, i % 2 = 0 from generate_series(1, 400) i`,
    );
    for (let round = 0; round < ROUNDS; round++) {
      const phase = PHASES[round % PHASES.length]!;
      // Slow answers keep a request in flight, and stretch the read (it is streamed as batches are acknowledged).
      e2e.receiver.fail(...Array.from({ length: 200 }, () => ({ delayMs: 5 + Math.floor(random() * 40) })));
      const fromRequest = e2e.receiver.requests.length;
      const child = spawn(process.execPath, [bin, "run", "s", "--config", e2e.configFile], {
        env: { ...process.env, ...e2e.env, GROUPSYNC_LOG_LEVEL: "error" },
        stdio: "ignore",
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      let stateWrites = 0;
      let watcher: FSWatcher | undefined;
      if (phase === "writing state") {
        watcher = watch(stateDir, (_event, file) => {
          if (file && /checkpoint|snapshot|progress|runs|cursor/.test(file)) stateWrites++;
        });
      }
      let hit = false;
      if (phase === "reading") {
        hit = await waitFor(child, async () => {
          const { rows } = await e2e.db.query(
            `select 1 from pg_stat_activity where application_name = 'groupsync' and datname = current_database()
               and state in ('active', 'idle in transaction')`,
          );
          return rows.length > 0;
        });
        if (hit) await delay(Math.floor(random() * 30));
      } else if (phase === "mid-batch") {
        const target = fromRequest + 1 + Math.floor(random() * 4);
        hit = await waitFor(
          child,
          () => e2e.receiver.requests.length >= target && e2e.receiver.requests.at(-1)?.status === 0,
        );
      } else {
        const target = 1 + Math.floor(random() * 3);
        hit = await waitFor(child, () => stateWrites >= target);
      }
      const alive = child.exitCode === null && child.signalCode === null;
      child.kill("SIGKILL");
      await exited;
      watcher?.close();
      if (hit && alive && child.signalCode === "SIGKILL") landed[phase]++;
      e2e.receiver.clearFaults();
      // The table changes between runs, the same way for the same seed.
      await e2e.db.query(
        `select setseed(${random() * 2 - 1});
         update t set n = n + 1 where random() < 0.15;
         update t set name = null where random() < 0.04;
         update t set name = 'renamed ${round}' where name is null and random() < 0.3;
         update t set flag = null where random() < 0.03;
         delete from t where random() < 0.03;
         insert into t select 'r${String(round).padStart(2, "0")}-' || i, 'new', i, null from generate_series(1, 8) i`,
      );
    }
    t.diagnostic(`kills that landed: ${JSON.stringify(landed)}`);
    for (const phase of PHASES)
      assert.ok(landed[phase] >= 3, `too few kills landed ${phase}: ${JSON.stringify(landed)}`);

    const summary = await e2e.run();
    assert.notEqual(summary.status, "failed", JSON.stringify(summary.error));
    const want = await expected(e2e);
    const got = e2e.profiles();
    // Group by group, property by property, so that a failure names what differs.
    for (const [id, properties] of Object.entries(want)) assert.deepEqual(got[id], properties, `group ${id}`);
    for (const id of Object.keys(got)) assert.ok(id in want, `group ${id} left the table but is still a profile`);
    const settled = await e2e.run();
    assert.equal(settled.status, "ok");
    assert.equal(settled.unchanged, Object.keys(want).length, "after recovery, nothing is sent again");
    assert.equal(settled.requests, 0);
  } finally {
    await e2e.dispose();
  }
});
