/**
 * End-to-end with `type: snowflake`: the Snowflake REST stand-in (through the real snowflake-sdk) → engine → local
 * Mixpanel receiver, across several runs: first sync, unchanged rerun, a change, null → $unset, mirror delete, and
 * Group IDs whose order differs between collations. Each case checks what was sent and what the profiles hold.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SnowflakeStandIn } from "../../connectors/snowflake/stand-in.js";
import type { StandInTable, StandInValue } from "../../connectors/snowflake/stand-in-data.js";
import { makeKeys, PASSWORD, type SnowflakeE2E, startSnowflakeE2E, startStandIn } from "../helpers/snowflake.js";

/** Column names as Snowflake stores unquoted ones; the mapping writes them in lower case. */
const MAPPING = `
from: companies
group_key: company
group_id: id
properties:
  $name: name
  plan: plan
  seats: seats
  arr: { column: arr, type: number }
  signed_up_at: { column: signed_up, type: datetime }
  active: active
on_delete: delete
`;

const COLUMNS: StandInTable["columns"] = [
  { name: "ID", type: "text" },
  { name: "NAME", type: "text" },
  { name: "PLAN", type: "text" },
  { name: "SEATS", type: "fixed", precision: 38, scale: 0 },
  { name: "ARR", type: "fixed", precision: 12, scale: 2 },
  { name: "SIGNED_UP", type: "timestamp_tz" },
  { name: "ACTIVE", type: "boolean" },
];

function companies(): StandInValue[][] {
  return [
    ["acme", "Acme", "enterprise", "50", "120000.50", "2024-01-15 10:00:00 +00:00", true],
    ["globex", "Globex", "growth", "10", "48000.00", "2023-06-01 08:30:00 +02:00", false],
    ["initech", "Initech", null, "3", null, null, null],
    ["umbrella", "Umbrella", "enterprise", "400", "310000.00", "2020-11-30 08:15:00.25 +00:00", true],
  ];
}

/** What the receiver must hold for a companies table, computed from the fixture rows, not by the engine. */
function expectedProfiles(rows: readonly StandInValue[][]): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [id, name, plan, seats, arr, signedUp, active] of rows) {
    const profile: Record<string, unknown> = {};
    if (name !== null) profile.$name = name;
    if (plan !== null) profile.plan = plan;
    if (seats !== null) profile.seats = Number(seats);
    if (arr !== null) profile.arr = Number(arr);
    if (signedUp !== null) {
      const [date, time, zone] = String(signedUp).split(" ");
      const iso = new Date(`${date}T${time}${zone}`).toISOString();
      profile.signed_up_at = iso.replace(".000Z", "Z").replace(/(\.\d*?)0+Z$/, "$1Z");
    }
    if (active !== null) profile.active = active;
    out[String(id)] = profile;
  }
  return out;
}

function updatesSince(e2e: SnowflakeE2E, from: number) {
  return e2e.receiver.requests.slice(from).flatMap((request) => request.updates.map(({ $token: _t, ...rest }) => rest));
}

let standIn: SnowflakeStandIn;

before(async () => {
  standIn = await startStandIn(makeKeys());
});

after(() => standIn.close());

describe("upsert: first sync, unchanged rerun, a change, null → $unset", () => {
  let e2e: SnowflakeE2E;
  let table: StandInTable;
  before(async () => {
    table = { columns: COLUMNS, rows: companies() };
    standIn.data.tables.set("DB.PUBLIC.COMPANIES", table);
    e2e = await startSnowflakeE2E(standIn, { mapping: MAPPING });
  });
  after(() => e2e.dispose());

  test("first sync sends every group's non-null properties", async () => {
    const summary = await e2e.run();
    assert.equal(summary.status, "ok", JSON.stringify(summary.error));
    assert.equal(summary.rows_read, 4);
    assert.equal(summary.groups_created, 4);
    assert.deepEqual(e2e.profiles(), expectedProfiles(table.rows));
    assert.deepEqual(e2e.profiles().globex, {
      $name: "Globex",
      plan: "growth",
      seats: 10,
      arr: 48000,
      signed_up_at: "2023-06-01T06:30:00Z",
      active: false,
    });
    assert.deepEqual(
      updatesSince(e2e, 0).find((update) => update.$group_id === "initech"),
      { $group_key: "company", $group_id: "initech", $set: { $name: "Initech", seats: 3 } },
    );
    const read = standIn.queries.findLast((query) => query.sql.includes('FROM "COMPANIES" ORDER BY'));
    assert.equal(read?.queryTag, "groupsync:companies", "the query tag names the sync");
  });

  test("an unchanged table sends nothing", async () => {
    const requests = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.status, "ok");
    assert.equal(summary.unchanged, 4);
    assert.equal(e2e.receiver.requests.length, requests, "no request at all");
  });

  test("a changed property sends just that property", async () => {
    (table.rows[0] as StandInValue[])[3] = "55";
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.groups_updated, 1);
    assert.deepEqual(updatesSince(e2e, from), [{ $group_key: "company", $group_id: "acme", $set: { seats: 55 } }]);
    assert.deepEqual(e2e.profiles(), expectedProfiles(table.rows));
  });

  test("a property that becomes NULL is $unset, and only once", async () => {
    const globex = table.rows[1] as StandInValue[];
    globex[2] = null;
    globex[3] = "11";
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.properties_unset, 1);
    assert.deepEqual(updatesSince(e2e, from), [
      { $group_key: "company", $group_id: "globex", $set: { seats: 11 } },
      { $group_key: "company", $group_id: "globex", $unset: ["plan"] },
    ]);
    assert.deepEqual(e2e.profiles(), expectedProfiles(table.rows));
    const again = e2e.receiver.requests.length;
    await e2e.run();
    assert.equal(e2e.receiver.requests.length, again, "NULL staying NULL sends nothing");
  });
});

