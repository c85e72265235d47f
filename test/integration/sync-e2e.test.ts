/**
 * End-to-end: PostgreSQL table → engine → local Mixpanel receiver, across several runs. Each case checks both
 * what was sent (the update objects) and what the receiver's profiles hold afterwards.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type E2E, startE2E } from "../helpers/e2e.js";

const MAPPING = `
from: public.companies
group_key: company
group_id: id
properties:
  $name: name
  plan: plan
  seats: seats
  arr: { column: arr, type: number }
  signed_up_at: { column: signed_up, type: datetime }
on_delete: delete
`;

async function createCompanies(e2e: E2E) {
  await e2e.db.query(`
    create table companies (id text primary key, name text, plan text, seats int, arr numeric, signed_up timestamptz);
    insert into companies values
      ('acme', 'Acme', 'enterprise', 50, 120000.5, '2024-01-15 10:00:00+00'),
      ('globex', 'Globex', 'growth', 10, 48000, '2023-06-01 08:30:00+02'),
      ('initech', 'Initech', null, 3, null, null),
      ('umbrella', 'Umbrella', 'enterprise', 400, 310000, '2020-11-30 08:15:00+00');
  `);
}

/** What the receiver must hold for the companies table, computed independently of the engine. */
async function expectedProfiles(e2e: E2E): Promise<Record<string, Record<string, unknown>>> {
  const { rows } = await e2e.db.query(
    `select id, name, plan, seats, arr::float8 as arr,
            to_char(signed_up at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as signed_up from companies`,
  );
  const out: Record<string, Record<string, unknown>> = {};
  for (const row of rows) {
    const profile: Record<string, unknown> = {};
    if (row.name !== null) profile.$name = row.name;
    if (row.plan !== null) profile.plan = row.plan;
    if (row.seats !== null) profile.seats = row.seats;
    if (row.arr !== null) profile.arr = row.arr;
    if (row.signed_up !== null) profile.signed_up_at = row.signed_up;
    out[row.id] = profile;
  }
  return out;
}

function updatesSince(e2e: E2E, from: number) {
  return e2e.receiver.requests.slice(from).flatMap((request) => request.updates.map(({ $token: _t, ...rest }) => rest));
}

describe("upsert: first sync, changes, nulls, mapping changes", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: MAPPING });
    await createCompanies(e2e);
  });
  after(() => e2e.dispose());

  test("first sync sends every group's non-null properties", async () => {
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.rows_read, 4);
    assert.equal(summary.groups_created, 4);
    assert.equal(summary.properties_set, 17);
    assert.deepEqual(e2e.profiles(), await expectedProfiles(e2e));
    const updates = updatesSince(e2e, 0);
    assert.ok(
      updates.every((update) => "$set" in update),
      "a new group gets only $set",
    );
    assert.deepEqual(
      updates.find((update) => update.$group_id === "initech"),
      { $group_key: "company", $group_id: "initech", $set: { $name: "Initech", seats: 3 } },
    );
  });

  test("an unchanged table sends nothing", async () => {
    const requests = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok");
    assert.equal(summary.unchanged, 4);
    assert.equal(e2e.receiver.requests.length, requests, "no request at all");
  });

  test("a changed property sends just that property", async () => {
    await e2e.db.query(`update companies set seats = 55 where id = 'acme'`);
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.groups_updated, 1);
    assert.deepEqual(updatesSince(e2e, from), [{ $group_key: "company", $group_id: "acme", $set: { seats: 55 } }]);
    assert.deepEqual(e2e.profiles(), await expectedProfiles(e2e));
  });

  test("a property that becomes null is $unset, and only once", async () => {
    await e2e.db.query(`update companies set plan = null, seats = 11 where id = 'globex'`);
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.properties_unset, 1);
    assert.deepEqual(updatesSince(e2e, from), [
      { $group_key: "company", $group_id: "globex", $set: { seats: 11 } },
      { $group_key: "company", $group_id: "globex", $unset: ["plan"] },
    ]);
    assert.deepEqual(e2e.profiles(), await expectedProfiles(e2e));
    const again = e2e.receiver.requests.length;
    await e2e.run();
    assert.equal(e2e.receiver.requests.length, again, "null staying null sends nothing");
  });

  test("a property added to the mapping sends just that property; a removed one is unset", async () => {
    await e2e.db.query(
      `alter table companies add column region text; update companies set region = 'emea' where id in ('acme', 'initech')`,
    );
    e2e.setMapping(
      `${MAPPING.replace("  seats: seats\n", "")}\n`.replace("properties:\n", "properties:\n  region: region\n"),
    );
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    const updates = updatesSince(e2e, from);
    const sets = updates.filter((update) => "$set" in update);
    const unsets = updates.filter((update) => "$unset" in update);
    assert.deepEqual(
      sets.map((update) => [update.$group_id, update.$set]),
      [
        ["acme", { region: "emea" }],
        ["initech", { region: "emea" }],
      ],
    );
    assert.deepEqual(unsets.map((update) => [update.$group_id, update.$unset]).sort(), [
      ["acme", ["seats"]],
      ["globex", ["seats"]],
      ["initech", ["seats"]],
      ["umbrella", ["seats"]],
    ]);
    for (const profile of Object.values(e2e.profiles())) assert.ok(!("seats" in profile));
    const again = e2e.receiver.requests.length;
    await e2e.run();
    assert.equal(e2e.receiver.requests.length, again, "after the change settles, nothing is re-sent");
  });

  test("plan reports what a run would send, sends nothing and changes no state", async () => {
    await e2e.db.query(`update companies set name = 'Acme Corp' where id = 'acme'`);
    const from = e2e.receiver.requests.length;
    const plan = await e2e.plan();
    assert.equal(plan.status, "ok");
    assert.equal(plan.groups_updated, 1);
    assert.equal(plan.properties_set, 1);
    assert.deepEqual(plan.samples, [
      { $token: "***", $group_key: "company", $group_id: "acme", $set: { $name: "Acme Corp" } },
    ]);
    assert.equal(e2e.receiver.requests.length, from, "plan sends nothing");
    const run = await e2e.run();
    assert.equal(run.properties_set, 1, "the plan did not advance state: the run still sends the change");
  });
});

