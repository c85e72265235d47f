/**
 * Incremental mode (a mapping's `cursor`): only rows changed since the watermark are read, in keyset pages on
 * (cursor, Group ID), staged and sorted before the merge; the watermark is the database's own text; `>=` re-reads the
 * boundary rows (de-duplicated by the diff); the database's now() caps the read; deletes wait for a full pass.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConnectors } from "../../src/connectors.js";
import type { Connectors } from "../../src/engine/run-sync.js";
import type { ChangeSpec } from "../../src/source.js";
import { type E2E, startE2E } from "../helpers/e2e.js";

const connectors = await loadConnectors();

const MAPPING = "from: t\ngroup_key: company\ngroup_id: id\ncursor: updated_at\nproperties:\n  name: name\n";

async function expected(e2e: E2E) {
  const { rows } = await e2e.db.query("select id, name from t");
  return Object.fromEntries(rows.map((row) => [row.id, row.name === null ? {} : { name: row.name }]));
}

function cursorState(e2e: E2E) {
  return JSON.parse(readFileSync(join(e2e.dir, "state", "s", "cursor.json"), "utf8"));
}

/** The real connectors, with a hook that runs after the first page of an incremental read. */
function afterFirstPage(hook: () => Promise<void>, pages: ChangeSpec[] = []): Connectors {
  return {
    createDestination: (sync) => connectors.createDestination(sync),
    createSource(sync) {
      const source = connectors.createSource(sync);
      const changes = source.changes!;
      return {
        ...source,
        changes: {
          ...changes,
          async page(spec, options) {
            const rows = await changes.page(spec, options);
            pages.push(spec);
            if (pages.length === 1) await hook();
            return rows;
          },
        },
      };
    },
  };
}

