/**
 * The core end-to-end cases as one list that any source runs: a `companies` table (id, name, plan, seats, region)
 * synced to a local Mixpanel receiver across runs: first sync, unchanged rerun, a change, NULL → $unset, a mapping
 * change, plan, and in mirror mode a delete, an empty read and a shrink past max_delete_share. A source supplies a
 * harness that replaces the table's rows and runs the real engine; expectations are computed from the rows given.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MixpanelReceiver } from "../../connectors/mixpanel/contract-receiver.js";
import type { RunSyncOptions } from "../../src/engine/run-sync.js";
import type { RunSummary } from "../../src/engine/summary.js";

export interface CompanyRow {
  readonly id: string;
  readonly name: string | null;
  readonly plan: string | null;
  readonly seats: number | null;
  readonly region: string | null;
}

/** A source's side of the cases. The mapping reads `companies` with group_key `company` and group_id `id`. */
export interface CoreHarness {
  readonly receiver: MixpanelReceiver;
  /** Replaces every row of the companies table. */
  setRows(rows: readonly CompanyRow[]): Promise<void>;
  setMapping(yaml: string): void;
  run(options?: Partial<RunSyncOptions>): Promise<RunSummary>;
  /** The receiver's profiles as { "<group id>": properties }. */
  profiles(): Record<string, Record<string, unknown>>;
  dispose(): Promise<void>;
}

export const CORE_MAPPING = `
from: companies
group_key: company
group_id: id
properties:
  $name: name
  plan: plan
  seats: seats
on_delete: delete
`;

function companies(): CompanyRow[] {
  return [
    { id: "acme", name: "Acme", plan: "enterprise", seats: 50, region: null },
    { id: "globex", name: "Globex", plan: "growth", seats: 10, region: null },
    { id: "initech", name: "Initech", plan: null, seats: 3, region: null },
    { id: "umbrella", name: "Umbrella", plan: "enterprise", seats: 400, region: null },
  ];
}

function expected(rows: readonly CompanyRow[], withRegion = false): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const row of rows) {
    const profile: Record<string, unknown> = {};
    if (row.name !== null) profile.$name = row.name;
    if (row.plan !== null) profile.plan = row.plan;
    if (withRegion) {
      if (row.region !== null) profile.region = row.region;
    } else if (row.seats !== null) profile.seats = row.seats;
    out[row.id] = profile;
  }
  return out;
}

function updatesSince(receiver: MixpanelReceiver, from: number) {
  return receiver.requests.slice(from).flatMap((request) => request.updates.map(({ $token: _t, ...rest }) => rest));
}