describe("mirror mode", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({ mapping: MAPPING, mode: "mirror" });
    await createCompanies(e2e);
    await e2e.db.query(
      `insert into companies select 'extra-' || i, 'Extra ' || i, 'starter', i, null, null from generate_series(1, 6) i`,
    );
    await e2e.run();
  });
  after(() => e2e.dispose());

  test("a row that disappears is $deleted", async () => {
    await e2e.db.query(`delete from companies where id = 'initech'`);
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.groups_deleted, 1);
    assert.deepEqual(updatesSince(e2e, from), [{ $group_key: "company", $group_id: "initech", $delete: "" }]);
    assert.deepEqual(e2e.profiles(), await expectedProfiles(e2e));
  });

  test("zero rows deletes nothing", async () => {
    await e2e.db.query(
      `alter table companies rename to companies_backup; create table companies (like companies_backup)`,
    );
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.groups_deleted, 0);
    assert.match(summary.deletes_skipped ?? "", /no valid rows/);
    assert.equal(e2e.receiver.requests.length, from);
    await e2e.db.query(`drop table companies; alter table companies_backup rename to companies`);
    const back = await e2e.run();
    assert.equal(back.unchanged, 9, "the held-back groups are still in the state");
  });

  test("a shrink past max_delete_share deletes nothing unless forced", async () => {
    await e2e.db.query(
      `create table removed as select * from companies where id like 'extra-%'; delete from companies where id like 'extra-%'`,
    );
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.delete_candidates, 6);
    assert.equal(summary.groups_deleted, 0);
    assert.match(summary.deletes_skipped ?? "", /max_delete_share/);
    assert.equal(e2e.receiver.requests.length, from);
    const forced = await e2e.run({ force: true });
    assert.equal(forced.groups_deleted, 6);
    assert.deepEqual(e2e.profiles(), await expectedProfiles(e2e));
  });
});