describe("incremental mode", () => {
  let e2e: E2E;
  let t1: string;
  before(async () => {
    e2e = await startE2E({ mapping: MAPPING, mode: "mirror", syncExtra: "    full_every: 24h" });
    await e2e.db.query(`create table t (id text, name text, updated_at timestamptz)`);
    // 250 rows share one timestamp; 50 more follow a second apart.
    await e2e.db.query(
      `insert into t select 'g' || lpad(i::text, 3, '0'), 'name ' || i,
         date_trunc('second', now()) - interval '2 hours' + greatest(i - 249, 0) * interval '1 second'
       from generate_series(0, 299) i`,
    );
    t1 = (await e2e.db.query(`select (date_trunc('second', now()) - interval '1 hour')::text as t`)).rows[0].t;
  });
  after(() => e2e.dispose());

  test("the first run is a full pass; the watermark is stored exactly as the database renders it", async () => {
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.read, "full");
    assert.equal(summary.groups_created, 300);
    const { rows } = await e2e.db.query(`select max(updated_at)::text as w from t`);
    assert.equal(cursorState(e2e).watermark, rows[0].w);
    assert.equal(summary.watermark, rows[0].w);
  });

  test("only changed rows are read, in keyset pages through equal timestamps, staged on disk and sorted", async () => {
    await e2e.db.query(`update t set name = name || '!', updated_at = $1 where id < 'g120'`, [t1]);
    const pages: ChangeSpec[] = [];
    const summary = await e2e.run({
      readBatchSize: 50,
      stageRows: 16,
      connectors: afterFirstPage(async () => {}, pages),
    });
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.read, "incremental");
    // 120 changed rows, plus the boundary row at the old watermark (`>=`), which the diff finds unchanged.
    assert.equal(summary.rows_read, 121);
    assert.equal(summary.groups_updated, 120);
    assert.equal(summary.unchanged, 1);
    assert.equal(pages.length, 3, "pages of 50: 50 + 50 + 21");
    assert.deepEqual(pages[1]?.position, { cursor: pages[1]?.position?.cursor, key: ["g048"] });
    assert.equal(cursorState(e2e).watermark, t1, "the greatest cursor read, as the database rendered it");
    assert.deepEqual(e2e.profiles(), await expected(e2e));
  });

  test("a row updated during the run to the watermark's own timestamp is read next run (>=, not >)", async () => {
    const watermark = cursorState(e2e).watermark;
    const summary = await e2e.run({
      readBatchSize: 50,
      connectors: afterFirstPage(async () => {
        // g000 was read in the first page; it changes, keeping the timestamp every changed row has.
        await e2e.db.query(`update t set name = 'during' where id = 'g000'`);
      }),
    });
    assert.equal(summary.status, "ok");
    assert.equal(e2e.profiles().g000?.name, "name 0!", "the run saw the row before it changed");
    assert.equal(cursorState(e2e).watermark, watermark);
    const next = await e2e.run();
    assert.equal(next.read, "incremental");
    assert.equal(next.groups_updated, 1);
    assert.equal(e2e.profiles().g000?.name, "during");
    assert.deepEqual(e2e.profiles(), await expected(e2e));
  });

  test("a row that moves ahead during the run is read again and its latest copy wins; one past the cap waits", async () => {
    const summary = await e2e.run({
      readBatchSize: 50,
      connectors: afterFirstPage(async () => {
        // g010 was read in the first page; it moves ahead, still below the cap: a later page reads it again.
        await e2e.db.query(
          `update t set name = 'moved', updated_at = $1::timestamptz + interval '1 second' where id = 'g010'`,
          [t1],
        );
        // g011 changes now, after the run took its cap: the next run reads it.
        await e2e.db.query(`update t set name = 'later', updated_at = now() where id = 'g011'`);
      }),
    });
    assert.equal(summary.status, "ok");
    assert.equal(summary.rejected, 0, "a key read twice is not a duplicate Group ID");
    assert.equal(summary.groups_updated, 1);
    assert.equal(e2e.profiles().g010?.name, "moved");
    assert.equal(e2e.profiles().g011?.name, "name 11!");
    const next = await e2e.run();
    assert.equal(next.groups_updated, 1);
    assert.deepEqual(e2e.profiles(), await expected(e2e));
  });

  test("a timestamp in the future neither is read early nor stalls the watermark", async () => {
    await e2e.db.query(`update t set name = 'future', updated_at = now() + interval '1 day' where id = 'g200'`);
    const first = await e2e.run();
    assert.equal(first.status, "ok");
    assert.notEqual(e2e.profiles().g200?.name, "future");
    const { rows } = await e2e.db.query(`select $1::timestamptz < now() as past`, [cursorState(e2e).watermark]);
    assert.equal(rows[0].past, true, "the watermark is not in the future");
    await e2e.db.query(`update t set name = 'after', updated_at = now() where id = 'g201'`);
    const second = await e2e.run();
    assert.equal(second.groups_updated, 1);
    assert.equal(e2e.profiles().g201?.name, "after");
  });

  test("incremental runs never delete; a full pass does (asked for, or when full_every is due)", async () => {
    await e2e.db.query(`delete from t where id = 'g250'`);
    const incremental = await e2e.run();
    assert.equal(incremental.read, "incremental");
    assert.equal(incremental.groups_deleted, 0);
    assert.ok("g250" in e2e.profiles());
    // full_every: 24h, and the last full pass was two days ago.
    const path = join(e2e.dir, "state", "s", "cursor.json");
    const state = cursorState(e2e);
    writeFileSync(path, JSON.stringify({ ...state, full_at: new Date(Date.now() - 2 * 86_400_000).toISOString() }));
    const full = await e2e.run();
    assert.equal(full.read, "full");
    assert.equal(full.groups_deleted, 1);
    assert.equal(full.groups_updated, 1, "the future-stamped row is sent by the full pass");
    assert.deepEqual(e2e.profiles(), await expected(e2e));
    assert.ok(Date.parse(cursorState(e2e).full_at) > Date.now() - 60_000);
    assert.equal((await e2e.run()).read, "incremental");
  });

  test("a mapping change forces a full pass, so every group gets the new property", async () => {
    await e2e.db.query(`alter table t add column plan text default 'free'`);
    e2e.setMapping(`${MAPPING}  plan: plan\n`);
    const summary = await e2e.run();
    assert.equal(summary.read, "full");
    assert.equal(summary.groups_updated, 299);
    const after = await e2e.run();
    assert.equal(after.read, "incremental");
    assert.equal(after.groups_updated, 0);
  });
});