describe("mirror mode", () => {
  let e2e: SnowflakeE2E;
  let table: StandInTable;
  before(async () => {
    const extra = Array.from({ length: 6 }, (_, i): StandInValue[] => [
      `extra-${i + 1}`,
      `Extra ${i + 1}`,
      "starter",
      String(i + 1),
      null,
      null,
      null,
    ]);
    table = { columns: COLUMNS, rows: [...companies(), ...extra] };
    standIn.data.tables.set("DB.PUBLIC.COMPANIES", table);
    e2e = await startSnowflakeE2E(standIn, { mapping: MAPPING, mode: "mirror" });
    const first = await e2e.run();
    assert.equal(first.groups_created, 10);
  });
  after(() => e2e.dispose());

  test("a row that disappears is $deleted", async () => {
    table.rows = table.rows.filter((row) => row[0] !== "initech");
    const from = e2e.receiver.requests.length;
    const summary = await e2e.run();
    assert.equal(summary.groups_deleted, 1);
    assert.deepEqual(updatesSince(e2e, from), [{ $group_key: "company", $group_id: "initech", $delete: "" }]);
    assert.deepEqual(e2e.profiles(), expectedProfiles(table.rows));
  });

  test("a read that fails mid-stream deletes nothing", async () => {
    standIn.chunkFaults(() => ({ status: 404 }));
    const small = standIn.data.tables.get("DB.PUBLIC.COMPANIES") as StandInTable;
    const rows = small.rows;
    // Enough rows for a chunk beyond the inline rowset; the groups past it would look deleted.
    small.rows = [
      ...rows,
      ...Array.from({ length: 1500 }, (_, i): StandInValue[] => [`zz-${i}`, "Z", null, "1", null, null, null]),
    ];
    try {
      const from = e2e.receiver.requests.length;
      const summary = await e2e.run();
      assert.equal(summary.status, "failed");
      assert.match(JSON.stringify(summary.error), /SOURCE_CONNECTION_LOST/);
      assert.equal(summary.groups_deleted, 0);
      assert.ok(!JSON.stringify([summary, e2e.logs]).includes(PASSWORD), "no secret in the summary or the logs");
      assert.ok(
        updatesSince(e2e, from).every((update) => !("$delete" in update)),
        "nothing deleted",
      );
    } finally {
      standIn.chunkFaults(undefined);
      small.rows = rows;
    }
  });
});

describe("Group IDs whose order differs between collations", () => {
  let e2e: SnowflakeE2E;
  let table: StandInTable;
  const ids = ["a", "B", "é", "_x", "10", "9", "Ä", "z", "😀", "É"];
  before(async () => {
    table = {
      columns: [
        { name: "ID", type: "text", collation: "en-ci" },
        { name: "V", type: "fixed" },
      ],
      rows: ids.map((id, i) => [id, String(i + 1)]),
    };
    standIn.data.tables.set("DB.PUBLIC.IDS", table);
    e2e = await startSnowflakeE2E(standIn, {
      mapping: "from: ids\ngroup_key: company\ngroup_id: id\nproperties:\n  v: v\n",
      mode: "mirror",
    });
  });
  after(() => e2e.dispose());

  test("an en-ci column does not disturb the merge: reruns send nothing, deletes hit only the removed row", async () => {
    const first = await e2e.run();
    assert.equal(first.status, "ok", JSON.stringify(first.error));
    assert.equal(first.groups_created, ids.length);
    const requests = e2e.receiver.requests.length;
    const second = await e2e.run();
    assert.equal(second.unchanged, ids.length);
    assert.equal(second.delete_candidates, 0);
    assert.equal(e2e.receiver.requests.length, requests);
    table.rows = table.rows.filter((row) => row[0] !== "_x").map((row) => (row[0] === "é" ? ["é", "99"] : row));
    const third = await e2e.run();
    assert.equal(third.groups_deleted, 1);
    assert.equal(third.groups_updated, 1);
    assert.deepEqual(Object.keys(e2e.profiles()).sort(), ids.filter((id) => id !== "_x").sort());
    assert.deepEqual(e2e.profiles()["é"], { v: 99 });
  });
});