describe("Group IDs whose order differs between collations", () => {
  let e2e: E2E;
  const ids = ["a", "B", "é", "_x", "10", "9", "Ä", "z", "😀", "É"];
  before(async () => {
    e2e = await startE2E({
      mapping: "from: ids\ngroup_key: company\ngroup_id: id\nproperties:\n  v: v\n",
      mode: "mirror",
    });
    await e2e.db.query(`create table ids (id text, v int)`);
    await e2e.db.query(`insert into ids select unnest($1::text[]), generate_series(1, $2)`, [ids, ids.length]);
  });
  after(() => e2e.dispose());

  test("the database's collation (en_US) does not disturb the merge: reruns send nothing, deletes hit only the removed row", async () => {
    const first = await e2e.run();
    assert.equal(first.groups_created, ids.length);
    const requests = e2e.receiver.requests.length;
    const second = await e2e.run();
    assert.equal(second.unchanged, ids.length);
    assert.equal(second.delete_candidates, 0);
    assert.equal(e2e.receiver.requests.length, requests);
    await e2e.db.query(`delete from ids where id = '_x'; update ids set v = 99 where id = 'é'`);
    const third = await e2e.run();
    assert.equal(third.groups_deleted, 1);
    assert.equal(third.groups_updated, 1);
    assert.deepEqual(Object.keys(e2e.profiles()).sort(), ids.filter((id) => id !== "_x").sort());
    assert.deepEqual(e2e.profiles()["é"], { v: 99 });
  });
});

describe("hierarchical groups", () => {
  let e2e: E2E;
  before(async () => {
    e2e = await startE2E({
      hierarchical: true,
      mapping: `from: users\ngroup_key: $user_id\ngroup_id: user_id\ncompany_id: company_id\nproperties:\n  $name: name\n  role: role\n`,
    });
    await e2e.db.query(`
      create table users (user_id text, company_id text, name text, role text);
      insert into users values ('alice', 'acme', 'Alice Smith', 'admin'), ('alice', 'globex', 'Alice Jones', 'member'),
        ('bob', 'acme', 'Bob', 'member'), ('carol', '$company:acme', 'Carol', 'member'), ('dan', null, 'Dan', 'member');
    `);
  });
  after(() => e2e.dispose());

  test("one $user_id in two companies is two profiles, each with a bare $company_id", async () => {
    const summary = await e2e.run();
    assert.equal(summary.groups_created, 3);
    assert.equal(summary.rejected, 2, "the prefixed Company ID and the null one are rejected");
    assert.deepEqual(e2e.profiles("$user_id"), {
      "acme|alice": { $name: "Alice Smith", role: "admin" },
      "globex|alice": { $name: "Alice Jones", role: "member" },
      "acme|bob": { $name: "Bob", role: "member" },
    });
    const updates = e2e.receiver.requests.flatMap((request) => request.updates);
    assert.ok(
      updates.every((update) => typeof update.$company_id === "string" && !String(update.$company_id).startsWith("$")),
    );
  });

  test("a change to alice@globex touches only that profile", async () => {
    await e2e.db.query(`update users set role = 'admin' where user_id = 'alice' and company_id = 'globex'`);
    const from = e2e.receiver.requests.length;
    await e2e.run();
    assert.deepEqual(updatesSince(e2e, from), [
      { $group_key: "$user_id", $group_id: "alice", $company_id: "globex", $set: { role: "admin" } },
    ]);
    assert.deepEqual(e2e.profiles("$user_id")["acme|alice"], { $name: "Alice Smith", role: "admin" });
  });
});

describe("sparse changes in a large table", () => {
  test("groups waiting behind a partly filled batch do not stall the run (bounded commit window)", async () => {
    const e2e = await startE2E({
      mapping: "from: t\ngroup_key: company\ngroup_id: id\nproperties:\n  n: n\n",
      batchSize: 500,
    });
    try {
      await e2e.db.query(
        `create table t as select 'g' || lpad(i::text, 4, '0') as id, i as n from generate_series(1, 2000) i`,
      );
      await e2e.run();
      await e2e.db.query(`update t set n = -n where n in (3, 900, 1999)`);
      // A window of 10 groups: the first changed group's $set waits in a batch of 500 that never fills.
      const summary = await Promise.race([
        e2e.run({ maxWindow: 10 }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the run stalled")), 20_000).unref()),
      ]);
      assert.equal(summary.status, "ok");
      assert.equal(summary.groups_updated, 3);
      assert.equal(summary.unchanged, 1997);
      assert.deepEqual(e2e.profiles().g0900, { n: -900 });
    } finally {
      await e2e.dispose();
    }
  });
});