/** Registers the core cases for one source; `start` makes a fresh harness (empty table, CORE_MAPPING) per mode. */
export function coreCases(source: string, start: (mode: "upsert" | "mirror") => Promise<CoreHarness>): void {
  describe(`${source}: upsert: first sync, unchanged rerun, a change, NULL → $unset, a mapping change, plan`, () => {
    let h: CoreHarness;
    let rows: CompanyRow[];
    before(async () => {
      h = await start("upsert");
      rows = companies();
      await h.setRows(rows);
    });
    after(() => h.dispose());

    test("first sync sends every group's non-null properties, only as $set", async () => {
      const summary = await h.run();
      assert.equal(summary.status, "ok", JSON.stringify(summary.error));
      assert.equal(summary.rows_read, 4);
      assert.equal(summary.groups_created, 4);
      assert.deepEqual(h.profiles(), expected(rows));
      const updates = updatesSince(h.receiver, 0);
      assert.ok(updates.every((update) => "$set" in update));
      assert.deepEqual(
        updates.find((update) => update.$group_id === "initech"),
        { $group_key: "company", $group_id: "initech", $set: { $name: "Initech", seats: 3 } },
      );
    });

    test("an unchanged table sends nothing", async () => {
      const from = h.receiver.requests.length;
      const summary = await h.run();
      assert.equal(summary.unchanged, 4);
      assert.equal(h.receiver.requests.length, from);
    });

    test("a changed property sends just that property", async () => {
      rows[0] = { ...(rows[0] as CompanyRow), seats: 55 };
      await h.setRows(rows);
      const from = h.receiver.requests.length;
      const summary = await h.run();
      assert.equal(summary.groups_updated, 1);
      assert.deepEqual(updatesSince(h.receiver, from), [
        { $group_key: "company", $group_id: "acme", $set: { seats: 55 } },
      ]);
      assert.deepEqual(h.profiles(), expected(rows));
    });

    test("a property that becomes NULL is $unset, and only once", async () => {
      rows[1] = { ...(rows[1] as CompanyRow), plan: null, seats: 11 };
      await h.setRows(rows);
      const from = h.receiver.requests.length;
      const summary = await h.run();
      assert.equal(summary.properties_unset, 1);
      assert.deepEqual(updatesSince(h.receiver, from), [
        { $group_key: "company", $group_id: "globex", $set: { seats: 11 } },
        { $group_key: "company", $group_id: "globex", $unset: ["plan"] },
      ]);
      const again = h.receiver.requests.length;
      await h.run();
      assert.equal(h.receiver.requests.length, again, "NULL staying NULL sends nothing");
    });

    test("a property added to the mapping sends just that property; a removed one is unset", async () => {
      rows = rows.map((row) => (row.id === "acme" || row.id === "initech" ? { ...row, region: "emea" } : row));
      await h.setRows(rows);
      h.setMapping(CORE_MAPPING.replace("  seats: seats\n", "  region: region\n"));
      const from = h.receiver.requests.length;
      const summary = await h.run();
      assert.equal(summary.status, "ok", JSON.stringify(summary.error));
      const updates = updatesSince(h.receiver, from);
      assert.deepEqual(
        updates.filter((update) => "$set" in update).map((update) => [update.$group_id, update.$set]),
        [
          ["acme", { region: "emea" }],
          ["initech", { region: "emea" }],
        ],
      );
      assert.equal(updates.filter((update) => "$unset" in update).length, 4, "seats unset everywhere");
      assert.deepEqual(h.profiles(), expected(rows, true));
    });

    test("plan reports what a run would send, sends nothing and changes no state", async () => {
      rows[0] = { ...(rows[0] as CompanyRow), name: "Acme Corp" };
      await h.setRows(rows);
      const from = h.receiver.requests.length;
      const plan = await h.run({ plan: true });
      assert.equal(plan.groups_updated, 1);
      assert.equal(plan.properties_set, 1);
      assert.equal(h.receiver.requests.length, from, "plan sends nothing");
      const run = await h.run();
      assert.equal(run.properties_set, 1, "the plan did not advance state");
    });
  });

  describe(`${source}: mirror: a delete, an empty read, a shrink past max_delete_share`, () => {
    let h: CoreHarness;
    let rows: CompanyRow[];
    before(async () => {
      h = await start("mirror");
      rows = [
        ...companies(),
        ...Array.from({ length: 6 }, (_, i) => ({
          id: `extra-${i + 1}`,
          name: `Extra ${i + 1}`,
          plan: "starter",
          seats: i + 1,
          region: null,
        })),
      ];
      await h.setRows(rows);
      await h.run();
    });
    after(() => h.dispose());

    test("a row that disappears is $deleted", async () => {
      rows = rows.filter((row) => row.id !== "initech");
      await h.setRows(rows);
      const from = h.receiver.requests.length;
      const summary = await h.run();
      assert.equal(summary.groups_deleted, 1);
      assert.deepEqual(updatesSince(h.receiver, from), [{ $group_key: "company", $group_id: "initech", $delete: "" }]);
      assert.deepEqual(h.profiles(), expected(rows));
    });

    test("zero rows deletes nothing", async () => {
      await h.setRows([]);
      const from = h.receiver.requests.length;
      const summary = await h.run();
      assert.equal(summary.groups_deleted, 0);
      assert.match(summary.deletes_skipped ?? "", /no valid rows/);
      assert.equal(h.receiver.requests.length, from);
      await h.setRows(rows);
      assert.equal((await h.run()).unchanged, 9, "the held-back groups are still in the state");
    });

    test("a shrink past max_delete_share deletes nothing unless forced", async () => {
      rows = rows.filter((row) => !row.id.startsWith("extra-"));
      await h.setRows(rows);
      const from = h.receiver.requests.length;
      const summary = await h.run();
      assert.equal(summary.delete_candidates, 6);
      assert.equal(summary.groups_deleted, 0);
      assert.match(summary.deletes_skipped ?? "", /max_delete_share/);
      assert.equal(h.receiver.requests.length, from);
      const forced = await h.run({ force: true });
      assert.equal(forced.groups_deleted, 6);
      assert.deepEqual(h.profiles(), expected(rows));
    });
  });
}
